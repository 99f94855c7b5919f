import ArgumentParser
import Glibc
import TwoStepCore
import TwoStepCrypto
import TwoStepService
import TwoStepStore
import TwoStepSystem

struct Admin: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Administer the store (root): keys, enrolments, lockouts.",
        subcommands: [Init.self, Import.self, NewBackupCodes.self, Reset.self, Unlock.self, Show.self, List.self, RotateKey.self])
}

extension Admin {
    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the key and state directories with safe modes, and a master key if there is none.")
        @OptionGroup var options: ConfigOptions

        func run() throws {
            let config = try options.load()
            try withCLIErrors {
                try Files.makeDirectory(config.stateDir, mode: 0o700)
                try Files.makeDirectory(config.keyDir, mode: 0o700)
                let ring = try KeyRing(keyDir: config.keyDir, environment: nil)
                if ring.hasActiveKey() {
                    print("twostep: key directory \(config.keyDir) already has an active key; kept it")
                } else {
                    let id = try ring.createKey()
                    print("twostep: created master key \(id) in \(config.keyDir)")
                }
                print("twostep: state directory \(config.stateDir) ready (0700)")
            }
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Enrol USER with a known secret (migration, provisioning); active at once.",
            discussion: "Give `--secret -` to read the Base32 secret from standard input, which keeps it out of the process list.")
        @Argument(help: "The user to enrol.") var user: String
        @Option(help: "The Base32 secret, or - to read it from standard input.") var secret: String
        @Option(help: "The HMAC hash.") var algorithm: HashAlgorithm = .sha1
        @Option(help: "Code length: \(OTPPolicy.digitsText).") var digits: Int = 6
        @Option(help: "Time step: \(OTPPolicy.periodsText).") var period: Int = 30
        @Flag(help: "Replace an existing enrolment.") var replace = false
        @OptionGroup var options: ConfigOptions

        func validate() throws {
            guard OTPPolicy.digits.contains(digits) else { throw ValidationError("--digits must be \(OTPPolicy.digitsText)") }
            guard OTPPolicy.periods.contains(period) else { throw ValidationError("--period must be \(OTPPolicy.periodsText)") }
            guard isValidUserName(user) else { throw ValidationError("invalid user name \"\(user)\"") }
        }

