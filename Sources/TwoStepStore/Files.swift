// SPDX-License-Identifier: Apache-2.0
import Glibc
import TwoStepSystem

/// The one seam through which the store touches the file system: every call retries
/// EINTR, opens with O_NOFOLLOW|O_CLOEXEC relative to a directory descriptor, and checks
/// owner and mode with fstat before trusting a byte.
public enum Files {
    public static let maxFileSize = 64 * 1024

    /// The uid files must belong to: ours. Read once (no process of twostep changes its
    /// effective uid, and a login checks a dozen files against it).
    static let ownUID = geteuid()

    /// Opens a directory that must be owned by us and closed to group and others.
    public static func openPrivateDirectory(_ path: String) throws -> Int32 {
        let fd = Sys.retry { open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
        guard fd >= 0 else { throw StoreError.io(path: path, operation: "open directory", errno: errno) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno; close(fd)
            throw StoreError.io(path: path, operation: "stat", errno: e)
        }
        if let problem = ownershipProblem(st, allowGroupOtherRead: false) {
            close(fd)
            throw StoreError.unsafe(path: path, reason: problem)
        }
        do { try checkAncestors(of: path) } catch { close(fd); throw error }
        return fd
    }

    /// Every directory above `path` (resolved: symbolic links followed, as open does) must
    /// be owned by root or by us and writable by nobody else, unless sticky (as /tmp): a
    /// user who may rename entries of a parent could swap the private directory for one of
    /// their choosing between two logins, as sshd's StrictModes guards against.
    public static func checkAncestors(of path: String) throws {
        // A running helper opens its directories for every login: the walk (about eight
        // system calls a directory) is done again once `ancestorRecheck` has passed.
        let now = Sys.monotonicMilliseconds()
        if let checked = ancestorsChecked.time(path), now - checked < ancestorRecheckMilliseconds { return }
        guard let resolved = Sys.realPath(path) else {
            throw StoreError.io(path: path, operation: "resolve", errno: errno)
        }
        var dir = resolved
        while let slash = dir.lastIndex(of: "/") {
            dir = slash == dir.startIndex ? "/" : String(dir[..<slash])
            var st = stat()
            guard lstat(dir, &st) == 0 else { throw StoreError.io(path: dir, operation: "stat", errno: errno) }
            if st.st_uid != 0 && st.st_uid != ownUID {
                throw StoreError.unsafe(path: path, reason: "its parent \(dir) is owned by uid \(st.st_uid)")
            }
            if st.st_mode & 0o022 != 0 && st.st_mode & mode_t(S_ISVTX) == 0 {
                throw StoreError.unsafe(path: path, reason: "its parent \(dir) (mode \(String(st.st_mode & 0o7777, radix: 8))) lets group or others rename what is in it")
            }
            if dir == "/" { break }
        }
        ancestorsChecked.set(path, now)
    }

    /// When each path's parents were last found safe (monotonic milliseconds). Behind a lock:
    /// `admin list` and `admin report` read records on two threads, each with its own store,
    /// and two unguarded writes to this dictionary crashed `admin list` (SIGSEGV, seen under load).
    /// A pthread mutex rather than Synchronization's Mutex, whose lock ThreadSanitizer
    /// cannot see (it reported the guarded dictionary as raced).
    private static let ancestorsChecked = CheckedPaths()
    private final class CheckedPaths: @unchecked Sendable {
        private let lock: UnsafeMutablePointer<pthread_mutex_t> = {
            let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
            pthread_mutex_init(lock, nil)
            return lock
        }()
        private var times: [String: Int64] = [:]
        func time(_ path: String) -> Int64? {
            pthread_mutex_lock(lock)
            defer { pthread_mutex_unlock(lock) }
            return times[path]
        }
        func set(_ path: String, _ time: Int64) {
            pthread_mutex_lock(lock)
            defer { pthread_mutex_unlock(lock) }
            times[path] = time
        }
    }
    static let ancestorRecheckMilliseconds: Int64 = 10_000

    /// Checks again that an open directory is still ours and private (a cached descriptor
    /// must not outlive a chmod or chown that made it unsafe).
    public static func checkPrivateDirectory(_ fd: Int32, path: String) throws {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw StoreError.io(path: path, operation: "stat", errno: errno) }
        if let problem = ownershipProblem(st, allowGroupOtherRead: false) {
            throw StoreError.unsafe(path: path, reason: problem)
        }
    }

