// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Glibc
import TwoStepCore
import TwoStepService
import TwoStepSystem
import TwoStepStore

// Support tooling for administrators: the audit log read back, a report of the store's
// health, and a test of the mail path.

extension Admin {
    struct Audit: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read the audit log (and its rotated, gzip-compressed predecessors), oldest first.",
            discussion: "Needs `audit_log` in the config. Lines that cannot be read (a crash mid-line, a damaged file) are skipped and counted on standard error.")
        @Option(help: "Only events of this user.") var user: String?
        @Option(help: "Only events since a DURATION ago (300, 30m, 24h, 7d) or a TIME (2026-11-29, 2026-11-29T13:00:00Z), UTC.") var since: String?
        @Option(help: "Only this event (verify, lockout, enroll, disable, admin_reset, mail_sent, ...).") var event: String?
        @Option(help: "Only this result (\(AuditEvent.results.joined(separator: ", "))).") var result: String?
        @Flag(help: "Print a JSON array of the matching events.") var json = false
        @OptionGroup var options: ConfigOptions

        func validate() throws {
            if let since, sinceTime(since, now: 0) == nil {
                throw ValidationError("--since: expected a duration such as 24h or 7d, or a time such as 2026-11-29T13:00:00Z")
            }
            // A misspelt result matched nothing and said only "no matching events".
            if let result, !AuditEvent.results.contains(result) {
                throw ValidationError("--result: one of \(AuditEvent.results.joined(separator: ", "))")
            }
        }

        func run() throws {
            guard geteuid() == 0 else { throw CLIError("admin audit needs root") }
            let config = try options.load()
            guard let path = config.auditLog else {
                throw CLIError("no audit_log in \(config.path): events go to syslog (authpriv) only")
            }
            let filter = AuditFilter(user: user, since: since.flatMap { sinceTime($0, now: Int64(time(nil))) },
                                     event: event, result: result)
            for w in AuditReader.warnings(for: path) { writeStderr("twostep: warning: audit log \(w)\n") }
            var count = 0
            var events = Set<String>()   // every event name read, to tell a misspelt --event
            if json { writeStdout("[") }
            let damaged = try withCLIErrors {
                try AuditReader.read(path: path) { e in
                    if event != nil, events.count < 1000, let name = e["event"] { events.insert(name) }
                    guard filter.matches(e) else { return }
                    if json {
                        let obj = e.fields.map { "\(jsonString($0.key)):\(jsonString($0.value))" }.joined(separator: ",")
                        writeStdout((count == 0 ? "\n  {" : ",\n  {") + obj + "}")
                    } else {
                        if count == 0 { writeStdout(auditRow(["TIME", "EVENT", "USER", "SERVICE", "RHOST", "RESULT", "DETAIL"])) }
                        writeStdout(auditRow([e["time"] ?? "-", e["event"] ?? "-", e["user"] ?? "-",
                                              e["service"] ?? "-", e["rhost"] ?? "-", e["result"] ?? "-", e["detail"] ?? ""]))
                    }
                    count += 1
                }
            }
            if json { writeStdout(count == 0 ? "]\n" : "\n]\n") } else if count == 0 { writeStdout("no matching events\n") }
            if let event, !events.contains(event) {
                writeStderr("twostep: no event named \(displaySafe(event)) is in the audit log" +
                            (events.isEmpty ? "\n" : "; it holds: \(events.sorted().map(displaySafe).joined(separator: ", "))\n"))
            }
            if damaged > 0 { writeStderr("twostep: \(damaged) line(s) of the audit log could not be read and were skipped\n") }
        }
    }

    struct Report: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Summarise the store: enrolled users, users without backup codes, lockouts, failures in the last 24 h.")
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var options: ConfigOptions

        func run() throws {
            guard geteuid() == 0 else { throw CLIError("admin report needs root") }
            let ctx = try LocalStore(options)
            let now = ctx.now()
            // One record in memory at a time; what is kept is names (the lists printed).
            var noBackup: [String] = [], unreadable: [String] = []
            var locked: [[String: Any]] = [], bypasses: [[String: Any]] = []
            let enrolled = try withCLIErrors { try ctx.store.enrolledUsers() }
            ctx.cacheKeys()
            try withCLIErrors {
                try forEachUser(enrolled, ctx) { ctx, user -> (noBackup: Bool, lockedUntil: Int64, bypassUntil: Int64)? in
                    guard let (record, state) = try? ctx.store.loadRecordAndState(user) else { return nil }
                    return (record?.backupHashes.isEmpty ?? false, state.lockedUntil, record?.recovery.bypassUntil ?? 0)
                } emit: { user, facts in
                    guard let facts else { return unreadable.append(user) }
                    if facts.noBackup { noBackup.append(user) }
                    if facts.lockedUntil > now { locked.append(["user": user, "until": AuditLog.isoTime(facts.lockedUntil)]) }
                    if facts.bypassUntil > now { bypasses.append(["user": user, "until": AuditLog.isoTime(facts.bypassUntil)]) }
                }
            }
            var failures: [String: Int] = [:]
            if let path = ctx.config.auditLog {
                for w in AuditReader.warnings(for: path) { writeStderr("twostep: warning: audit log \(w)\n") }
                let filter = AuditFilter(since: now - 86_400, result: "failure")
                _ = try withCLIErrors {
                    try AuditReader.read(path: path) { e in
                        // "-": an event about no one user (a batch's summary line), not a user's failure.
                        if filter.matches(e), let u = e["user"], u != "-" { failures[u, default: 0] += 1 }
                    }
                }
            }
            if json {
                writeJSONStreamed(["enrolled": enrolled.count, "users": enrolled, "no_backup_codes": noBackup,
                                   "locked_out": locked, "bypasses": bypasses, "unreadable": unreadable,
                                   "failures_24h": failures.mapValues { $0 as Any },
                                   "audit_log": ctx.config.auditLog ?? ""] as [String: Any])
                return
            }
            print("enrolled users: \(enrolled.count)")
            print("without backup codes: \(noBackup.isEmpty ? "none" : listedCount(noBackup))")
            print("locked out now: " + (locked.isEmpty ? "none" : locked.map { "\($0["user"]!) (until \($0["until"]!))" }.joined(separator: ", ")))
            print("active bypasses: " + (bypasses.isEmpty ? "none" : bypasses.map { "\($0["user"]!) (until \($0["until"]!))" }.joined(separator: ", ")))
            if !unreadable.isEmpty { print("unreadable records: \(unreadable.joined(separator: ", ")) (see `twostep admin show USER`)") }
            if ctx.config.auditLog == nil {
                print("failures in the last 24 h: unknown (no audit_log in the config)")
            } else if failures.isEmpty {
                print("failures in the last 24 h: none")
            } else {
                print("failures in the last 24 h:")
                // Names from the audit log: a login attempt logs whatever name it was given.
                for (u, n) in failures.sorted(by: { ($1.value, $0.key) < ($0.value, $1.key) }) { print("  \(displaySafe(u)): \(n)") }
            }
        }
    }

    struct TestMail: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "test-mail",
            abstract: "Send a test message to ADDRESS through `mail_command`, to check that mail from twostep arrives.")
        @Argument(help: "Where to send it (user@domain, or a local user name).") var address: String
        @OptionGroup var options: ConfigOptions

        func run() throws {
            guard geteuid() == 0 else { throw CLIError("admin test-mail needs root") }
            let ctx = try LocalStore(options)
            let to = address.contains("@") ? address : address + "@" + localHostName()
            let message = MailMessage(
                from: ctx.config.mailFrom, to: to, subject: "twostep test message",
                text: "This is a test message from twostep on \(localHostName()).\nMail from twostep reaches this address.\n")
            do {
                let bytes = try message.rendered(date: ctx.now(), hostName: localHostName())
                try Mailer(config: ctx.config).send(bytes)
            } catch {
                ctx.audit.record(AuditEvent(event: "mail_failed", user: invokingUser(), service: "twostep",
                                            result: "failure", detail: "test to \(to): \(error)"))
                throw CLIError("mail to \(to) failed: \(error)")
            }
            ctx.audit.record(AuditEvent(event: "mail_sent", user: invokingUser(), service: "twostep",
                                        result: "success", detail: "test to \(to)"))
            print("twostep: test message handed to \(ctx.config.mailCommand.joined(separator: " ")) for \(to)")
        }
    }
}

