// SPDX-License-Identifier: Apache-2.0
import CZlib
import Glibc
import TwoStepSystem

/// Reading the JSON-lines audit log back: `twostep admin audit` and `admin report`.
/// The log and its rotations (`audit.jsonl.1`, `audit.jsonl.2.gz`, or logrotate's
/// `dateext` names) are read oldest first, gzip or not, one line at a time, so a log of
/// any size streams.

/// One line of the audit log: its fields in the order written.
public struct AuditEntry {
    public var fields: [(key: String, value: String)]

    public subscript(key: String) -> String? {
        fields.first(where: { $0.key == key })?.value
    }

    /// `time` as seconds since the epoch, when it parses.
    public var time: Int64? { self["time"].flatMap(parseAuditTime) }
}

/// Which lines `admin audit` prints.
public struct AuditFilter {
    public var user: String?
    public var since: Int64?
    public var event: String?
    public var result: String?

    public init(user: String? = nil, since: Int64? = nil, event: String? = nil, result: String? = nil) {
        self.user = user; self.since = since; self.event = event; self.result = result
    }

    public func matches(_ e: AuditEntry) -> Bool {
        if let user, e["user"] != user { return false }
        if let event, e["event"] != event { return false }
        if let result, e["result"] != result { return false }
        if let since {
            guard let t = e.time, t >= since else { return false }
        }
        return true
    }
}

public enum AuditReader {
    /// Longest line read; a longer one is counted as damaged and skipped.
    public static let maxLine = 64 * 1024

