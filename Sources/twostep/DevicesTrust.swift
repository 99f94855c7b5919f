// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Glibc
import TwoStepCore
import TwoStepProtocol
import TwoStepService
import TwoStepStore

/// Trusted SSH keys in the CLI: the listing `twostep devices` shows, `twostep devices forget`
/// (self-service: password and code) and `twostep admin forget` (root).

/// One trusted key as the helper's `trusted_ssh_keys` field carries it, times in ISO 8601.
struct TrustedKeyRow {
    let fingerprint: String
    let added: String
    let expires: String
}

func trustedKeys(_ field: String) -> [TrustedKeyRow] {
    field.split(separator: ",").compactMap { item in
        let p = item.split(separator: "@")
        guard p.count == 3, let added = Int64(p[1]), let expires = Int64(p[2]) else { return nil }
        return TrustedKeyRow(fingerprint: String(p[0]), added: AuditLog.isoTime(added), expires: AuditLog.isoTime(expires))
    }
}

/// The trusted-keys part of `twostep devices` and `twostep status`.
func printTrustedKeys(_ data: ServiceData) {
    let keys = trustedKeys(data[.trustedSSHKeys] ?? "")
    if keys.isEmpty {
        say("trusted SSH keys: none")
        return
    }
    say("trusted SSH keys (no code asked until the time shown):")
    for k in keys { say("  \(k.fingerprint)  until \(k.expires)  (trusted \(k.added))") }
}

struct DevicesForget: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forget",
        abstract: "Stop trusting an SSH key (password and a current code): its next login asks for a code.")
    @Argument(help: "The key's fingerprint (SHA256:..., as `twostep devices` or `ssh-keygen -lf` shows it).")
    var fingerprint: String?
    @Flag(help: "Forget every trusted key.") var all = false
    @OptionGroup var options: SelfServiceOptions

    func validate() throws {
        guard (fingerprint == nil) == all else { throw ValidationError("give one FINGERPRINT or --all") }
        if let fingerprint, !SSHAuthInfo.isFingerprint(fingerprint) {
            throw ValidationError("\(fingerprint) is not a SHA256:... fingerprint")
        }
    }

    func run() throws {
        let data = try runSelfService(.forget, options, fingerprint: fingerprint ?? "all")
        if options.json { try printJSON(["user": data[.user] ?? "", "forgotten": Int(data[.forgotten] ?? "") ?? 0]) }
    }
}

extension Admin {
    struct Forget: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "End the trust of USER's SSH keys: every one, or the one FINGERPRINT names.")
        @Argument(help: "The user.") var user: String
        @Argument(help: "One key's fingerprint (SHA256:...); without it, every key.") var fingerprint: String?
        @OptionGroup var options: ConfigOptions

        func validate() throws {
            if let fingerprint, !SSHAuthInfo.isFingerprint(fingerprint) {
                throw ValidationError("\(fingerprint) is not a SHA256:... fingerprint")
            }
        }

        func run() throws {
            let ctx = try LocalStore(options)
            let removed = try ctx.adminChange("admin_forget", user: user, locked: false) { () throws -> Int in
                let removed = try SelfService.forgetTrust(user, fingerprint: fingerprint, store: ctx.store)
                // A fingerprint that names no trusted key changed nothing: say so and fail, so
                // that revoking a key by a mistyped (or another key's) fingerprint is noticed.
                if let fingerprint, removed == 0 {
                    throw CLIError("\(fingerprint) is not a trusted key of \(user); nothing was changed " +
                                   "(`twostep admin show \(user)` lists the trusted keys)")
                }
                return removed
            }
            print("twostep: \(user): \(removed) trusted SSH key(s) forgotten")
        }
    }
}
