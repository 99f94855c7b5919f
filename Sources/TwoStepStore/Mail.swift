// SPDX-License-Identifier: Apache-2.0
import Glibc
import TwoStepCore
import TwoStepCrypto
import TwoStepSystem

/// Mail the Unix way: a complete RFC 5322 message piped to the system's mail command
/// (`mail_command`, default `/usr/sbin/sendmail -t -i`), never an SMTP client of our own.

/// Why a mail was not handed over. The text names the command's complaint, never the
/// message's content (which may hold a code).
public enum MailError: Error, CustomStringConvertible, Equatable {
    case invalidAddress(String)
    case invalidHeader(String)
    case spawn(command: String, errno: Int32)
    case timedOut(command: String, seconds: Int)
    case exitStatus(command: String, status: Int32, stderr: String)
    case signalled(command: String, signal: Int32)
    case io(String, Int32)

    public var description: String {
        switch self {
        case .invalidAddress(let a): return "not a mail address we send to: \"\(escapedForLog(a))\""
        case .invalidHeader(let h): return "mail header \(h) holds a line break or is too long"
        case .spawn(let c, let e): return "cannot start \(c): \(String(cString: strerror(e)))"
        case .timedOut(let c, let s): return "\(c) did not finish within \(s) s (killed)"
        case .exitStatus(let c, let s, let err):
            return "\(c) exited with status \(s)" + (err.isEmpty ? "" : ": \(escapedForLog(err))")
        case .signalled(let c, let s): return "\(c) was killed by signal \(s)"
        case .io(let what, let e): return "\(what): \(String(cString: strerror(e)))"
        }
    }
}

/// A bounded, conservative address check: `local@domain`, printable ASCII, no spaces,
/// quotes, angle brackets, commas or line breaks (so it cannot smuggle a header or a second
/// recipient into `sendmail -t`).
public func isSendableMailAddress(_ s: String) -> Bool {
    let bytes = Array(s.utf8)
    guard (3...254).contains(bytes.count), bytes.first != UInt8(ascii: "@") else { return false }
    guard let at = bytes.lastIndex(of: UInt8(ascii: "@")), at > 0, at < bytes.count - 1 else { return false }
    guard bytes.filter({ $0 == UInt8(ascii: "@") }).count == 1 else { return false }
    let forbidden = Set(" \t\r\n\"'<>(),;:[]\\`".utf8)
    guard bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7f && !forbidden.contains($0) }) else { return false }
    let domain = bytes[(at + 1)...]
    guard domain.first != UInt8(ascii: "."), domain.last != UInt8(ascii: "."),
          !domain.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false).contains(where: { $0.isEmpty }) else {
        return false
    }
    return at <= 64
}

/// `a***@example.org`: enough for a user to recognise their address, not to learn it.
public func maskedMailAddress(_ s: String) -> String {
    guard let at = s.lastIndex(of: "@"), at > s.startIndex else { return "***" }
    return String(s[s.startIndex]) + "***" + String(s[at...])
}

/// One message: a text part, optionally with attachments (multipart/mixed).
public struct MailMessage {
    public struct Attachment {
        public var fileName: String
        public var contentType: String
        public var bytes: [UInt8]
        public init(fileName: String, contentType: String, bytes: [UInt8]) {
            self.fileName = fileName; self.contentType = contentType; self.bytes = bytes
        }
    }

    public var from: String
    public var to: String
    public var subject: String
    public var text: String
    public var attachments: [Attachment]

    public init(from: String, to: String, subject: String, text: String, attachments: [Attachment] = []) {
        self.from = from; self.to = to; self.subject = subject; self.text = text
        self.attachments = attachments
    }