    /// `path` and its rotated predecessors that exist, whatever they are (lstat), with their
    /// rotation order: what `files` reads and `warnings` judges.
    static func entries(for path: String) -> [(path: String, order: Int, st: stat)] {
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { String(path[..<$0]) } ?? "."
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        guard let d = opendir(dir.isEmpty ? "/" : dir) else { return [] }
        defer { closedir(d) }
        var found: [(path: String, order: Int, st: stat)] = []
        while let ent = readdir(d) {
            let name = withUnsafeBytes(of: ent.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard let order = rotationOrder(name, base: base) else { continue }
            let full = dir + "/" + name
            var st = stat()
            if lstat(full, &st) == 0 { found.append((full, order, st)) }
        }
        return found
    }

    /// `path` and its rotated predecessors that are regular files, oldest first.
    public static func files(for path: String) -> [String] {
        let found = entries(for: path).filter { $0.st.st_mode & S_IFMT == S_IFREG }
        // Oldest first: by modification time, then by rotation number (higher is older).
        return found.sorted { (Int64($0.st.st_mtim.tv_sec), -$0.order) < (Int64($1.st.st_mtim.tv_sec), -$1.order) }
            .map(\.path)
    }

    /// 0 for the log itself, N for `.N` / `.N.gz`, 1 for a `-DATE[.gz]` rotation; nil for
    /// anything else.
    static func rotationOrder(_ name: String, base: String) -> Int? {
        if name == base { return 0 }
        guard name.hasPrefix(base), name.count > base.count + 1 else { return nil }
        var rest = String(name.dropFirst(base.count))
        if rest.hasSuffix(".gz") { rest.removeLast(3) }
        let sep = rest.removeFirst()
        guard !rest.isEmpty, rest.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        switch sep {
        case ".": return Int(rest).map { $0 + 1 }   // never 0: that is the log itself
        case "-": return 1
        default: return nil
        }
    }

    /// What a reader of `path` should be told before trusting what it reads: the log or a
    /// rotation that is not a regular file (skipped), one that group or others may write or
    /// another user owns (its lines may be forged: the writer stops appending to such a file),
    /// or a log that does not exist. Empty when all is well.
    public static func warnings(for path: String) -> [String] {
        var out: [String] = []
        var st = stat()
        var dir = stat()
        let parent = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let dirFound = !parent.isEmpty && stat(parent, &dir) == 0
        // Whoever may write the directory may delete or rename the log, or plant rotations.
        if dirFound && (dir.st_uid != 0 || dir.st_mode & 0o022 != 0) {
            out.append("\(path): its directory \(parent) is owned by uid \(dir.st_uid) with mode " +
                       "\(String(dir.st_mode & 0o7777, radix: 8)): whoever can write there can remove the log or plant " +
                       "rotations; make it root's and not writable by group or others")
        }
        if lstat(path, &st) != 0 {
            let e = errno
            // Nothing creates the directory: without it no event is ever written there.
            if e == ENOENT && !parent.isEmpty && !dirFound {
                out.append("\(path): its directory \(parent) does not exist, so no event is written there: " +
                           "create it (root's, mode 0750)")
            } else {
                out.append("\(path): \(e == ENOENT ? "does not exist (no event written yet, or audit_log moved?)" : Sys.describe(e))")
            }
        }
        for e in entries(for: path).sorted(by: { $0.path < $1.path }) {
            if e.st.st_mode & S_IFMT != S_IFREG {
                out.append("\(e.path): not a regular file; skipped")
            } else if AuditLog.auditFileProblem(e.st) != nil {   // what stops the writer appending
                out.append("\(e.path): owned by uid \(e.st.st_uid) with mode \(String(e.st.st_mode & 0o7777, radix: 8)); " +
                           "others could have written its lines (logins stop appending to such a file)")
            }
        }
        return out
    }

    /// Calls `body` for each parsed line of every file, oldest first. Returns how many lines
    /// could not be parsed (damaged, truncated by a crash, too long).
    @discardableResult
    public static func read(path: String, _ body: (AuditEntry) throws -> Void) throws -> Int {
        var damaged = 0
        for file in files(for: path) {
            damaged += try readFile(file, body)
        }
        return damaged
    }

    static func readFile(_ path: String, _ body: (AuditEntry) throws -> Void) throws -> Int {
        // O_NONBLOCK: a FIFO swapped in after `files` looked must not hang the reader.
        let fd = Sys.retry { open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK) }
        // Rotated away (logrotate) since `files` listed it: nothing to read there.
        if fd < 0 && errno == ENOENT { return 0 }
        guard fd >= 0 else { throw StoreError.io(path: path, operation: "open audit log", errno: errno) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            return 0
        }
        // gzdopen reads gzip and plain files alike, and owns fd from here on.
        guard let gz = gzdopen(fd, "rb") else {
            close(fd)
            throw StoreError.io(path: path, operation: "open audit log", errno: ENOMEM)
        }
        defer { gzclose(gz) }
        var damaged = 0
        var line: [UInt8] = []
        var skipping = false
        // Small reads: when a damaged gzip member makes gzread fail, what that call had
        // inflated is lost with it.
        var buf = [UInt8](repeating: 0, count: 4096)
        func finish() throws {
            defer { line.removeAll(keepingCapacity: true); skipping = false }
            if skipping { damaged += 1; return }
            if line.isEmpty { return }
            if let e = parseAuditLine(line) { try body(e) } else { damaged += 1 }
        }
        while true {
            let n = buf.withUnsafeMutableBytes { gzread(gz, $0.baseAddress, UInt32($0.count)) }
            if n < 0 {
                // A damaged gzip file: the lines before the damage were read; a line begun
                // and the rest of this file count as damaged, and the other files are read.
                return damaged + (line.isEmpty && !skipping ? 0 : 1) + 1
            }
            if n == 0 { break }
            var start = 0
            for i in 0..<Int(n) where buf[i] == 0x0A {
                if !skipping { line += buf[start..<i] }
                try finish()
                start = i + 1
            }
            if !skipping {
                line += buf[start..<Int(n)]
                if line.count > maxLine { skipping = true; line.removeAll() }
            }
        }
        try finish()
        return damaged
    }
}

/// `2026-11-29T13:56:08Z` (what AuditLog writes), `2026-11-29 13:56:08`, `2026-11-29T13:56`
/// or `2026-11-29` (midnight), all UTC.
public func parseAuditTime(_ s: String) -> Int64? {
    var text = Array(s.utf8)
    if text.last == UInt8(ascii: "Z") { text.removeLast() }
    func number(_ r: Range<Int>) -> Int32? {
        guard r.upperBound <= text.count else { return nil }
        var v: Int32 = 0
        for b in text[r] {
            guard b >= 48 && b <= 57 else { return nil }
            v = v * 10 + Int32(b - 48)
        }
        return v
    }
    guard text.count == 10 || text.count == 16 || text.count == 19 else { return nil }
    guard let y = number(0..<4), text[4] == UInt8(ascii: "-"), let mo = number(5..<7),
          text[7] == UInt8(ascii: "-"), let d = number(8..<10),
          (1...12).contains(mo), (1...31).contains(d) else { return nil }
    var tm = tm()
    tm.tm_year = y - 1900
    tm.tm_mon = mo - 1
    tm.tm_mday = d
    if text.count > 10 {
        guard text[10] == UInt8(ascii: "T") || text[10] == UInt8(ascii: " "),
              let h = number(11..<13), text[13] == UInt8(ascii: ":"), let mi = number(14..<16),
              h < 24, mi < 60 else { return nil }
        tm.tm_hour = h
        tm.tm_min = mi
        if text.count == 19 {
            guard text[16] == UInt8(ascii: ":"), let sec = number(17..<19), sec < 61 else { return nil }
            tm.tm_sec = sec
        }
    }
    return Int64(timegm(&tm))
}

