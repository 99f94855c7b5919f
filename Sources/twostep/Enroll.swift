// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Glibc
import TwoStepStore

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
        Already enrolled? --replace moves to a new phone: it needs a current code from the old one. \
        --add NAME adds another authenticator (a second phone, a tablet) next to the ones you \
        have: it needs your password and a current code from one of them, then the same wizard \
        (QR code, a code from the NEW one); your backup codes stay. `twostep devices` lists them.
        """)

    @Flag(help: "Replace an existing enrolment (needs a current code from the old authenticator).") var replace = false
    @Option(help: "Add another authenticator with this name (1 to 32 of a-z, 0-9, -), e.g. phone2.") var add: String?
    @OptionGroup var options: SelfServiceOptions

    func validate() throws {
        if let add {
            guard !replace else { throw ValidationError("--add and --replace go separately") }
            guard Authenticator.isValidName(add) else { throw ValidationError("--add: a name is \(Authenticator.nameRule)") }
        }
    }

    func run() throws {
        let data = try runSelfService(.enroll, options, replace: replace, name: add ?? "")
        if options.json { try printJSON(jsonObject(data)) }
    }
}