    /// The message as bytes. Line ends are LF: sendmail reads local line ends on its
    /// standard input and writes CRLF on the wire itself.
    public func rendered(date: Int64, hostName: String) throws -> [UInt8] {
        guard isSendableMailAddress(from) else { throw MailError.invalidAddress(from) }
        guard isSendableMailAddress(to) else { throw MailError.invalidAddress(to) }
        let unique = hex(try Crypto.randomBytes(12))
        var head = ""
        func header(_ name: String, _ value: String) throws {
            guard !value.contains("\n"), !value.contains("\r"), value.utf8.count <= 900 else {
                throw MailError.invalidHeader(name)
            }
            head += "\(name): \(value)\n"
        }
        try header("From", from)
        try header("To", to)
        try header("Subject", encodedHeaderWord(subject))
        try header("Date", rfc5322Date(date))
        try header("Message-ID", "<\(unique)@\(hostName.isEmpty ? "localhost" : hostName)>")
        try header("MIME-Version", "1.0")
        try header("Auto-Submitted", "auto-generated")
        var body = ""
        if attachments.isEmpty {
            try header("Content-Type", "text/plain; charset=utf-8")
            try header("Content-Transfer-Encoding", "base64")
            body = wrappedBase64(Array(text.utf8))
        } else {
            let boundary = "twostep-" + unique
            try header("Content-Type", "multipart/mixed; boundary=\"\(boundary)\"")
            body = "This is a MIME message.\n\n--\(boundary)\n"
            body += "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
            body += wrappedBase64(Array(text.utf8))
            for a in attachments {
                guard a.fileName.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }),
                      !a.contentType.contains("\n"), !a.contentType.contains("\"") else {
                    throw MailError.invalidHeader("attachment")
                }
                body += "--\(boundary)\nContent-Type: \(a.contentType); name=\"\(a.fileName)\"\n"
                body += "Content-Disposition: attachment; filename=\"\(a.fileName)\"\n"
                body += "Content-Transfer-Encoding: base64\n\n"
                body += wrappedBase64(a.bytes)
            }
            body += "--\(boundary)--\n"
        }
        return Array((head + "\n" + body).utf8)
    }
}

/// RFC 2047: a subject outside printable ASCII travels as one UTF-8 B encoded-word.
func encodedHeaderWord(_ s: String) -> String {
    if s.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) { return s }
    return "=?UTF-8?B?" + Base64.encode(Array(s.utf8)) + "?="
}

/// Base64 in lines of 76 characters (RFC 2045).
func wrappedBase64(_ bytes: [UInt8]) -> String {
    let text = Array(Base64.encode(bytes).utf8)
    var out = ""
    var i = 0
    while i < text.count {
        let end = min(i + 76, text.count)
        out += String(decoding: text[i..<end], as: UTF8.self) + "\n"
        i = end
    }
    return out
}

/// `Sun, 29 Nov 2026 13:56:08 +0000`
func rfc5322Date(_ t: Int64) -> String {
    var tt = time_t(t)
    var tm = tm()
    gmtime_r(&tt, &tm)
    let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
    return "\(days[Int(tm.tm_wday)]), \(tm.tm_mday) \(months[Int(tm.tm_mon)]) \(tm.tm_year + 1900) " +
           "\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec)) +0000"
}

/// Runs `mail_command` (argv split on spaces, no shell) with the message on its standard
/// input: a clean environment, descriptors other than 0-2 closed, a deadline after which it
/// is killed, and its exit status checked.
public struct Mailer {
    public let command: [String]
    public let timeoutSeconds: Int

    public init(command: [String], timeoutSeconds: Int) {
        self.command = command
        self.timeoutSeconds = timeoutSeconds
    }

    public init(config: Config) {
        self.init(command: config.mailCommand, timeoutSeconds: config.mailTimeout)
    }

    var name: String { command.first ?? "mail_command" }

