// SPDX-License-Identifier: Apache-2.0
import Glibc
import TwoStepSystem

/// The running helper's index of /etc/passwd: a login's canonical-name lookup becomes two
/// stat calls and a dictionary look-up, where NSS opens the file and parses it line by line
/// up to the user's entry (about half of a worker's user-space instructions per login with
/// a thousand local accounts, and linear in the file's length).
///
/// It answers only where glibc's answer comes from the same file: the `passwd` line of
/// nsswitch.conf (read as glibc reads it: `NSSwitch`) starts with `files` with no action
/// after it, so an entry `files` finds is the answer, and the name has a well-formed line
/// (7 fields, decimal uid and gid) before any line glibc might read differently. Names are
/// compared as bytes, as glibc's strcmp does. For every other name (not in the file, a
/// doubtful line, `+`/`-` compat names) `lookUp` returns nil and the caller asks NSS, which
/// then also asks the sources after `files`. Both files are stat'ed on every look-up; when
/// either changed (device, inode, size, mtime or ctime) the index is dropped, and `refresh`
/// (run between logins) builds it again. A file changed within the last `settleSeconds` is
/// not indexed (NSS answers until it has been still that long): timestamps come from a
/// clock that ticks coarsely, and are set before a write's bytes land, so a same-size edit
/// in place could otherwise go unseen.
///
/// With nscd running, glibc may answer from nscd's cache; the index answers from the file
/// as it is.
public final class PasswdFileCache {
    /// The process's cache; nil (the default) for one-shot programs, which ask NSS.
    /// `twostep-helper serve` sets it before forking its workers.
    public static var shared: PasswdFileCache?

    /// Larger files are not indexed (NSS answers): a bound on a worker's memory.
    public static let maximumSize = 32 << 20

    /// A file with a line this long is not indexed: the helper's NSS lookup gives glibc a
    /// buffer of at most 1 MiB, and a longer line before a name makes that lookup fail.
    public static let maximumLine = 256 << 10

    /// How long a changed file must have been left alone before it is indexed.
    public static let settleSeconds = 2

    typealias FileID = FileStamp

    let passwdPath: String
    let nsswitchPath: String
    private var seen: (nsswitch: FileID, passwd: FileID)?
    private var entries: [NameKey: UInt64] = [:]

    /// The wall clock the file timestamps are compared with (injected by tests).
    let now: () -> timespec

    public init(passwd: String = "/etc/passwd", nsswitch: String = "/etc/nsswitch.conf",
                now: @escaping () -> timespec = PasswdFileCache.realTime) {
        passwdPath = passwd
        nsswitchPath = nsswitch
        self.now = now
    }

    public static func realTime() -> timespec {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        return t
    }

    /// `.found` when the indexed file answers for `name`; nil when NSS must be asked. Never
    /// rebuilds (that is `refresh`'s, run between logins): when either file changed since
    /// the index was built, the index is dropped and NSS answers until the next `refresh`.
    public func lookUp(_ name: String) -> AccountLookup? {
        guard let first = name.utf8.first, first != UInt8(ascii: "+"), first != UInt8(ascii: "-"),
              isCurrent(), let value = entries[NameKey(Array(name.utf8))], value != PasswdFileCache.doubtful
        else { return nil }
        return .found(name: name, gid: gid_t(value))
    }

    /// Whether the index was built from both files as they are now (two stat calls); when
    /// not, it is dropped.
    func isCurrent() -> Bool {
        guard let now = identities(), let seen, seen.nsswitch == now.nsswitch, seen.passwd == now.passwd else {
            drop()
            return false
        }
        return true
    }

    /// Brings the index up to date with both files (rebuilt when either changed and both
    /// have settled). The server runs it before forking workers, and each worker before it
    /// accepts and after each login it served, so that a rebuild (about 0.5 µs a line)
    /// never stands inside a login.
    public func refresh() {
        guard let now = identities() else { return drop() }
        if seen?.nsswitch != now.nsswitch || seen?.passwd != now.passwd { rebuild(nsswitch: now.nsswitch, passwd: now.passwd) }
    }

