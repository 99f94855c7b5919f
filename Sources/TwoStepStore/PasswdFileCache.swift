// SPDX-License-Identifier: Apache-2.0
import Glibc

/// The running helper's index of /etc/passwd: a login's canonical-name lookup becomes two
/// stat calls and a dictionary look-up, where NSS opens the file and parses it line by line
/// up to the user's entry (about a sixth of a worker's time per login with a thousand local
/// accounts, more with more).
///
/// It answers only where glibc's answer comes from the same file: the `passwd:` line of
/// nsswitch.conf starts with `files` with no action after it, so an entry `files` finds is
/// the answer, and the name has a well-formed line (7 fields, decimal uid and gid, no NUL)
/// before any line glibc might read differently. For every other name (not in the file, a
/// doubtful line, `+`/`-` compat names) `lookUp` returns nil and the caller asks NSS, which
/// then also asks the sources after `files`. Both files are stat'ed on every look-up and the
/// index rebuilt when either changes (device, inode, size, mtime or ctime), so an account
/// added, removed, renamed or moved to another primary group is seen by the next login.
public final class PasswdFileCache {
    /// The process's cache; nil (the default) for one-shot programs, which ask NSS.
    /// `twostep-helper serve` sets it before forking its workers.
    public static var shared: PasswdFileCache?

    /// Larger files are not indexed (NSS answers): a bound on a worker's memory.
    public static let maximumSize = 64 << 20

    struct FileID: Equatable {
        let dev: UInt64, ino: UInt64, size: Int64
        let mtime: Int, mtimeNs: Int, ctime: Int, ctimeNs: Int
        init(_ st: stat) {
            dev = UInt64(st.st_dev); ino = UInt64(st.st_ino); size = Int64(st.st_size)
            mtime = st.st_mtim.tv_sec; mtimeNs = st.st_mtim.tv_nsec
            ctime = st.st_ctim.tv_sec; ctimeNs = st.st_ctim.tv_nsec
        }
    }

    let passwdPath: String
    let nsswitchPath: String
    private var seen: (nsswitch: FileID, passwd: FileID)?
    private var entries: [String: gid_t] = [:]

    public init(passwd: String = "/etc/passwd", nsswitch: String = "/etc/nsswitch.conf") {
        passwdPath = passwd
        nsswitchPath = nsswitch
    }

    /// `.found` when the indexed file answers for `name`; nil when NSS must be asked.
    public func lookUp(_ name: String) -> AccountLookup? {
        guard let first = name.utf8.first, first != UInt8(ascii: "+"), first != UInt8(ascii: "-") else { return nil }
        guard let ns = PasswdFileCache.identity(nsswitchPath), let pw = PasswdFileCache.identity(passwdPath) else {
            seen = nil
            return nil
        }
        if seen?.nsswitch != ns || seen?.passwd != pw { rebuild(nsswitch: ns) }
        guard let gid = entries[name] else { return nil }
        return .found(name: name, gid: gid)
    }

    /// Number of names the index answers for (0 when it answers for none).
    public var count: Int { entries.count }

    private func rebuild(nsswitch: FileID) {
        seen = nil
        entries = [:]
        guard let words = AccountIndex.passwdLine(nsswitchPath), words.first == "files",
              words.count == 1 || !words[1].hasPrefix("[") else { return }
        guard let (bytes, id) = PasswdFileCache.readStable(passwdPath) else { return }
        entries = PasswdFileCache.index(bytes)
        seen = (nsswitch, id)
    }

    static func identity(_ path: String) -> FileID? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return FileID(st)
    }

    /// The file's bytes and identity, when it is a regular file that did not change while
    /// it was read (the same identity before and after).
    static func readStable(_ path: String) -> ([UInt8], FileID)? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var before = stat()
        guard fstat(fd, &before) == 0, (before.st_mode & S_IFMT) == S_IFREG,
              before.st_size <= maximumSize else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(before.st_size) + 1)
        var got = 0
        while got < bytes.count {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + got, $0.count - got) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { return nil }
            if n == 0 { break }
            got += n
        }
        var after = stat()
        guard got == Int(before.st_size), fstat(fd, &after) == 0, FileID(before) == FileID(after),
              let now = identity(path), now == FileID(after) else { return nil }
        bytes.removeLast()
        return (bytes, now)
    }

    /// Name to primary gid for each name whose first line glibc's files parser reads as we
    /// do. A name whose first line is doubtful is left out (NSS answers for it); so is
    /// everything when the file holds a NUL byte.
    static func index(_ bytes: [UInt8]) -> [String: gid_t] {
        guard !bytes.contains(0) else { return [:] }
        var entries: [String: gid_t] = [:]
        var decided = Set<String>()
        for rawLine in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            // glibc skips leading white space (isspace) and then blank and `#` lines.
            let line = rawLine.drop { $0 == 0x20 || ($0 >= 0x09 && $0 <= 0x0d) }
            guard let first = line.first, first != UInt8(ascii: "#") else { continue }
            let fields = line.split(separator: UInt8(ascii: ":"), maxSplits: 6, omittingEmptySubsequences: false)
            let name = String(decoding: fields[0], as: UTF8.self)
            guard !decided.contains(name) else { continue }
            decided.insert(name)
            guard fields.count == 7, !name.isEmpty, name.utf8.elementsEqual(fields[0]),
                  first != UInt8(ascii: "+"), first != UInt8(ascii: "-"),
                  decimalID(fields[2]) != nil, let gid = decimalID(fields[3]) else { continue }
            entries[name] = gid
        }
        return entries
    }

    /// A uid or gid written as 1 to 10 decimal digits that fits in 32 bits, else nil.
    static func decimalID(_ field: ArraySlice<UInt8>) -> UInt32? {
        guard !field.isEmpty, field.count <= 10 else { return nil }
        var value: UInt64 = 0
        for b in field {
            guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + UInt64(b - UInt8(ascii: "0"))
        }
        return value <= UInt64(UInt32.max) ? UInt32(value) : nil
    }
}
