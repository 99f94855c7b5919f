// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Glibc
import TwoStepCore
import TwoStepCrypto
import TwoStepService
import TwoStepStore
import TwoStepSystem

// Taking users over from google-authenticator-libpam and pam_oath: their phones and
// tokens keep working, nobody enrols again.

extension Admin {
    struct ImportGoogleAuthenticator: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import-google-authenticator",
            abstract: "Take over google-authenticator-libpam users from their ~/.google_authenticator files.",
            discussion: """
            Each file is read the way pam_google_authenticator reads it, and refused (and reported) \
            when that module would refuse it: not a regular file of its user's, or with permissions \
            beyond 0600; twostep also refuses a symbolic link. The secret, TOTP_AUTH or \
            HOTP_COUNTER, STEP_SIZE, DISALLOW_REUSE (used steps stay used) and TIME_SKEW are \
            taken over; the 8-digit scratch codes become backup codes, each good once. A RATE_LIMIT \
            stricter than twostep's rate_limit, a wider WINDOW_SIZE and unknown options are reported. \
            Users already enrolled are skipped (run it again at will); --replace overwrites them. \
            Each user's import is written whole or not at all, and audited. The files are left as \
            they are unless --remove-original is given: then each is overwritten and removed once \
            its import has been read back from the store.
            """)
        @Argument(help: "The users whose ~/.google_authenticator to import.") var users: [String] = []
        @Flag(help: "Every account in the password database that has a ~/.google_authenticator.") var all = false
        @Option(help: ArgumentHelp("Import this file (the module's secret= path) for --user.", valueName: "path")) var file: String?
        @Option(help: ArgumentHelp("With --file: the user it belongs to.", valueName: "user")) var user: String?
        @Option(help: ArgumentHelp("With --file: the account that must own the file (the module's user= option); default: --user.",
                                   valueName: "account")) var owner: String?
        @Flag(help: "Read and check everything, print what would happen, change nothing.") var dryRun = false
        @Flag(help: "Overwrite users who are already enrolled.") var replace = false
        @Flag(help: "Shred each file once its import is verified.") var removeOriginal = false
        @OptionGroup var options: ConfigOptions

        func validate() throws {
            let ways = (users.isEmpty ? 0 : 1) + (all ? 1 : 0) + (file != nil ? 1 : 0)
            guard ways == 1 else { throw ValidationError("name USERs, or give --all, or --file PATH --user USER") }
            if file != nil && user == nil { throw ValidationError("--file needs --user") }
            if user != nil && file == nil { throw ValidationError("--user goes with --file") }
            if owner != nil && file == nil { throw ValidationError("--owner goes with --file") }
        }

        func run() throws {
            let ctx = try LocalStore(options)
            try ctx.requireRoot("admin import-google-authenticator")
            let importer = Importer(config: ctx.config, store: ctx.store, audit: ctx.audit, actor: invokingUser(), now: ctx.now)
            let report = ImportReport(dryRun: dryRun)
            if let file, let user {
                guard let account = lookUpPasswd(user) else { throw CLIError("no account named \(user)") }
                var fileOwner = account.uid
                if let owner {
                    guard let o = uid_t(owner) ?? lookUpPasswd(owner)?.uid else { throw CLIError("no account named \(owner)") }
                    fileOwner = o
                }
                importOne(account.name, path: file, owner: fileOwner, importer, report, ctx)
            } else if all {
                var none = 0
                for account in allAccounts() {
                    if !importOne(account.name, path: account.home + "/.google_authenticator", owner: account.uid,
                                  importer, report, ctx, quietIfMissing: true) { none += 1 }
                }
                print("(\(none) account(s) without a ~/.google_authenticator)")
            } else {
                for name in users {
                    guard let account = lookUpPasswd(name) else {
                        report.add(name, .failed("no such account"))
                        continue
                    }
                    importOne(account.name, path: account.home + "/.google_authenticator", owner: account.uid, importer, report, ctx)
                }
            }
            try report.finish()
        }

        /// One user's file, start to end. Returns false when there is no file.
        @discardableResult
        func importOne(_ user: String, path: String, owner: uid_t, _ importer: Importer, _ report: ImportReport,
                       _ ctx: LocalStore, quietIfMissing: Bool = false) -> Bool {
            let read: ForeignFile?
            do {
                read = try Files.readForeign(path: path, owner: owner, allowedMode: 0o600,
                                             limit: GoogleAuthenticatorFile.maxSize)
            } catch StoreError.unsafe(let p, let reason) {
                let outcome = ImportOutcome.refused("\(p): \(reason)")
                if !dryRun { importer.recordRefusal(user: user, source: path, outcome) }
                report.add(user, outcome)
                return true
            } catch {
                report.add(user, .failed("\(error)"))
                return true
            }
            guard var foreign = read else {
                if !quietIfMissing { report.add(user, .skipped("no \(path)")) }
                return false
            }
            defer { Crypto.wipe(&foreign.bytes) }
            let candidate: ImportCandidate
            do {
                let parsed = try GoogleAuthenticatorFile.parse(foreign.bytes)
                candidate = try Migration.candidate(user: user, path: path, file: parsed, config: ctx.config, now: ctx.now())
            } catch let e as GoogleAuthenticatorFileError {
                report.add(user, .failed("\(path): \(e)"))
                return true
            } catch ImportRefusal.skip(let why) {
                report.add(user, .skipped(why))
                return true
            } catch {
                // A file the module reads that twostep cannot take over: after the stacks
                // switch, its user would have no enrolment (exit status 1, audited).
                let outcome = ImportOutcome.refused("\(path): \(error)")
                if !dryRun { importer.recordRefusal(user: user, source: path, outcome) }
                report.add(user, outcome)
                return true
            }
            let outcome = importer.run(candidate, dryRun: dryRun, replace: replace)
            report.add(user, outcome, notes: candidate.notes)
            switch outcome {
            case .imported, .alreadyImported, .updated:
                guard removeOriginal else { break }
                if dryRun { report.note("would shred \(path)"); break }
                do {
                    try Files.shred(foreign)
                    importer.recordRemoval(user: user, source: path)
                    report.note("\(path) shredded")
                } catch {
                    report.add(user, .failed("imported, but the original was not removed: \(error)"), counted: false)
                }
            default:
                break
            }
            return true
        }
    }

    struct ImportOath: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import-oath",
            abstract: "Take over pam_oath users from its usersfile (such as /etc/users.oath).",
            discussion: """
            Lines: TYPE USER PIN HEXSECRET [COUNTER [LASTOTP [TIME]]], TYPE one of HOTP, \
            HOTP/E[/d], HOTP/T30[/d], HOTP/T60[/d]. Every line of a user becomes one of their \
            authenticators; HOTP counters go on from where pam_oath stopped, and a TOTP code \
            already used stays used. A line with a PIN other than - (or +, checked elsewhere) is \
            reported and its user not imported: twostep never stores passwords. So are users with \
            7-digit codes or secrets shorter than 80 bits. The file must be a regular file of \
            root's that only root can write. Users already enrolled are skipped; --replace \
            overwrites them. Audited; the usersfile is not changed.
            """)
        @Argument(help: "pam_oath's usersfile.") var usersfile: String
        @Flag(help: "Read and check everything, print what would happen, change nothing.") var dryRun = false
        @Flag(help: "Overwrite users who are already enrolled.") var replace = false
        @OptionGroup var options: ConfigOptions

        func run() throws {
            let ctx = try LocalStore(options)
            try ctx.requireRoot("admin import-oath")
            let importer = Importer(config: ctx.config, store: ctx.store, audit: ctx.audit, actor: invokingUser(), now: ctx.now)
            let report = ImportReport(dryRun: dryRun)
            let read: ForeignFile?
            do {
                read = try Files.readForeign(path: usersfile, owner: 0, allowedMode: 0o644, limit: 16 << 20)
            } catch StoreError.unsafe(let p, let reason) {
                if !dryRun { importer.recordRefusal(user: "-", source: usersfile, .refused(reason)) }
                throw CLIError("\(p): refusing unsafe file: \(reason)")
            } catch {
                throw CLIError("\(error)")
            }
            guard var file = read else { throw CLIError("\(usersfile): no such file") }
            defer { Crypto.wipe(&file.bytes) }
            if file.mode & 0o044 != 0 {
                writeStderr("twostep: warning: \(usersfile) is readable by group or others (mode \(String(file.mode, radix: 8))): " +
                            "treat its secrets as exposed\n")
            }
            let parsed = OathUsersFile.parse(file.bytes)
            // liboath writes each line's time in the local time of the process that ran
            // pam_oath (sshd, sudo: the system's zone, /etc/localtime), not in this shell's TZ.
            unsetenv("TZ")
            tzset()
            // A line or user that cannot be taken over is refused (exit status 1, audited):
            // after the stacks switch, that user would have no enrolment at all.
            func refuse(_ user: String, _ why: String) {
                let outcome = ImportOutcome.refused(why)
                if !dryRun { importer.recordRefusal(user: user, source: usersfile, outcome) }
                report.add(user, outcome)
            }
            for problem in parsed.problems where problem.user == nil {
                refuse("line \(problem.line)", problem.reason)
            }
            for (user, result) in Migration.candidates(usersfile: usersfile, file: parsed, localTime: localUnixTime, now: ctx.now()) {
                switch result {
                case .success(let candidate):
                    var notes = candidate.notes
                    if lookUpPasswd(user) == nil {
                        notes.append("no account named \(user) on this host: enrolled all the same (whoever is given " +
                                     "that name later meets this enrolment; `twostep admin reset \(user)` removes it)")
                    }
                    report.add(user, importer.run(candidate, dryRun: dryRun, replace: replace), notes: notes)
                case .failure(let refusal):
                    refuse(user, refusal.description)
                }
            }
            try report.finish()
        }
    }
}

