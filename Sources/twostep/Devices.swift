// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import TwoStepProtocol
import TwoStepStore

/// `twostep devices`: what can answer for you. A command group so that other kinds of
/// device (trusted SSH keys) can add their own subcommands and sections next to these.
struct Devices: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List your authenticators (apps, tokens) and trusted SSH keys; remove or forget one.",
        discussion: """
        Every authenticator's code passes at login: a second phone, a tablet, a hardware \
        OATH token. `twostep enroll --add NAME` adds one; `twostep devices remove NAME` \
        removes one (password and a code from another one; the last one goes only with \
        `twostep disable`). Administrators add tokens with `twostep admin import --name`. \
        With `trust_ssh_key` in the config, an SSH key that passed a code is trusted for a \
        while (no code asked); `twostep devices forget` ends that trust.
        """,
        subcommands: [List.self, Remove.self, DevicesForget.self],
        defaultSubcommand: List.self)
}

extension Devices {
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Every authenticator (name, type, algorithm, digits, period or counter, added, last used) and trusted SSH key.")
        @OptionGroup var options: SelfServiceOptions

        func run() throws {
            let data = try runSelfService(.devices, options)
            if options.json {
                try printJSON(withEveryList(jsonObject(data)))
                return
            }
            let user = data[.user] ?? "?"
            guard data[.enrolled] == "true" else {
                say("\(user): not enrolled. Run `twostep enroll` to set up an authenticator app.")
                return
            }
            say("Authenticators of \(user) (a code from any of them passes):")
            for row in authenticatorRows(data[.authenticators] ?? "") {
                say(describeAuthenticator(row))
            }
            printTrustedKeys(data)
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove one authenticator (password and a current code from another one); every trusted SSH key is forgotten.")
        @Argument(help: "The authenticator's name (see `twostep devices`).") var name: String
        @OptionGroup var options: SelfServiceOptions

        func validate() throws {
            guard Authenticator.isValidName(name) else { throw ValidationError("a name is \(Authenticator.nameRule)") }
        }

        func run() throws {
            _ = try runSelfService(.devicesRemove, options, name: name)
            if options.json { try printJSON(["user": options.user ?? invokingUser(), "removed": name]) }
        }
    }
}

/// The `authenticators` data field (one `NAME TYPE ALGORITHM DIGITS PERIOD|- COUNTER|-
/// ADDED LAST_USED` line each) as JSON rows: name, type, algorithm, digits, period (TOTP)
/// or counter (HOTP: the next one expected; `counter_lost` instead when a damaged state
/// lost it), added, last_used (absent if never).
func authenticatorRows(_ text: String) -> [[String: Any]] {
    text.split(separator: "\n").compactMap { line in
        let f = line.split(separator: " ").map(String.init)
        guard f.count == 8 else { return nil }
        var row: [String: Any] = ["name": f[0], "type": f[1], "algorithm": f[2], "digits": Int(f[3]) ?? f[3]]
        if let period = Int(f[4]) { row["period"] = period }
        if f[5] == String(AuthenticatorState.lostCounter) {
            row["counter_lost"] = true   // a damaged state: no code works until admin resync
        } else if let counter = Int64(f[5]) {
            row["counter"] = counter
        }
        if let added = Int64(f[6]) { row["added"] = AuditLog.isoTime(added) }
        if let used = Int64(f[7]), used > 0 { row["last_used"] = AuditLog.isoTime(used) }
        return row
    }
}

/// One line of `twostep devices` and `admin show`.
func describeAuthenticator(_ row: [String: Any]) -> String {
    let kind = (row["type"] as? String) == "hotp"
        ? "hotp, \(row["algorithm"] ?? "?"), \(row["digits"] ?? "?") digits, " +
          (row["counter_lost"] != nil ? "counter lost (no code works until admin resync)" : "next counter \(row["counter"] ?? "?")")
        : "totp, \(row["algorithm"] ?? "?"), \(row["digits"] ?? "?") digits, every \(row["period"] ?? "?") s"
    // last_used is a time, or JSON's null (jsonObject) or absent (authenticatorRows) when never.
    let offset = (row["clock_offset_seconds"] as? Int).map { $0 == 0 ? "" : "; clock offset \($0 > 0 ? "+" : "")\($0) s" } ?? ""
    return "  \(row["name"] ?? "?")\t\(kind); added \(row["added"] ?? "?"); last used \(row["last_used"] as? String ?? "never")\(offset)"
}
