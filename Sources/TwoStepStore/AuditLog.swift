// SPDX-License-Identifier: Apache-2.0
import Glibc
import TwoStepSystem
import TwoStepCore

/// One audited event. Never holds a code, secret or password.
public struct AuditEvent {
    public var event: String      // enroll, verify, lockout, disable, admin_import, ...
    public var user: String
    public var service: String
    public var result: String     // one of `results`

    /// Every `result` an event is written with.
    public static let results = ["success", "failure", "refused", "error", "cancelled", "warning"]
    public var detail: String?
    public var rhost: String?

    public init(event: String, user: String, service: String, result: String,
                detail: String? = nil, rhost: String? = nil) {
        self.event = event; self.user = user; self.service = service
        self.result = result; self.detail = detail; self.rhost = rhost
    }

    /// The longest a field gets, in bytes, and `detail`. A refused login logs the name it
    /// was given, whatever its length; escaped, a long one would make a line longer than
    /// `AuditReader.maxLine`, which readers skip, so the attempt would vanish from
    /// `admin audit` and `admin report`.
    public static let fieldLimit = 512
    public static let detailLimit = 4096

    /// This event with every field cut to its limit, marked where it was cut.
    func bounded() -> AuditEvent {
        var e = self
        e.event = Self.cut(event, Self.fieldLimit)
        e.user = Self.cut(user, Self.fieldLimit)
        e.service = Self.cut(service, Self.fieldLimit)
        e.result = Self.cut(result, Self.fieldLimit)
        e.rhost = rhost.map { Self.cut($0, Self.fieldLimit) }
        e.detail = detail.map { Self.cut($0, Self.detailLimit) }
        return e
    }

    static func cut(_ s: String, _ limit: Int) -> String {
        guard s.utf8.count > limit else { return s }
        var out = String.UnicodeScalarView()
        var bytes = 0
        for c in s.unicodeScalars {
            bytes += String(c).utf8.count
            if bytes > limit { break }
            out.append(c)
        }
        return String(out) + "…(cut from \(s.utf8.count) bytes)"
    }
}

/// Every event goes to syslog (authpriv, warning) and, when `audit_log` is set, to that
/// file as one JSON object per line, written with one append.
public final class AuditLog {
    let path: String?
    let now: () -> Int64
    private static var opened = false
    /// A second copy of every event, set by a shared store (PostgreSQL's `twostep_audit`);
    /// best effort, after syslog and never instead of the local log.
    public static var mirror: ((AuditEvent, Int64) -> Void)? = nil

    public init(path: String?, now: @escaping () -> Int64 = { Int64(time(nil)) }) {
        self.path = path
        self.now = now
        if !AuditLog.opened {
            openlog("twostep", LOG_PID, LOG_AUTHPRIV)
            AuditLog.opened = true
        }
    }

    /// Opens the syslog connection now (a socket worker, before accept()), not inside
    /// the first login's audit line.
    public static func connectSyslog() {
        openlog("twostep", LOG_PID | LOG_NDELAY, LOG_AUTHPRIV)
        opened = true
    }

    public func record(_ event: AuditEvent) {
        let e = event.bounded()
        // Every value quoted and escaped as in the JSON line: a user name or rhost holding
        // `result=success`, a quote or a newline cannot forge a field or a line.
        var msg = "event=\(jsonString(e.event)) user=\(jsonString(e.user)) service=\(jsonString(e.service))"
        msg += " result=\(jsonString(e.result))"
        if let r = e.rhost, !r.isEmpty { msg += " rhost=\(jsonString(r))" }
        if let d = e.detail { msg += " detail=\(jsonString(d))" }
        Self.syslogLine(LOG_WARNING, msg)
        defer { Self.mirror?(e, now()) }
        if path != nil { append(jsonLine(e)) }
    }

