// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Glibc

struct Enroll: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Set up an authenticator app: QR code, a code to confirm, then backup codes.",
        discussion: """
        Users run it themselves (no sudo): it asks for your password, then the wizard draws \
        the QR code, prints the otpauth URI and the key for manual entry, and asks for one \
        code from the app before anything is saved; then it shows the backup codes once. \
        The work is done by twostep-helper over its socket. Root runs the same wizard \
        directly and may name any user with --user.
        With --json nothing is asked after the password: the enrolment is saved at once and \
        the answer is {"otpauth_uri", "qr_png_data_uri", "backup_codes"}.
        Already enrolled? --replace moves to a new phone: it needs a current code from the old one.
        """)

    @Flag(help: "Replace an existing enrolment (needs a current code from the old authenticator).") var replace = false
    @Flag(help: "Confirm a mailed invitation (`admin invite`, `admin rotate-secret`) with a code of its new secret.") var confirm = false
    @OptionGroup var options: SelfServiceOptions

    func validate() throws {
        if replace && confirm { throw ValidationError("--confirm and --replace do not go together") }
    }

    func run() throws {
        let data = try runSelfService(.enroll, options, replace: replace, confirm: confirm)
        if options.json { try printJSON(jsonObject(data)) }
    }
}