/// The per-user lines and the totals at the end; the exit status is 1 when any user was
/// refused or failed.
final class ImportReport {
    let dryRun: Bool
    var imported = 0, updated = 0, skipped = 0, refused = 0, failed = 0

    init(dryRun: Bool) { self.dryRun = dryRun }

    func add(_ user: String, _ outcome: ImportOutcome, notes: [String] = [], counted: Bool = true) {
        let line: String
        switch outcome {
        case .imported(let what):
            line = (dryRun ? "would import: " : "imported: ") + what
            if counted { imported += 1 }
        case .alreadyImported:
            line = "skipped: already imported (enrolled with this secret)"
            if counted { skipped += 1 }
        case .updated(let what):
            line = (dryRun ? "would update: " : "updated: ") + what
            if counted { updated += 1 }
        case .skipped(let why):
            line = "skipped: " + why
            if counted { skipped += 1 }
        case .refused(let why):
            line = "refused: " + why
            if counted { refused += 1 }
        case .failed(let why):
            line = "failed: " + why
            failed += 1
        }
        print("\(printable(user)): \(printable(line))")
        for n in notes { note(n) }
    }

    func note(_ text: String) { print("  note: \(printable(text))") }

    /// Names and lines come from files users may write: no control character reaches the
    /// admin's terminal.
    func printable(_ s: String) -> String { displaySafe(s) }