        func run() throws {
            let ctx = try LocalStore(options)
            try ctx.requireRoot("admin import")
            // Keyed by NSS's canonical name (ALICE and alice in a case-insensitive directory
            // are one record); a name NSS does not know is imported as given.
            let user = canonicalUserName(self.user) ?? self.user
            var text = secret
            if secret == "-" {
                text = readLineUnbuffered()?.withBytes { String(decoding: $0, as: UTF8.self) } ?? ""
            } else {
                writeStderr("twostep: warning: a secret on the command line is visible to other users in the process list; prefer --secret -\n")
            }
            var bytes: [UInt8]
            do { bytes = try Base32.decode(text) } catch { throw CLIError("--secret: \(error)") }
            defer { Crypto.wipe(&bytes) }
            guard bytes.count >= 10 else { throw CLIError("--secret: at least 80 bits (16 Base32 characters) are needed") }
            let params = OTPParameters(algorithm: algorithm, digits: digits, period: period)
            try ctx.adminChange("admin_import", user: user) {
                if try ctx.store.hasRecord(user) && !replace {
                    throw CLIError("\(user) is already enrolled; give --replace to overwrite")
                }
                let record = UserRecord(secret: bytes, parameters: params, created: ctx.now(), backupKey: try Crypto.randomBytes(32), backupHashes: [])
                try ctx.store.saveRecord(record, for: user)
                try ctx.store.saveState(UserState(), for: user)
            }
            print("twostep: \(user) enrolled (\(params.algorithm.rawValue), \(digits) digits, \(period) s)")
        }
    }

    struct NewBackupCodes: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "backup-codes",
            abstract: "Issue a fresh set of backup codes for USER; earlier codes stop working.")
        @Argument(help: "The user.") var user: String
        @Flag(help: "Print {\"user\": …, \"backup_codes\": […]}.") var json = false
        @OptionGroup var options: ConfigOptions

        func run() throws {
            let ctx = try LocalStore(options)
            let codes = try ctx.adminChange("admin_backup_codes", user: user, locked: false) {
                try ctx.store.issueBackupCodes(for: user)
            }
            if json {
                try printJSON(["user": user, "backup_codes": codes])
            } else {
                print("New backup codes for \(user) (each works once; earlier codes no longer work):")
                for c in codes { print("  \(c)") }
            }
        }
    }

    struct Reset: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove USER's enrolment and state; they must enrol again.")
        @Argument(help: "The user.") var user: String
        @OptionGroup var options: ConfigOptions

        func run() throws {
            let ctx = try LocalStore(options)
            try ctx.adminChange("admin_reset", user: user) {
                guard try ctx.store.hasRecord(user) else { throw CLIError("\(user) is not enrolled") }
                try ctx.store.removeUser(user)
            }
            print("twostep: \(user) reset; they must enrol again")
        }
    }

    struct Unlock: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End USER's lockout and clear their failure count.")
        @Argument(help: "The user.") var user: String
        @OptionGroup var options: ConfigOptions

        func run() throws {
            let ctx = try LocalStore(options)
            try ctx.adminChange("admin_unlock", user: user) {
                var state: UserState
                do { state = try ctx.store.loadState(user) } catch StoreError.damaged {
                    // A damaged state loses its replay mark: start after every code valid now,
                    // counted in the steps of the user's own authenticator (not the config's).
                    // (A record that cannot be read either is no login's concern: the config's.)
                    let record = (try? ctx.store.loadRecord(user)) ?? nil
                    let parameters = record?.parameters ?? ctx.config.otpParameters
                    state = UserState(lastStep: parameters.step(at: ctx.now()) + Int64(ctx.config.window))
                }
                state.failures = []
                state.lockedUntil = 0
                try ctx.store.saveState(state, for: user)
            }
            print("twostep: \(user) unlocked")
        }
    }

    struct RotateKey: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-key",
            abstract: "Make a new master key active and re-seal every record with it.",
            discussion: "Old key files are kept (a backup may still need them) unless --retire is given, which removes them once every record has been re-sealed.")
        @Flag(help: "Delete the old key files after re-sealing.") var retire = false
        @OptionGroup var options: ConfigOptions

        func run() throws {
            let ctx = try LocalStore(options)
            try ctx.requireRoot("admin rotate-key")
            guard KeyRing.environmentValue() == nil else {
                throw CLIError("\(KeyRing.environmentVariable) is set: rotate that key where it is managed")
            }
            let ring = try withCLIErrors { try KeyRing(keyDir: ctx.config.keyDir) }
            let old = try withCLIErrors { try ring.activeKey().id }
            let new = try withCLIErrors { try ring.createKey() }
            var failed: [String] = []
            for user in try withCLIErrors({ try ctx.store.enrolledUsers() }) {
                do {
                    try ctx.store.withLock(user) {
                        if let record = try ctx.store.loadRecord(user) { try ctx.store.saveRecord(record, for: user) }
                    }
                } catch {
                    failed.append(user)
                    writeStderr("twostep: \(user): not re-sealed: \(error)\n")
                }
            }
            ctx.audit.record(AuditEvent(event: "admin_rotate_key", user: "-", service: "twostep",
                                        result: failed.isEmpty ? "success" : "failure",
                                        detail: "\(old) -> \(new) by \(invokingUser())"))
            print("twostep: master key \(new) is active (was \(old))")
            guard failed.isEmpty else {
                throw CLIError("\(failed.count) record(s) still need their old key; old keys kept")
            }
            if retire {
                let removed = try withCLIErrors { try ring.removeKeys(except: new) }
                print("twostep: removed old key(s): \(removed.joined(separator: ", "))")
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show USER's enrolment and state (never a secret).")
        @Argument(help: "The user.") var user: String
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var options: ConfigOptions

        func run() throws {
            let ctx = try LocalStore(options)
            try ctx.requireRoot("admin show")
            let info = try withCLIErrors { try summary(ctx, user) }
            if json { try printJSON(info) } else { printSummary(info) }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List enrolled users.")
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var options: ConfigOptions

        func run() throws {
            let ctx = try LocalStore(options)
            try ctx.requireRoot("admin list")
            let users = try withCLIErrors { try ctx.store.enrolledUsers() }
            let rows: [[String: Any]] = users.map { u in
                (try? summary(ctx, u)) ?? ["user": u, "enrolled": true, "error": "cannot be read"]
            }
            if json { try printJSON(["users": rows]); return }
            if rows.isEmpty { print("no users enrolled"); return }
            for r in rows {
                let locked = (r["locked_until"] as? String).map { " locked until \($0)" } ?? ""
                let err = (r["error"] as? String).map { " (\($0))" } ?? ""
                print("\(r["user"] ?? "")\t\(r["algorithm"] ?? "-")/\(r["digits"] ?? "-")\tbackup codes left: \(r["backup_codes_left"] ?? "-")\(locked)\(err)")
            }
        }
    }
}

/// What `show` and `list` tell about a user: the fields of `twostep status`.
func summary(_ ctx: LocalStore, _ user: String) throws -> [String: Any] {
    jsonObject(try SelfService.statusFields(user, store: ctx.store, config: ctx.config, now: ctx.now()))
}

func printSummary(_ info: [String: Any]) {
    for key in ["user", "enrolled", "enrolled_at", "algorithm", "digits", "period", "backup_codes_left", "last_code_at", "recent_failures", "locked", "locked_until"] {
        if let v = info[key] { print("\(key): \(v)") }
    }
}

/// `--algorithm SHA1|SHA256|SHA512` (any case), parsed by the argument parser.
extension HashAlgorithm: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
    public var defaultValueDescription: String { rawValue }
}