    public func send(_ message: [UInt8]) throws {
        guard let path = command.first else { throw MailError.spawn(command: "mail_command", errno: ENOENT) }
        var input: [Int32] = [-1, -1], errors: [Int32] = [-1, -1]
        guard cloexecPipe(&input) == 0 else { throw MailError.io("pipe", errno) }
        guard cloexecPipe(&errors) == 0 else {
            let e = errno
            close(input[0]); close(input[1])
            throw MailError.io("pipe", e)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input[0], 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, errors[1], 2)
        _ = spawnCloseFrom(&actions, 3)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigdefault(&attr, &defaults)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | spawnSetSID))

        let argv: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = [strdup("PATH=/usr/sbin:/usr/bin:/sbin:/bin"), nil]
        defer { for p in argv + envp { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, &attr, argv, envp)
        close(input[0]); close(errors[1])
        guard rc == 0 else {
            close(input[1]); close(errors[0])
            throw MailError.spawn(command: name, errno: rc)
        }
        let deadline = Sys.monotonicMilliseconds() + Int64(timeoutSeconds) * 1000
        let wrote = writeAll(fd: input[1], message, deadline: deadline)
        close(input[1])
        let stderrText = readSome(fd: errors[0], limit: 512, deadline: deadline)
        close(errors[0])
        let status = waitUntil(pid: pid, deadline: deadline)
        guard let status else { throw MailError.timedOut(command: name, seconds: timeoutSeconds) }
        if status & 0x7f != 0 { throw MailError.signalled(command: name, signal: status & 0x7f) }
        let exit = (status >> 8) & 0xff
        guard exit == 0 else { throw MailError.exitStatus(command: name, status: exit, stderr: stderrText) }
        if case .failure(let e) = wrote { throw MailError.io("writing to \(name)", e.code) }
    }

    private func writeAll(fd: Int32, _ bytes: [UInt8], deadline: Int64) -> Result<Void, MailErrno> {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
            if n > 0 { off += n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno != EAGAIN { return .failure(MailErrno(code: errno)) }
            let left = deadline - Sys.monotonicMilliseconds()
            guard left > 0 else { return .failure(MailErrno(code: ETIMEDOUT)) }
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            _ = poll(&p, 1, Int32(clamping: left))
        }
        return .success(())
    }

    private func readSome(fd: Int32, limit: Int, deadline: Int64) -> String {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 512)
        while true {
            let left = deadline - Sys.monotonicMilliseconds()
            guard left > 0 else { break }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, Int32(clamping: left))
            if r < 0 && errno == EINTR { continue }
            guard r > 0 else { break }
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            if out.count < limit { out += buf[0..<min(n, limit - out.count)] }
        }
        return String(decoding: out, as: UTF8.self).split(whereSeparator: { $0 == "\n" || $0 == "\r" })
            .joined(separator: " ")
    }

    /// The wait status, or nil when the deadline passed (the child is then killed and reaped).
    private func waitUntil(pid: pid_t, deadline: Int64) -> Int32? {
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { return status }
            if r < 0 && errno != EINTR { return 0x7f }  // ECHILD: someone reaped it; treat as failure
            if Sys.monotonicMilliseconds() >= deadline {
                kill(-pid, SIGKILL)  // its session: sendmail may have forked a queue runner
                kill(pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                return nil
            }
            usleep(5_000)
        }
    }
}

struct MailErrno: Error { let code: Int32 }

/// glibc's POSIX_SPAWN_SETSID and posix_spawn_file_actions_addclosefrom_np need
/// _GNU_SOURCE, which the Glibc overlay does not define.
private let spawnSetSID: Int32 = 0x80
@_silgen_name("posix_spawn_file_actions_addclosefrom_np")
private func spawnCloseFrom(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ from: Int32) -> Int32

/// A pipe whose two ends are close-on-exec (the child gets only what dup2 gives it).
private func cloexecPipe(_ fds: inout [Int32]) -> Int32 {
    guard pipe(&fds) == 0 else { return -1 }
    _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
    _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
    return 0
}


/// A log-safe rendering: control characters escaped, bounded.
func escapedForLog(_ s: String) -> String {
    let j = jsonString(String(s.prefix(200)))
    return String(j.dropFirst().dropLast())
}