/// One flat JSON object (string, number, true/false/null values) as written by AuditLog;
/// nil for anything else.
public func parseAuditLine(_ bytes: [UInt8]) -> AuditEntry? {
    var p = JSONScanner(bytes: bytes)
    guard p.skipSpace(), p.take(UInt8(ascii: "{")) else { return nil }
    var fields: [(key: String, value: String)] = []
    _ = p.skipSpace()
    if p.take(UInt8(ascii: "}")) { return p.atEnd() ? AuditEntry(fields: fields) : nil }
    while true {
        guard p.skipSpace(), let key = p.string(), p.skipSpace(), p.take(UInt8(ascii: ":")),
              p.skipSpace(), let value = p.scalarValue() else { return nil }
        fields.append((key, value))
        _ = p.skipSpace()
        if p.take(UInt8(ascii: ",")) { continue }
        guard p.take(UInt8(ascii: "}")) else { return nil }
        return p.atEnd() ? AuditEntry(fields: fields) : nil
    }
}

struct JSONScanner {
    let bytes: [UInt8]
    var i = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func skipSpace() -> Bool {
        while i < bytes.count, [0x20, 0x09, 0x0D, 0x0A].contains(bytes[i]) { i += 1 }
        return true
    }

    mutating func take(_ b: UInt8) -> Bool {
        guard i < bytes.count, bytes[i] == b else { return false }
        i += 1
        return true
    }

    mutating func atEnd() -> Bool {
        _ = skipSpace()
        return i == bytes.count
    }

    mutating func scalarValue() -> String? {
        guard i < bytes.count else { return nil }
        switch bytes[i] {
        case UInt8(ascii: "\""): return string()
        case UInt8(ascii: "t"): return literal("true")
        case UInt8(ascii: "f"): return literal("false")
        case UInt8(ascii: "n"): return literal("null")
        default:
            let start = i
            while i < bytes.count, "+-.eE0123456789".utf8.contains(bytes[i]) { i += 1 }
            return i > start ? String(decoding: bytes[start..<i], as: UTF8.self) : nil
        }
    }

    mutating func literal(_ word: String) -> String? {
        let w = Array(word.utf8)
        guard i + w.count <= bytes.count, Array(bytes[i..<(i + w.count)]) == w else { return nil }
        i += w.count
        return word
    }

    mutating func hex4() -> UInt32? {
        guard i + 4 <= bytes.count else { return nil }
        var v: UInt32 = 0
        for b in bytes[i..<(i + 4)] {
            let d: UInt8
            switch b {
            case 48...57: d = b - 48
            case 65...70: d = b - 55
            case 97...102: d = b - 87
            default: return nil
            }
            v = v << 4 | UInt32(d)
        }
        i += 4
        return v
    }

    mutating func string() -> String? {
        guard take(UInt8(ascii: "\"")) else { return nil }
        var out = String.UnicodeScalarView()
        var raw: [UInt8] = []
        func flush() {
            out.append(contentsOf: String(decoding: raw, as: UTF8.self).unicodeScalars)
            raw.removeAll(keepingCapacity: true)
        }
        while i < bytes.count {
            let b = bytes[i]
            i += 1
            switch b {
            case UInt8(ascii: "\""):
                flush()
                return String(out)
            case UInt8(ascii: "\\"):
                flush()
                guard i < bytes.count else { return nil }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""): out.append("\"")
                case UInt8(ascii: "\\"): out.append("\\")
                case UInt8(ascii: "/"): out.append("/")
                case UInt8(ascii: "b"): out.append("\u{8}")
                case UInt8(ascii: "f"): out.append("\u{C}")
                case UInt8(ascii: "n"): out.append("\n")
                case UInt8(ascii: "r"): out.append("\r")
                case UInt8(ascii: "t"): out.append("\t")
                case UInt8(ascii: "u"):
                    guard var v = hex4() else { return nil }
                    if (0xD800..<0xDC00).contains(v) {
                        // A surrogate pair: the low half must follow.
                        guard take(UInt8(ascii: "\\")), take(UInt8(ascii: "u")), let lo = hex4(),
                              (0xDC00..<0xE000).contains(lo) else { return nil }
                        v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00)
                    }
                    guard let u = Unicode.Scalar(v) else { return nil }
                    out.append(u)
                default: return nil
                }
            default:
                guard b >= 0x20 else { return nil }
                raw.append(b)
            }
        }
        return nil
    }
}
