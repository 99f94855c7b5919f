// SPDX-License-Identifier: Apache-2.0
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
        subcommands: [Init.self, Import.self, ImportGoogleAuthenticator.self, ImportOath.self, NewBackupCodes.self, Reset.self, Unlock.self, Show.self, List.self, Resync.self, RotateKey.self,
                      DB.self, Migrate.self, ExportKey.self, ImportKey.self, Audit.self, Report.self, TestMail.self,
                      Forget.self, SetEmail.self, Invite.self, RotateSecret.self, Bypass.self, RecoveryCode.self])
}

extension Admin {
    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the key and state directories with safe modes, and a master key if there is none.",
            discussion: """
            A new master key is made only when key_dir has no active key, and not when records \
            in state_dir are sealed under keys key_dir lacks (a lost or emptied key_dir): a new \
            key would open none of them. Restore key_dir from a backup, or `twostep admin \
            import-key BUNDLE`; --force makes the new key anyway (those users must enrol again).
            """)
        @Flag(help: "Make a new master key even though records name keys that key_dir lacks.") var force = false
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
                    if config.store == .files && !force {
                        let census = try KeyRotation(store: FileUserStore(directory: config.stateDir, keys: ring), ring: ring).census()
                        let missing = census.filter { $0.key != KeyRotation.unreadable && (try? ring.key(id: $0.key)) == nil }
                        if !missing.isEmpty {
                            let count = missing.values.reduce(0) { $0 + $1.count }
                            throw CLIError("\(count) record(s) in \(config.stateDir) are sealed under key(s) " +
                                           "\(missing.keys.sorted().joined(separator: ", ")) that \(config.keyDir) does not hold; " +
                                           "a new key would open none of them. Restore \(config.keyDir) from a backup, or run " +
                                           "`twostep admin import-key BUNDLE`; --force makes a new key anyway (those users must enrol again)")
                        }
                    }
                    let id = try ring.createKey()
                    print("twostep: created master key \(id) in \(config.keyDir)")
                }
                print("twostep: state directory \(config.stateDir) ready (0700)")
            }
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Enrol USER with a known secret (migration, provisioning, a hardware token); active at once.",
            discussion: """
            Give `--secret -` to read the Base32 secret from standard input, which keeps it out of the process list. \
            A user may have several authenticators (at most \(Authenticator.maxCount)): --name NAME adds one next to \
            the others (default name: default); --replace replaces the one of that name (a new secret's counter, replay \
            mark and drift start afresh; the same secret again keeps its replay mark and never lowers its counter). \
            --type hotp --counter N imports a counter-based token (RFC 4226) whose next code is \
            at counter N. A USER no account has (NSS) is enrolled all the same, with a warning. A first import \
            gives the user no backup codes: `twostep admin backup-codes USER` (or the user's `twostep backup-codes`) \
            makes them.

            `--batch FILE` (`-`: standard input) enrols many users, one JSON object per line: \
            {"user": "alice", "secret": "BASE32", "algorithm": "SHA1", "digits": 6, "period": 30, \
            "name": "phone", "type": "totp"} or {..., "type": "hotp", "counter": 0} (all but user and \
            secret optional; the defaults as for one user). Each line is imported whole or not at \
            all; a bad line is reported with its number and skipped, and a summary follows (exit \
            status 1 when a line failed). --replace applies to every line. On a terminal it shows \
            progress; Ctrl-C stops after the lines already read are written (exit status 130). \
            Each imported user is one `admin_import` event in audit_log, the run one \
            `admin_import_batch` event (also in syslog).
            """)
        @Argument(help: "The user to enrol (not with --batch).") var user: String?
        @Option(help: "The Base32 secret, or - to read it from standard input.") var secret: String?
        @Option(help: ArgumentHelp("Enrol every user of a JSON-lines FILE (- for standard input).", valueName: "file")) var batch: String?
        // Optional, so that --batch can refuse them (its lines carry their own): defaults below.
        @Option(help: "The authenticator's name (\(Authenticator.nameRule); default: \(Authenticator.defaultName)).") var name: String?
        @Option(help: "totp (time based, the default) or hotp (counter based).") var type: AuthenticatorKind?
        @Option(help: "HOTP only: the counter of the token's next code.") var counter: UInt64?
        @Option(help: "The HMAC hash (default: SHA1).") var algorithm: HashAlgorithm?
        @Option(help: "Code length: \(OTPPolicy.digitsText) (default 6).") var digits: Int?
        @Option(help: "TOTP only: time step: \(OTPPolicy.periodsText) (default 30).") var period: Int?
        @Flag(help: "Replace the authenticator of that name (without --name: the enrolment's default one).") var replace = false
        @OptionGroup var options: ConfigOptions

        func validate() throws {
            if batch != nil {
                // Each line gives its own (with the defaults of one user): an option here
                // would be a default nobody applies.
                guard user == nil, secret == nil, counter == nil, name == nil, type == nil, algorithm == nil,
                      digits == nil, period == nil else {
                    throw ValidationError("--batch takes every field from its lines: give no USER, --secret, --name, " +
                                          "--type, --counter, --algorithm, --digits or --period")
                }
                return
            }
            guard let user, secret != nil else { throw ValidationError("give USER and --secret, or --batch FILE") }
            guard OTPPolicy.digits.contains(digits ?? 6) else { throw ValidationError("--digits must be \(OTPPolicy.digitsText)") }
            if let period, !OTPPolicy.periods.contains(period) { throw ValidationError("--period must be \(OTPPolicy.periodsText)") }
            guard isValidUserName(user) else { throw ValidationError("invalid user name \"\(user)\"") }
            guard Authenticator.isValidName(name ?? Authenticator.defaultName) else { throw ValidationError("--name: \(Authenticator.nameRule)") }
            if counter != nil && type != .hotp { throw ValidationError("--counter goes with --type hotp") }
            if period != nil && type == .hotp { throw ValidationError("--period goes with --type totp (an HOTP token counts, it has no time step)") }
        }

        func run() throws {
            let ctx = try LocalStore(options)
            if let batch { return try BatchImport(ctx: ctx, source: batch, replace: replace).run() }
            guard let given = user, let secret else { return }
            try ctx.requireRoot("admin import")
            // Keyed by NSS's canonical name (ALICE and alice in a case-insensitive directory
            // are one record); a name NSS does not know is imported as given.
            let canonical = canonicalUserName(given)
            let user = canonical ?? given
            if canonical == nil { warnUnknownAccount(given) }
            let text: SecretBytes
            if secret == "-" {
                text = readLineUnbuffered() ?? SecretBytes([])
            } else {
                writeStderr("twostep: warning: a secret on the command line is visible to other users in the process list; prefer --secret -\n")
                text = SecretBytes(Array(secret.utf8))
            }
            var bytes: [UInt8]
            do { bytes = try text.withBytes { try importedSecret($0, quiet: false) } } catch { throw CLIError("--\(error)") }
            defer { Crypto.wipe(&bytes) }
            let name = self.name ?? Authenticator.defaultName, type = self.type ?? .totp
            let algorithm = self.algorithm ?? .sha1, digits = self.digits ?? 6
            let params = OTPParameters(algorithm: algorithm, digits: digits, period: period ?? 30)
            let authenticator = Authenticator(name: name, kind: type, secret: bytes, parameters: params, added: ctx.now())
            let added = try ctx.adminChange("admin_import", user: user, detail: authenticator.label) {
                try storeImported(ctx, user: user, authenticator: authenticator, counter: counter, replace: replace)
            }
            let what = type == .hotp ? "hotp, \(params.algorithm.rawValue), \(digits) digits, next counter \(counter ?? 0)"
                                     : "\(params.algorithm.rawValue), \(digits) digits, \(params.period) s"
            print("twostep: \(user) enrolled" + (added || name != Authenticator.defaultName ? " with authenticator \(name)" : "") + " (\(what))")
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
        static let configuration = CommandConfiguration(abstract: "Remove USER's enrolment and state (a tombstone keeps the record generation); they must enrol again.")
        @Argument(help: "The user.") var user: String
        @Option(help: "Why (written to the audit log with the acting administrator).") var reason: String?
        @OptionGroup var options: ConfigOptions

        func validate() throws { if let reason { try checkReason(reason) } }

        func run() throws {
            let ctx = try LocalStore(options)
            try ctx.requireEnrolled(user, for: "admin_reset")
            try ctx.repairLockFile(user)
            try ctx.adminChange("admin_reset", user: user, reason: reason) {
                guard try ctx.store.hasRecord(user) else { throw CLIError("\(user) is not enrolled") }
                try ctx.store.removeUser(user)
            }
            print("twostep: \(user) reset; they must enrol again")
        }
    }

    struct Unlock: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End USER's lockout and clear their failure count.")
        @Argument(help: "The user.") var user: String
        @Option(help: "Why (written to the audit log with the acting administrator).") var reason: String?
        @OptionGroup var options: ConfigOptions

        func validate() throws { if let reason { try checkReason(reason) } }

        func run() throws {
            let ctx = try LocalStore(options)
            try ctx.requireEnrolled(user, for: "admin_unlock")
            try ctx.repairLockFile(user)
            var lostTokens: [String] = []
            var repaired = false
            var wasLocked = false
            try ctx.adminChange("admin_unlock", user: user, reason: reason) {
                // Nobody's state to repair: no file is made for a name that has no enrolment.
                guard try ctx.store.hasRecord(user) else { throw StoreError.notEnrolled(user) }
                var state: UserState
                do {
                    state = try ctx.store.loadState(user)
                    wasLocked = state.lockedUntil > ctx.now() || !state.failures.isEmpty
                } catch StoreError.damaged {
                    wasLocked = true
                    repaired = true
                    // A damaged state loses its replay marks, and no spent code may pass again:
                    // each TOTP authenticator restarts after its own codes valid now (counted
                    // in its own period, not the config's); an HOTP token's counter cannot be
                    // recovered, so it is marked lost and takes no code until `admin resync`
                    // finds it (from counter 0) with two codes in a row. (A record that cannot
                    // be read either is no login's concern: the config's period then.)
                    state = UserState()
                    if let record = (try? ctx.store.loadRecord(user)) ?? nil {
                        for a in record.authenticators {
                            switch a.kind {
                            case .totp:
                                state.devices[a.name] = AuthenticatorState(lastStep: a.parameters.step(at: ctx.now()) + Int64(ctx.config.window))
                            case .hotp:
                                state.devices[a.name] = AuthenticatorState(counter: AuthenticatorState.lostCounter)
                                lostTokens.append(a.name)
                            }
                        }
                    } else {
                        state.lastStep = ctx.config.otpParameters.step(at: ctx.now()) + Int64(ctx.config.window)
                    }
                }
                state.failures = []
                state.lockedUntil = 0
                state.lockouts = 0
                try ctx.store.saveState(state, for: user)
            }
            print(wasLocked ? "twostep: \(user) unlocked" : "twostep: \(user) was not locked (and had no recent failures)")
            // Unlocking repairs the state only: say so when the record cannot be opened either.
            do { _ = try ctx.store.loadRecord(user) } catch {
                writeStderr("twostep: warning: \(user)'s record cannot be opened (\(error)); logins fail until it is " +
                            "replaced (`twostep admin reset \(user)`, then enrol again)\n")
            }
            for name in lostTokens {
                print("twostep: \(user)'s state was damaged: HOTP token \(name)'s counter is lost, and none of its codes " +
                      "works until `twostep admin resync \(user) --name \(name)` finds it (it asks for two codes in a row)")
            }
            if repaired {
                print("twostep: \(user)'s state was damaged and is made anew: codes valid now stay spent, and a clock " +
                      "offset learned by `admin resync` (or followed since) is forgotten; if a phone's clock is off, " +
                      "run `twostep admin resync \(user)` again")
            }
        }
    }

    struct RotateKey: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-key",
            abstract: "Make a new master key active and re-seal every record with it.",
            discussion: """
            Safe to interrupt at any moment (even kill -9): records are re-sealed a batch at a \
            time under their users' locks (or each in its own short transaction with store = \
            postgresql) with atomic writes, and logins go on meanwhile. On a terminal it shows \
            progress; Ctrl-C stops after the batch at hand (exit status 130). A run that finds records still under an older key \
            finishes that rotation instead of starting another (when none of those can be re-sealed, a damaged record or an \
            older copy put back, they keep their keys and a new rotation starts for the others). For a fleet sharing a database: \
            --prepare makes the new key without using it; carry it to every host (export-key, \
            import-key), then --use ID on one host. Old key files are kept (a backup may still \
            need them) unless --retire is given, which after the rotation removes each one that no \
            record names any more, and names the records that still need the others. --retire \
            rotates first like the command alone (a new key, every record re-sealed); to only \
            clean up after a rotation, give `--use ID --retire` with the active key's ID.
            """)
        @Flag(help: "Only print how many records each key seals, and change nothing.") var status = false
        @Flag(help: "Make a new key but do not use it yet (print its id).") var prepare = false
        @Option(help: "Use this existing key (from --prepare) instead of making one.") var use: String?
        @Flag(help: "After rotating, delete old key files that no record needs any more.") var retire = false
        @Flag(help: "With --status: print JSON.") var json = false
        @OptionGroup var options: ConfigOptions

        func validate() throws {
            if prepare && (use != nil || retire || status) { throw ValidationError("--prepare goes alone") }
            if status && (use != nil || retire) { throw ValidationError("--status changes nothing: give it alone") }
            // Without --status the command rotates: a script asking for a JSON report must
            // not make a key that no backup holds.
            if json && !status { throw ValidationError("--json goes with --status (alone, rotate-key rotates the key)") }
        }

        func run() throws {
            guard geteuid() == 0 else { throw CLIError("admin rotate-key needs root") }
            let ctx = try LocalStore(options)
            guard KeyRing.environmentValue() == nil else {
                throw CLIError("\(KeyRing.environmentVariable) is set: rotate that key where it is managed")
            }
            let ring = try withCLIErrors { try KeyRing(keyDir: ctx.config.keyDir) }
            let rotation = KeyRotation(store: ctx.store, ring: ring)
            if status { return try printStatus(rotation) }
            if prepare {
                let active = try withCLIErrors { try ring.activeKey().id }
                let id = try withCLIErrors { try ring.createKey(activate: false) }
                print("twostep: master key \(id) made, not yet in use (active: \(active)); give it to every host, then `twostep admin rotate-key --use \(id)`")
                return
            }

            var plan = try withCLIErrors { try rotation.plan(use: use) }
            var failed: [String] = []
            // Ctrl-C (or SIGTERM) ends the run between batches: every record is whole, under
            // the old key or the new one, and running the command again finishes the job.
            Interrupt.catchSignals()
            func pass(_ plan: KeyRotation.Plan) throws -> Int {
                if let previous = plan.previousKey {
                    print("twostep: master key \(plan.activeKey) is active (was \(previous)); re-sealing \(plan.users.count) record(s)")
                } else if plan.users.isEmpty {
                    print("twostep: every record is under the active key \(plan.activeKey); nothing to re-seal")
                } else {
                    print("twostep: finishing an unfinished rotation: \(plan.users.count) record(s) still under an older key; re-sealing them under \(plan.activeKey)")
                }
                let progress = Progress(total: plan.users.count, verb: "re-sealed")
                defer { progress.finish() }
                return try withCLIErrors {
                    try rotation.reseal(plan.users, activeKey: plan.activeKey, stop: { Interrupt.requested != nil }) { user, error in
                        if let error {
                            failed.append(user)
                            progress.interrupt("twostep: \(user): not re-sealed: \(error)\n")
                        }
                        progress.step(failed: error != nil)
                    }
                }
            }
            var done = try pass(plan)
            var total = plan.users.count
            // Every record left under an older key failed to re-seal (damaged, or an older
            // copy put back): "finishing" that rotation is all any later run would do, and no
            // new key would ever be made. Those records keep their keys; the others rotate.
            if use == nil, plan.resuming, done == plan.users.count, !failed.isEmpty, failed.count == plan.users.count {
                print("twostep: the \(failed.count) record(s) left under older keys cannot be re-sealed (above); " +
                      "they keep their keys, and the rotation goes on without them")
                plan = try withCLIErrors { try rotation.startNew(excluding: Set(failed)) }
                done += try pass(plan)
                total += plan.users.count
            }
            let left = total - done
            ctx.audit.record(AuditEvent(event: "admin_rotate_key", user: "-", service: "twostep",
                                        result: failed.isEmpty && left == 0 ? "success" : "failure",
                                        detail: "\(plan.previousKey.map { "\($0) -> " } ?? "resumed, ")\(plan.activeKey): " +
                                                "\(done - failed.count) re-sealed, \(failed.count) failed" +
                                                (left > 0 ? ", \(left) left (interrupted)" : "") + ", by \(actingAdmin())"))
            if left > 0 {
                print("twostep: interrupted: \(done - failed.count) record(s) re-sealed, \(left) still under an older key; " +
                      "run `twostep admin rotate-key` again to finish (old keys are kept)")
                throw ExitCode(Interrupt.exitStatus(Interrupt.requested ?? SIGINT))
            }
            // Records no user name is known for cannot be re-sealed; they keep their key.
            let unnamed = try withCLIErrors { try rotation.unnamedCensus() }.filter { $0.key != plan.activeKey }
            for (id, files) in unnamed.sorted(by: { $0.key < $1.key }) {
                writeStderr("twostep: \(files.count) record(s) whose user name is unknown are still under \(id == KeyRotation.unreadable ? "an unknown key" : "key \(id)") and were not re-sealed: \(listed(files)) " +
                            "(re-enrol each user with `twostep admin import --replace`)\n")
            }
            if retire {
                let (removed, kept) = try withCLIErrors { try rotation.retire() }
                if !removed.isEmpty { print("twostep: removed old key(s): \(removed.joined(separator: ", "))") }
                for (id, users) in kept.sorted(by: { $0.key < $1.key }) {
                    writeStderr("twostep: key \(id) kept: still named by \(users.count) record(s): \(listed(users))\n")
                }
                if !kept.isEmpty { throw CLIError("old key(s) kept while records need them") }
            }
            guard failed.isEmpty else {
                throw CLIError("\(failed.count) record(s) could not be re-sealed (\(listed(failed))); their keys are kept")
            }
        }

        func printStatus(_ rotation: KeyRotation) throws {
            let census = try withCLIErrors { try rotation.census() }
            let unnamed = try withCLIErrors { try rotation.unnamedCensus() }
            let active = try withCLIErrors { try rotation.ring.activeKeyID() }
            let files = try withCLIErrors { try rotation.ring.keyIDs() }
            let damaged = rotation.ring.damagedKeyFiles(files)
            let ids = Set(files).union(census.keys).union(unnamed.keys).union([active]).sorted()
            if json {
                var keys: [[String: Any]] = []
                for id in ids where id != KeyRotation.unreadable {
                    keys.append(["id": id, "active": id == active,
                                 "records": (census[id]?.count ?? 0) + (unnamed[id]?.count ?? 0),
                                 "key_file": files.contains(id),
                                 "key_file_problem": damaged[id].map { $0 as Any } ?? jsonNull])
                }
                try printJSON(["active": active, "keys": keys,
                               "unreadable": census[KeyRotation.unreadable] ?? [],
                               "unnamed_records": unnamed.values.flatMap { $0 }.sorted(),
                               "complete": census.keys.allSatisfy { $0 == active || $0 == KeyRotation.unreadable }
                                   && unnamed.keys.allSatisfy { $0 == active }] as [String: Any])
                return
            }
            for id in ids where id != KeyRotation.unreadable {
                var note = id == active ? " (active)" : (files.contains(id) ? "" : " (key file missing!)")
                if let problem = damaged[id] { note += " (key file damaged: \(problem))" }
                print("key \(id)\(note): \((census[id]?.count ?? 0) + (unnamed[id]?.count ?? 0)) record(s)")
            }
            if let bad = census[KeyRotation.unreadable] {
                print("unreadable records: \(bad.count) (\(listed(bad)))")
            }
            for (id, files) in unnamed.sorted(by: { $0.key < $1.key }) {
                print("records with no known user name under \(id == KeyRotation.unreadable ? "an unreadable header" : "key \(id)"): \(files.count) (\(listed(files)))")
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
            var info = try withCLIErrors { try summary(ctx, user) }
            let devices = try withCLIErrors { jsonObject(try SelfService.deviceFields(user, store: ctx.store)) }
            if let rows = devices["authenticators"] { info["authenticators"] = rows }
            // Root's view adds, from the state: each TOTP authenticator's clock offset
            // (learned at logins or set by `admin resync`), and the lockouts in a row (each
            // lasts twice the one before; `recent_failures` starts again from 0 at a lockout).
            if info["enrolled"] as? Bool == true, let state = try? ctx.store.loadState(user),
               var rows = info["authenticators"] as? [[String: Any]] {
                for i in rows.indices where rows[i]["type"] as? String == "totp" {
                    let name = rows[i]["name"] as? String ?? ""
                    rows[i]["clock_offset_seconds"] = Int(state.device(name).drift) * (rows[i]["period"] as? Int ?? 30)
                }
                info["authenticators"] = rows
                info["lockouts_in_a_row"] = state.lockouts
            }
            if json { try printJSON(withEveryList(info)); return }
            printSummary(info)
            if let rows = info["authenticators"] as? [[String: Any]] {
                print("authenticators:")
                for row in rows { print(describeAuthenticator(row)) }
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List enrolled users.")
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var options: ConfigOptions

        func run() throws {
            let ctx = try LocalStore(options)
            try ctx.requireRoot("admin list")
            // Streamed: one record read, one row written, at a time (only the sorted names
            // are held), so 100,000 users cost neither memory nor a wait before the first row.
            let users = try withCLIErrors { try ctx.store.enrolledUsers() }
            ctx.cacheKeys()
            let out = StreamedOutput()
            if json {
                out.write(users.isEmpty ? "{\n  \"users\" : []\n}\n" : "{\n  \"users\" : [\n")
            } else if users.isEmpty {
                out.write("no users enrolled\n")
            }
            var written = 0
            try forEachUser(users, ctx) { ctx, u in
                let r = (try? summary(ctx, u)) ?? ["user": u, "enrolled": true, "error": "cannot be read"]
                if json { return "    " + jsonText(r, indent: "    ") }
                let locked = (r["locked_until"] as? String).map { " locked until \($0)" } ?? ""
                let err = (r["error"] as? String).map { " (\($0))" } ?? ""
                let bypass = (r["bypass_until"] as? String).map { " BYPASS until \($0)" } ?? ""
                let invited = (r["invitation_pending_until"] as? String).map { " invitation pending until \($0)" } ?? ""
                return "\(r["user"] ?? "")\t\(r["algorithm"] ?? "-")/\(r["digits"] ?? "-")\tbackup codes left: \(r["backup_codes_left"] ?? "-")\(locked)\(bypass)\(invited)\(err)\n"
            } emit: { _, row in
                written += 1
                out.write(!json ? row : row + (written == users.count ? "\n  ]\n}\n" : ",\n"))
            }
            out.flush()
        }
    }
}

/// What `show` and `list` tell about a user: the fields of `twostep status`.
func summary(_ ctx: LocalStore, _ user: String) throws -> [String: Any] {
    jsonObject(try SelfService.statusFields(user, store: ctx.store, config: ctx.config, now: ctx.now(), fullAddress: true))
}

func printSummary(_ info: [String: Any]) {
    for key in ["user", "enrolled", "enrolled_at", "algorithm", "digits", "period", "backup_codes_left", "last_code_at", "recent_failures", "locked", "locked_until",
                "lockouts_in_a_row", "email", "email_pending", "bypass_until", "invitation_pending_until"] {
        if let v = info[key] { print("\(key): \(v)") }
    }
    for key in info["trusted_ssh_keys"] as? [[String: Any]] ?? [] {
        print("trusted_ssh_key: \(key["fingerprint"] ?? "") until \(key["expires"] ?? "")")
    }
}

/// `--algorithm SHA1|SHA256|SHA512` (any case), parsed by the argument parser.
extension HashAlgorithm: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
    public var defaultValueDescription: String { rawValue }
}