    /// Both files' identities now; nil when either cannot be stat'ed.
    private func identities() -> (nsswitch: FileID, passwd: FileID)? {
        guard let ns = PasswdFileCache.identity(nsswitchPath), let pw = PasswdFileCache.identity(passwdPath) else { return nil }
        return (ns, pw)
    }

    private func drop() {
        seen = nil
        entries = [:]
    }

    /// Number of names the index answers for (0 when it answers for none).
    public var count: Int { entries.values.filter { $0 != PasswdFileCache.doubtful }.count }

    /// A user name as bytes (NSS compares names with strcmp; Swift's String equality
    /// would take `é` and `e` + U+0301 for one name), hashed in one call over the bytes.
    struct NameKey: Hashable {
        let bytes: [UInt8]
        init(_ bytes: [UInt8]) { self.bytes = bytes }
        init(_ slice: Slice<UnsafeBufferPointer<UInt8>>) { bytes = Array(slice) }
        func hash(into hasher: inout Hasher) { bytes.withUnsafeBytes { hasher.combine(bytes: $0) } }
    }

    /// The value of a name whose first line is doubtful (NSS answers for it).
    static let doubtful = UInt64.max

    /// lookUpOnce's value for a name no line of a clean file has.
    static let absent = UInt64.max - 1

    private func rebuild(nsswitch: FileID, passwd: FileID) {
        drop()
        // Changed a moment ago: NSS answers, and the next look-up tries again.
        let t = now()
        guard PasswdFileCache.settled(nsswitch, at: t), PasswdFileCache.settled(passwd, at: t) else { return }
        if NSSwitch.filesFirst(nsswitchPath) != nil {
            switch PasswdFileCache.readStable(passwdPath) {
            case .read(let bytes, let id) where id == passwd: entries = PasswdFileCache.index(bytes)
            case .read, .changing: return  // changed while read: the next look-up tries again
            case .refused: break  // not a regular file, or over maximumSize: nobody answered
            }
        }
        // Remembered even when the index answers for nobody (another source first, a file
        // refused): the files are not read again until one of them changes.
        guard PasswdFileCache.identity(nsswitchPath) == nsswitch else { entries = [:]; return }
        seen = (nsswitch, passwd)
    }

    /// Whether the file's last change (mtime and ctime, to the nanosecond) is at least
    /// `settleSeconds` before `now`.
    static func settled(_ id: FileID, at now: timespec) -> Bool {
        let limit = (now.tv_sec - settleSeconds, now.tv_nsec)
        return (id.mtime, id.mtimeNs) < limit && (id.ctime, id.ctimeNs) < limit
    }

    static func identity(_ path: String) -> FileID? { FileStamp(path: path) }

    enum Read {
        case read([UInt8], FileID)
        /// It changed while it was read.
        case changing
        /// Not a regular file, larger than `maximumSize`, or not readable.
        case refused
    }