    func finish() throws {
        // "updated" only when a rerun carried something over, so the usual line stays as it was.
        let totals = "\(imported) \(dryRun ? "to import" : "imported"), " + (updated > 0 ? "\(updated) \(dryRun ? "to update" : "updated"), " : "") +
            "\(skipped) skipped, \(refused) refused, \(failed) failed"
        print(dryRun ? "dry run, nothing changed: \(totals)" : "summary: \(totals)")
        if refused + failed > 0 { throw ExitCode(1) }
    }
}

struct PasswdEntry {
    let name: String
    let uid: uid_t
    let home: String
}

func lookUpPasswd(_ name: String) -> PasswdEntry? {
    guard isValidUserName(name) else { return nil }
    var pw = passwd()
    var result: UnsafeMutablePointer<passwd>?
    var buf = [CChar](repeating: 0, count: 1 << 16)
    guard getpwnam_r(name, &pw, &buf, buf.count, &result) == 0, let p = result else { return nil }
    return PasswdEntry(name: String(cString: p.pointee.pw_name), uid: p.pointee.pw_uid, home: String(cString: p.pointee.pw_dir))
}

/// Every account, once each, in the password database's order.
func allAccounts() -> [PasswdEntry] {
    var out: [PasswdEntry] = []
    var seen = Set<String>()
    setpwent()
    defer { endpwent() }
    while let p = getpwent() {
        let name = String(cString: p.pointee.pw_name)
        guard isValidUserName(name), seen.insert(name).inserted else { continue }
        out.append(PasswdEntry(name: name, uid: p.pointee.pw_uid, home: String(cString: p.pointee.pw_dir)))
    }
    return out
}

/// A usersfile timestamp (local time, as liboath writes it) as Unix time.
func localUnixTime(_ t: OathUsersFile.Timestamp) -> Int64? {
    var tm = Glibc.tm()
    tm.tm_year = Int32(t.year - 1900)
    tm.tm_mon = Int32(t.month - 1)
    tm.tm_mday = Int32(t.day)
    tm.tm_hour = Int32(t.hour)
    tm.tm_min = Int32(t.minute)
    tm.tm_sec = Int32(t.second)
    tm.tm_isdst = -1
    let time = mktime(&tm)
    return time == -1 ? nil : Int64(time)
}