    /// nil when the file is ours and private; otherwise why not.
    static func ownershipProblem(_ st: stat, allowGroupOtherRead: Bool) -> String? {
        let uid = ownUID
        if st.st_uid != uid {
            return "owned by uid \(st.st_uid), expected \(uid)"
        }
        let mask: mode_t = allowGroupOtherRead ? 0o022 : 0o077
        if st.st_mode & mask != 0 {
            return "mode \(String(st.st_mode & 0o7777, radix: 8)) gives access to group or others"
        }
        return nil
    }

    /// Reads a private regular file in `dirfd`. Returns nil if it does not exist.
    public static func readPrivate(dirfd: Int32, dirPath: String, name: String,
                                   limit: Int = maxFileSize) throws -> [UInt8]? {
        let path = dirPath + "/" + name
        guard let (fd, st) = try openRegular(dirfd: dirfd, name: name, path: path) else { return nil }
        defer { close(fd) }
        if let problem = ownershipProblem(st, allowGroupOtherRead: false) {
            throw StoreError.unsafe(path: path, reason: problem)
        }
        guard Int(st.st_size) <= limit else { throw StoreError.tooLarge(path: path, limit: limit) }
        return try readAll(fd: fd, path: path, limit: limit, size: Int(st.st_size))
    }

    /// Opens `name` in `dirfd` (AT_FDCWD: a path) for reading without following a final
    /// symbolic link (refused) and without blocking on a FIFO; returns the descriptor and
    /// its fstat when it is a regular file, nil when it does not exist.
    static func openRegular(dirfd: Int32, name: String, path: String) throws -> (Int32, stat)? {
        let fd = Sys.retry { openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY) }
        if fd < 0 {
            if errno == ENOENT { return nil }
            if errno == ELOOP { throw StoreError.unsafe(path: path, reason: "is a symbolic link") }
            throw StoreError.io(path: path, operation: "open", errno: errno)
        }
        return (fd, try statRegular(fd, path: path))
    }

    /// fstat of a descriptor just opened, which must be a regular file; on any failure the
    /// descriptor is closed before the error is thrown.
    static func statRegular(_ fd: Int32, path: String) throws -> stat {
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno; close(fd)
            throw StoreError.io(path: path, operation: "stat", errno: e)
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw StoreError.unsafe(path: path, reason: "not a regular file")
        }
        return st
    }

    public static func readAll(fd: Int32, path: String, limit: Int, size: Int? = nil) throws -> [UInt8] {
        // A regular file of known size: one read of size + 1 bytes, and a short read is its
        // end (read(2) on a regular file returns less only at the end): no read for EOF.
        if let size {
            // Not zeroed first: the array holds only the bytes read (count = n).
            var failure: Int32 = 0
            let out = [UInt8](unsafeUninitializedCapacity: size + 1) { buffer, count in
                let n = Sys.retry { read(fd, buffer.baseAddress, buffer.count) }
                if n < 0 { failure = errno; count = 0 } else { count = n }
            }
            if failure != 0 { throw StoreError.io(path: path, operation: "read", errno: failure) }
            let n = out.count
            if n <= size { return out }
            let rest = try readAll(fd: fd, path: path, limit: limit - n)
            return out + rest   // it grew while we read: the rest as before
        }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { p in Sys.retry { read(fd, p.baseAddress, p.count) } }
            if n < 0 { throw StoreError.io(path: path, operation: "read", errno: errno) }
            if n == 0 { break }
            out.append(contentsOf: buf[0..<n])
            if out.count > limit { throw StoreError.tooLarge(path: path, limit: limit) }
        }
        return out
    }

    /// Writes `bytes` as `name` in `dirfd` so that a crash leaves the old or the new file,
    /// never neither: temp file, fsync, rename, fsync of the directory. `temporary` names
    /// the temp file when the caller holds `name`'s lock (`lockedTemporary`); otherwise it
    /// carries our pid.
    public static func writeAtomically(dirfd: Int32, dirPath: String, name: String,
                                       bytes: [UInt8], mode: mode_t = 0o600, temporary: String? = nil) throws {
        let tmp = temporary ?? ".\(name).tmp.\(getpid())"
        let path = dirPath + "/" + name
        try writeTemporary(dirfd: dirfd, tmp: tmp, path: path, bytes: bytes, mode: mode, sync: true)
        guard renameat(dirfd, tmp, dirfd, name) == 0 else {
            let e = errno
            _ = unlinkat(dirfd, tmp, 0)
            throw StoreError.io(path: path, operation: "rename", errno: e)
        }
        guard Sys.retry({ fsync(dirfd) }) == 0 else { throw StoreError.io(path: dirPath, operation: "fsync", errno: errno) }
    }

    /// Creates `tmp` afresh with `bytes` (fsync'd when `sync`); removed again on failure.
    static func writeTemporary(dirfd: Int32, tmp: String, path: String, bytes: [UInt8], mode: mode_t, sync: Bool) throws {
        _ = unlinkat(dirfd, tmp, 0)
        let fd = Sys.retry { openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode) }
        guard fd >= 0 else { throw StoreError.io(path: path, operation: "create temporary file", errno: errno) }
        do {
            defer { close(fd) }
            _ = fchmod(fd, mode)
            try writeAll(fd: fd, bytes: bytes, path: path)
            if sync {
                guard Sys.retry({ fsync(fd) }) == 0 else { throw StoreError.io(path: path, operation: "fsync", errno: errno) }
            }
        } catch {
            _ = unlinkat(dirfd, tmp, 0)
            throw error
        }
    }

    /// Removes the temporary files (`.NAME.tmp.PID`) that `writeAtomically` writers without
    /// a lock left behind when they died mid-write, those whose process is gone. For small
    /// directories only (key_dir): it reads the whole directory. A live process's file, or
    /// one whose pid was reused meanwhile, stays for a later sweep.
    public static func removeDeadTemporaries(dirfd: Int32, dirPath: String) {
        guard let all = try? names(dirfd: dirfd, dirPath: dirPath) else { return }
        for name in all where name.hasPrefix(".") {
            guard let dot = name.lastIndex(of: "."), name[..<dot].hasSuffix(".tmp"),
                  let pid = pid_t(name[name.index(after: dot)...]), pid > 0 else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { _ = unlinkat(dirfd, name, 0) }
        }
    }

    /// The temporary file of `name` for a writer holding `name`'s lock: one fixed name, so
    /// the next holder removes a dead writer's leftover with one unlink (no directory scan,
    /// which at 100,000 users would cost every login a read of the whole directory).
    public static func lockedTemporary(of name: String) -> String { ".\(name).tmp" }

    static func writeAll(fd: Int32, bytes: [UInt8], path: String) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { p in
                Sys.retry { write(fd, p.baseAddress! + off, p.count - off) }
            }
            if n <= 0 { throw StoreError.io(path: path, operation: "write", errno: errno) }
            off += n
        }
    }

    /// Removes what a writer of `names` killed mid-write left (their `lockedTemporary`
    /// files). Call under the names' lock: nobody else writes those files then.
    public static func removeStaleTemporaries(dirfd: Int32, of names: [String]) {
        for name in names { _ = unlinkat(dirfd, lockedTemporary(of: name), 0) }
    }

    /// Removes `name` from `dirfd` durably; a missing file is not an error.
    public static func remove(dirfd: Int32, dirPath: String, name: String) throws {
        if unlinkat(dirfd, name, 0) != 0 && errno != ENOENT {
            throw StoreError.io(path: dirPath + "/" + name, operation: "unlink", errno: errno)
        }
        _ = Sys.retry { fsync(dirfd) }
    }

    /// The names in the directory open as `dirfd` (without "." and "..").
    public static func names(dirfd: Int32, dirPath: String) throws -> [String] {
        let dup = Glibc.dup(dirfd)
        guard dup >= 0, let dir = fdopendir(dup) else {
            throw StoreError.io(path: dirPath, operation: "opendir", errno: errno)
        }
        defer { closedir(dir) }
        rewinddir(dir)
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Creates a directory (and missing parents) with `mode`, or tightens an existing one.
    public static func makeDirectory(_ path: String, mode: mode_t) throws {
        var prefix = ""
        for part in path.split(separator: "/") {
            prefix += "/" + part
            if mkdir(prefix, prefix == path ? mode : 0o755) != 0 && errno != EEXIST {
                throw StoreError.io(path: prefix, operation: "mkdir", errno: errno)
            }
        }
        let fd = Sys.retry { open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
        guard fd >= 0 else { throw StoreError.io(path: path, operation: "open directory", errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw StoreError.io(path: path, operation: "stat", errno: errno) }
        guard st.st_uid == ownUID else {
            throw StoreError.unsafe(path: path, reason: "owned by uid \(st.st_uid), expected \(ownUID)")
        }
        guard fchmod(fd, mode) == 0 else { throw StoreError.io(path: path, operation: "chmod", errno: errno) }
    }
}

/// One file of byte-range locks (`state_dir/.conn-slots`): each byte stands for a slot,
/// taken with an open-file-description lock (Sys.tryLockByte) that the kernel drops when
/// this object closes its descriptor or the process ends. Nothing is written to the file
/// and nothing is left behind per slot. The file is created 0600 if missing, opened
/// without following a symbolic link, and must be a regular file of ours, closed to group
/// and others (as every store file).
public final class ByteLocks {
    private var fd: Int32
    let path: String

    public init(dirfd: Int32, dirPath: String, name: String) throws {
        path = dirPath + "/" + name
        fd = Sys.retry { openat(dirfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0o600) }
        guard fd >= 0 else {
            if errno == ELOOP { throw StoreError.unsafe(path: path, reason: "is a symbolic link") }
            throw StoreError.io(path: path, operation: "open lock", errno: errno)
        }
        let st = try Files.statRegular(fd, path: path)
        if let problem = Files.ownershipProblem(st, allowGroupOtherRead: false) {
            close(fd)
            throw StoreError.unsafe(path: path, reason: problem)
        }
    }

    /// Takes the first free byte of `offsets` (lowest first); nil when all are held by
    /// others. A byte this object already holds counts as free (it is ours).
    public func claimFirst(of offsets: [Int64]) throws -> Int64? {
        for offset in offsets {
            guard let taken = Sys.tryLockByte(fd, at: offset) else {
                throw StoreError.io(path: path, operation: "lock byte \(offset)", errno: errno)
            }
            if taken { return offset }
        }
        return nil
    }

    /// Drops every byte this object holds.
    public func release() {
        if fd >= 0 {
            close(fd)
            fd = -1
        }
    }

    deinit { release() }
}

/// An exclusive per-user lock (flock on `<user>.lock`), held for one read-verify-write.
public final class FileLock {
    private var fd: Int32

    /// With `wait: false`, returns nil instead of waiting when another holder has it.
    public convenience init?(dirfd: Int32, dirPath: String, name: String, wait: Bool) throws {
        try self.init(dirfd: dirfd, dirPath: dirPath, name: name, operation: wait ? LOCK_EX : LOCK_EX | LOCK_NB)
        if fd < 0 { return nil }
    }

    public convenience init(dirfd: Int32, dirPath: String, name: String) throws {
        try self.init(dirfd: dirfd, dirPath: dirPath, name: name, operation: LOCK_EX)
    }

    private init(dirfd: Int32, dirPath: String, name: String, operation: Int32) throws {
        let path = dirPath + "/" + name
        fd = Sys.retry { openat(dirfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600) }
        guard fd >= 0 else {
            // A directory or a symbolic link in its place: the same words as for a FIFO or
            // another user's file below (the runbook's), not the bare errno.
            if errno == EISDIR || errno == ELOOP {
                throw StoreError.unsafe(path: path, reason: "lock file is not a regular file of ours")
            }
            throw StoreError.io(path: path, operation: "open lock", errno: errno)
        }
        var st = stat()
        if fstat(fd, &st) != 0 || !Self.usable(st) {
            close(fd)
            throw StoreError.unsafe(path: path, reason: "lock file is not a regular file of ours")
        }
        guard Sys.retry({ flock(fd, operation) }) == 0 else {
            let e = errno; close(fd)
            fd = -1
            if e == EWOULDBLOCK && operation & LOCK_NB != 0 { return }
            throw StoreError.io(path: path, operation: "flock", errno: e)
        }
    }

    /// What a lock file must be: a regular file of ours (the store's repair replaces others).
    static func usable(_ st: stat) -> Bool { st.st_mode & S_IFMT == S_IFREG && st.st_uid == Files.ownUID }

    public func unlock() {
        if fd >= 0 {
            _ = flock(fd, LOCK_UN)
            close(fd)
            fd = -1
        }
    }

    deinit { unlock() }
}