    /// Events written to `audit_log` only (and the mirror), not to syslog, with one append
    /// for them all: one per user of a bulk change (`admin import --batch`), which would
    /// flood syslog (and meet journald's rate limit) while its summary event goes there.
    public func recordInFileOnly(_ events: [AuditEvent]) {
        let events = events.map { $0.bounded() }
        for e in events { Self.mirror?(e, now()) }
        if !events.isEmpty { append(events.map(jsonLine).joined()) }
    }

    func jsonLine(_ e: AuditEvent) -> String {
        var json = "{\"time\":\"\(Self.isoTime(now()))\",\"event\":\(jsonString(e.event)),"
        json += "\"user\":\(jsonString(e.user)),\"service\":\(jsonString(e.service)),"
        json += "\"result\":\(jsonString(e.result)),\"severity\":\"warning\""
        if let r = e.rhost, !r.isEmpty { json += ",\"rhost\":\(jsonString(r))" }
        if let d = e.detail { json += ",\"detail\":\(jsonString(d))" }
        return json + "}\n"
    }

    /// Appends whole lines to `audit_log` (when set) with one write.
    func append(_ text: String) {
        guard let path else { return }
        // O_NONBLOCK: a FIFO put there must not hang a login (the regular-file check below
        // then refuses it).
        // O_RDWR (not O_WRONLY): the last byte is read to see whether a writer that died
        // mid-line left it open.
        let fd = Sys.retry { open(path, O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0o600) }
        guard fd >= 0 else {
            Self.syslogLine(LOG_ERR, "cannot open audit log \(path): \(String(cString: strerror(errno)))")
            return
        }
        defer { close(fd) }
        // Only a regular file of ours that nobody else may write: events are not appended
        // to a file a user made (they could read, edit or empty it) or to a device. Syslog
        // has every event in any case.
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            Self.syslogLine(LOG_ERR, "cannot stat audit log \(path): \(String(cString: strerror(errno)))")
            return
        }
        if let problem = Self.auditFileProblem(st) {
            Self.syslogLine(LOG_ERR, "audit log \(path) not written: \(problem)")
            return
        }
        var bytes = Array(text.utf8)
        // A line left torn (a crash mid-write, a full disk) would swallow this event into
        // one unreadable line: start on a line of our own. (Two writers doing so at once
        // leave an empty line, which readers skip.)
        var last: UInt8 = UInt8(ascii: "\n")
        if st.st_size > 0, pread(fd, &last, 1, st.st_size - 1) == 1, last != UInt8(ascii: "\n") {
            bytes.insert(UInt8(ascii: "\n"), at: 0)
        }
        let n = bytes.withUnsafeBytes { p in Sys.retry { write(fd, p.baseAddress, p.count) } }
        if n != bytes.count {
            Self.syslogLine(LOG_ERR, "cannot write audit log \(path)")
        }
    }

    /// nil when `audit_log` may be appended to: a regular file owned by us, not writable by
    /// group or others (readable is fine: log readers in group adm).
    static func auditFileProblem(_ st: stat) -> String? {
        if st.st_mode & S_IFMT != S_IFREG { return "not a regular file" }
        return Files.ownershipProblem(st, allowGroupOtherRead: true)
    }

    /// Operational messages (damaged files, bad config) that are not audit events.
    public static func syslogLine(_ priority: Int32, _ message: String) {
        // Control characters escaped: a name inside an error message cannot start a line.
        // Printable ASCII (every audit event's line: its values are JSON-escaped) goes as is.
        if message.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) {
            Sys.syslog(LOG_AUTHPRIV | priority, message)
            return
        }
        var line = ""
        for u in message.unicodeScalars {
            if isDisplayControl(u) {
                let h = String(u.value, radix: 16)
                line += "\\x" + (h.count < 2 ? "0" : "") + h
            } else {
                line.unicodeScalars.append(u)
            }
        }
        Sys.syslog(LOG_AUTHPRIV | priority, line)
    }

    public static func isoTime(_ t: Int64) -> String {
        var tt = time_t(t)
        var tm = tm()
        gmtime_r(&tt, &tm)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(tm.tm_year + 1900)-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday))T\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec))Z"
    }
}