/// `--since`: a duration before `now`, or a time.
func sinceTime(_ text: String, now: Int64) -> Int64? {
    if let seconds = Config.parseDuration(text) { return now - Int64(seconds) }
    return parseAuditTime(text)
}

func auditRow(_ cols: [String]) -> String {
    let widths = [20, 16, 16, 10, 15, 8]
    var out = ""
    for (i, c) in cols.enumerated() {
        let clean = displaySafe(c)
        if i < widths.count {
            out += clean + String(repeating: " ", count: max(1, widths[i] - clean.count + 1))
        } else {
            out += clean
        }
    }
    return out + "\n"
}


/// Every name up to 100, then the first ten and how many more (a report of a store of
/// 100,000 users stays readable; `--json` has every name).
func listedCount(_ names: [String]) -> String {
    names.count <= 100 ? names.joined(separator: ", ") : "\(names.count): " + listed(names)
}

/// `printJSON` of an object with its arrays written element by element through a
/// `StreamedOutput` (no one string of a 100,000-name list); the same text.
func writeJSONStreamed(_ object: [String: Any]) {
    let out = StreamedOutput()
    out.write("{\n")
    for (n, key) in object.keys.sorted().enumerated() {
        out.write("  " + jsonString(key) + " : ")
        if let array = object[key] as? [Any], !array.isEmpty {
            out.write("[\n")
            for (i, element) in array.enumerated() {
                out.write("    " + jsonText(element, indent: "    ") + (i == array.count - 1 ? "\n" : ",\n"))
            }
            out.write("  ]")
        } else {
            out.write(jsonText(object[key] as Any, indent: "  "))
        }
        out.write(n == object.count - 1 ? "\n" : ",\n")
    }
    out.write("}\n")
    out.flush()
}