    /// The file's bytes and identity, when it is a regular file that did not change while
    /// it was read (the same identity before and after).
    static func readStable(_ path: String) -> Read {
        guard let (fd, before) = openRegular(path) else { return .refused }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: Int(before.st_size) + 1)
        var got = 0
        while got < bytes.count {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + got, $0.count - got) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { return .refused }
            if n == 0 { break }
            got += n
        }
        guard got == Int(before.st_size), let now = unchanged(fd, since: before, path: path) else { return .changing }
        bytes.removeLast()
        return .read(bytes, now)
    }

    /// `path` opened for reading, with its status, when it is a regular file of at most
    /// `maximumSize` bytes.
    static func openRegular(_ path: String) -> (Int32, stat)? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else { return nil }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_size <= maximumSize else {
            close(fd)
            return nil
        }
        return (fd, st)
    }

    /// The identity of the file open on `fd` when it did not change since `before`: the
    /// same on the descriptor and at `path` (not replaced) after the read.
    static func unchanged(_ fd: Int32, since before: stat, path: String) -> FileID? {
        var after = stat()
        guard fstat(fd, &after) == 0, FileID(before) == FileID(after),
              let now = identity(path), now == FileID(after) else { return nil }
        return now
    }

    /// Name (as bytes) to primary gid for each name whose first line glibc's files parser
    /// reads as we do. A name whose first line is doubtful is left out (NSS answers for it);
    /// so is everything when the file holds a NUL byte or a line over `maximumLine`.
    static func index(_ bytes: [UInt8]) -> [NameKey: UInt64] {
        bytes.withUnsafeBufferPointer { b -> [NameKey: UInt64] in
            // gid per name, `doubtful` for a name whose first line is.
            var first: [NameKey: UInt64] = [:]
            first.reserveCapacity(b.count / 48)
            let whole = entries(b) { name, value in
                let key = NameKey(b[name])
                if first[key] == nil { first[key] = value }
                return true
            }
            return whole ? first : [:]
        }
    }

    /// For a process that does one login and calls no NSS (twostep-verify): `name`'s answer
    /// read from /etc/passwd where glibc's would come from that file, by the index's rules
    /// (nsswitch.conf's `passwd` sources start with `files` with no action after it; the
    /// name's first line is well formed; no NUL byte or over-long line before it), and
    /// `.unknown` for a name the file does not have at all when `files` is the only source.
    /// nil when NSS would have to be asked: not in the file while other sources follow, a
    /// doubtful line, another source first, a file that changed while it was read.
    public static func lookUpOnce(_ name: String, passwd: String = "/etc/passwd",
                                  nsswitch: String = "/etc/nsswitch.conf") -> AccountLookup? {
        let wanted = Array(name.utf8)
        guard let lead = wanted.first, lead != UInt8(ascii: "+"), lead != UInt8(ascii: "-"),
              let sources = NSSwitch.filesFirst(nsswitch),
              let value = firstEntry(wanted, in: passwd), value != doubtful else { return nil }
        // No line at all, and no source after `files` to ask: glibc's answer is "no such user".
        if value == absent { return sources.count == 1 ? .unknown : nil }
        return .found(name: name, gid: gid_t(value))
    }

    /// The value of `wanted`'s first line in the file at `path` (`absent` when no line has
    /// it), read as glibc reads it: in chunks, stopping at that line, so a name near the top
    /// of a long file costs no more than there. nil when the file is not a regular file,
    /// over `maximumSize`, unreadable, holds a NUL byte or an over-long line before the
    /// name's line, or changed while it was read (its identity before and after differ).
    static func firstEntry(_ wanted: [UInt8], in path: String) -> UInt64? {
        guard let (fd, before) = openRegular(path) else { return nil }
        defer { close(fd) }
        // Read in chunks of at most 64 KiB, into memory left uninitialised (a usual passwd
        // file is one chunk, searched where it was read). Only a line not yet whole is kept
        // between reads; each read's bytes are searched once for the last newline.
        let size = min(64 << 10, Int(before.st_size) + 1)
        let chunk = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: size)
        defer { chunk.deallocate() }
        var pending: [UInt8] = []
        var total = 0
        var found: UInt64?
        func scan(_ lines: UnsafeBufferPointer<UInt8>) -> Bool {
            entries(lines, only: wanted) { _, value in
                found = value
                return false
            }
        }
        while found == nil {
            let n = read(fd, chunk.baseAddress!, size)
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { return nil }
            total += n
            guard total <= maximumSize else { return nil }
            let got = UnsafeBufferPointer(rebasing: chunk[0..<n])
            // got[..<cut] ends the lines begun before it; at the end of the file, the last
            // line is whole too.
            let cut = got.lastIndex(of: 0x0a).map { $0 + 1 } ?? 0
            if n == 0 {
                guard pending.withUnsafeBufferPointer(scan) else { return nil }
                pending = []
            } else if cut == 0 {
                pending.append(contentsOf: got)
            } else if pending.isEmpty {
                guard scan(UnsafeBufferPointer(rebasing: got[..<cut])) else { return nil }
                pending.append(contentsOf: got[cut...])
            } else {
                pending.append(contentsOf: got[..<cut])
                guard pending.withUnsafeBufferPointer(scan) else { return nil }
                pending = Array(got[cut...])
            }
            // A line already over maximumLine: `entries` would refuse it once whole.
            guard pending.count <= maximumLine else { return nil }
            if n == 0 { break }
        }
        guard unchanged(fd, since: before, path: path) != nil else { return nil }
        return found ?? absent
    }

    /// Each line's name (a range of `b`) and its primary gid, or `doubtful` when glibc's
    /// files parser might read the line otherwise, in file order, until `visit` returns
    /// false. With `only`, lines of other names are checked (NUL bytes, length) but neither
    /// parsed nor visited. Returns false, having stopped, at a NUL byte or a line over
    /// `maximumLine` (nothing may be answered from such a file), else true.
    static func entries(_ b: UnsafeBufferPointer<UInt8>, only wanted: [UInt8]? = nil,
                        _ visit: (Range<Int>, UInt64) -> Bool) -> Bool {
        // One pass over the bytes, no array per line or field: every worker rebuilds the
        // index after every change to the file, and twostep-verify reads the file up to the
        // login's name at every login. Line ends, NUL bytes and a line's first colon are
        // found with memchr; only the lines a caller wants are split into fields (a host
        // with tens of thousands of local accounts otherwise pays for each line a login's
        // name comes after).
        guard let base = b.baseAddress else { return true }
        let n = b.count
        // The offset of the first `byte` in [from, to), or nil.
        func find(_ byte: UInt8, _ from: Int, _ to: Int) -> Int? {
            guard from < to, let hit = memchr(base + from, Int32(byte), to - from) else { return nil }
            return base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
        }
        var lineStart = 0
        while lineStart < n {
            let lineEnd = find(0x0a, lineStart, n) ?? n
            defer { lineStart = lineEnd + 1 }
            guard find(0, lineStart, lineEnd) == nil else { return false }  // a NUL byte: nothing
            guard lineEnd - lineStart <= maximumLine else { return false }
            // glibc skips leading white space (isspace) and then blank and `#` lines.
            var i = lineStart
            while i < lineEnd && NSSwitch.isSpace(b[i]) { i += 1 }
            guard i < lineEnd, b[i] != UInt8(ascii: "#") else { continue }
            // Name, password, uid, gid, gecos, home end at the first six colons; the
            // seventh field, the shell, takes the rest of the line, colons included.
            let nameEnd = find(UInt8(ascii: ":"), i, lineEnd)
            let name = i..<(nameEnd ?? lineEnd)
            if let wanted, name.count != wanted.count || memcmp(base + i, wanted, wanted.count) != 0 { continue }
            func colon(after end: Int?) -> Int? { end.flatMap { find(UInt8(ascii: ":"), $0 + 1, lineEnd) } }
            let passEnd = colon(after: nameEnd)
            let uidEnd = colon(after: passEnd)
            let gidEnd = colon(after: uidEnd)
            let homeEnd = colon(after: colon(after: gidEnd))
            var value = doubtful
            if let nameEnd, let passEnd, let uidEnd, let gidEnd, homeEnd != nil, nameEnd > i,
               b[i] != UInt8(ascii: "+"), b[i] != UInt8(ascii: "-"),
               decimalID(b[(passEnd + 1)..<uidEnd]) != nil,
               let gid = decimalID(b[(uidEnd + 1)..<gidEnd]) {
                value = UInt64(gid)
            }
            guard visit(name, value) else { return true }
        }
        return true
    }

    /// A uid or gid written as 1 to 10 decimal digits that fits in 32 bits, else nil.
    static func decimalID<C: Collection<UInt8>>(_ field: C) -> UInt32? {
        guard !field.isEmpty, field.count <= 10 else { return nil }
        var value: UInt64 = 0
        for b in field {
            guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + UInt64(b - UInt8(ascii: "0"))
        }
        return value <= UInt64(UInt32.max) ? UInt32(value) : nil
    }
}