/// At most ten names, then how many more.
func listed(_ names: [String]) -> String {
    names.count <= 10 ? names.joined(separator: ", ")
        : names.prefix(10).joined(separator: ", ") + " and \(names.count - 10) more"
}

/// Progress of long admin work on a terminal: done/total, rate and time left, redrawn at
/// most ten times a second; silent when standard output is not a terminal. With no total
/// (input from a pipe): done and rate.
final class Progress {
    let total: Int?
    let verb: String
    let noun: String
    let enabled = isatty(1) != 0
    var done = 0
    /// Of `done`, those that failed: the closing line counts them apart.
    var failed = 0
    let start = progressClock()
    var lastDraw = 0.0

    init(total: Int?, verb: String, noun: String = "record(s)") {
        self.total = total
        self.verb = verb
        self.noun = noun
        if enabled { fflush(stdout) }   // print()'s buffer first: the bar writes fd 1 directly
    }

    func step(failed: Bool = false) {
        done += 1
        if failed { self.failed += 1 }
        guard enabled else { return }
        let now = progressClock()
        if now - lastDraw >= 0.1 || done == total { draw(now) }
    }

    func draw(_ now: Double) {
        lastDraw = now
        let elapsed = max(now - start, 0.001)
        let rate = Double(done) / elapsed
        guard let total else { return writeStdout("\r\u{1B}[K  \(done) \(noun) \(verb), \(Int(rate))/s") }
        let left = rate > 0 ? Int(Double(max(total - done, 0)) / rate) : 0
        writeStdout("\r\u{1B}[K  \(done)/\(total) \(noun) \(verb), \(Int(rate))/s, \(left) s left")
    }

    /// A message that must not be drawn over.
    func interrupt(_ text: String) {
        if enabled { writeStdout("\r\u{1B}[K") }
        writeStderr(text)
    }

    func finish() {
        if enabled { writeStdout("\r\u{1B}[K") }
        let elapsed = max(progressClock() - start, 0.001)
        print("twostep: \(done - failed) \(noun) \(verb)\(failed > 0 ? ", \(failed) failed," : "") in \(String(format1: elapsed)) s (\(Int(Double(done) / elapsed))/s)")
    }
}

/// Standard output in 64 KiB writes, for listings of 100,000 rows (print()'s line
/// buffering on a terminal and one write per row would cost a system call each).
final class StreamedOutput {
    private var buffer = ""

    init() { fflush(stdout) }

    func write(_ s: String) {
        buffer += s
        if buffer.utf8.count >= 64 * 1024 { flush() }
    }

    func flush() {
        if !buffer.isEmpty { writeStdout(buffer) }
        buffer = ""
    }

    deinit { flush() }
}

/// Seconds on the monotonic clock, for rates.
func progressClock() -> Double { Double(Sys.monotonicMilliseconds()) / 1000 }

extension String {
    /// One decimal place, without Foundation.
    init(format1 v: Double) {
        let tenths = Int((v * 10).rounded())
        self = "\(tenths / 10).\(tenths % 10)"
    }
}

/// The host name mail from here names (`localhost` when the host has none).
func localHostName() -> String { Sys.hostName() ?? "localhost" }
