// SPDX-License-Identifier: Apache-2.0
// Files that other OTP modules keep (google-authenticator's ~/.google_authenticator,
// pam_oath's usersfile), read once by root to migrate them, and shredded on request.
import Glibc
import TwoStepSystem

/// A file read for migration, with the identity it had when read (for a later shred).
public struct ForeignFile {
    public let path: String
    /// The caller wipes these: they hold secrets.
    public var bytes: [UInt8]
    public let mode: mode_t
    public let owner: uid_t
    let device: UInt64
    let inode: UInt64
}

extension Files {
    /// Reads `path` as root for an importer, refusing it the way the module that owns it
    /// would (and a little more): it must be a regular file (not a symbolic link, so root
    /// never reads through a link a user planted), owned by `owner`, with no permission
    /// bits outside `allowedMode`, and between 1 byte and `limit` bytes long. A refusal is
    /// `StoreError.unsafe`; a missing file is nil.
    public static func readForeign(path: String, owner: uid_t, allowedMode: mode_t, limit: Int) throws -> ForeignFile? {
        guard let (fd, st) = try openRegular(dirfd: AT_FDCWD, name: path, path: path) else { return nil }
        defer { close(fd) }
        let mode = st.st_mode & 0o7777
        if mode & ~allowedMode != 0 {
            throw StoreError.unsafe(path: path, reason: "mode \(octal(mode)) is more permissive than \(octal(allowedMode))")
        }
        if st.st_uid != owner {
            throw StoreError.unsafe(path: path, reason: "owned by \(accountName(st.st_uid)), not by \(accountName(owner))")
        }
        guard st.st_size >= 1 else { throw StoreError.unsafe(path: path, reason: "empty") }
        guard Int(st.st_size) <= limit else { throw StoreError.tooLarge(path: path, limit: limit) }
        let bytes = try readAll(fd: fd, path: path, limit: limit)
        return ForeignFile(path: path, bytes: bytes, mode: mode, owner: st.st_uid,
                           device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }

    /// Overwrites the file read as `file` with zeros, syncs it, and removes its name, if
    /// it is still the same file (device and inode) with the same owner: a name swapped
    /// since the import is refused, never followed. Copies elsewhere (backups, snapshots,
    /// a copy-on-write file system's old blocks) are beyond its reach.
    public static func shred(_ file: ForeignFile) throws {
        let path = file.path
        let slash = path.lastIndex(of: "/")
        let dirPath = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        let dirfd = Sys.retry { open(dirPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        guard dirfd >= 0 else { throw StoreError.io(path: dirPath, operation: "open directory", errno: errno) }
        defer { close(dirfd) }
        let fd = Sys.retry { openat(dirfd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY) }
        guard fd >= 0 else { throw StoreError.io(path: path, operation: "open for shredding", errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw StoreError.io(path: path, operation: "stat", errno: errno) }
        guard st.st_mode & S_IFMT == S_IFREG, UInt64(st.st_dev) == file.device, UInt64(st.st_ino) == file.inode,
              st.st_uid == file.owner else {
            throw StoreError.unsafe(path: path, reason: "changed since it was imported; not shredded")
        }
        let zeros = [UInt8](repeating: 0, count: 4096)
        var left = Int(st.st_size)
        while left > 0 {
            let n = min(left, zeros.count)
            try writeAll(fd: fd, bytes: Array(zeros[0..<n]), path: path)
            left -= n
        }
        guard Sys.retry({ fsync(fd) }) == 0 else { throw StoreError.io(path: path, operation: "fsync", errno: errno) }
        // The name must still lead to the overwritten file when it is removed.
        var now = stat()
        guard fstatat(dirfd, name, &now, AT_SYMLINK_NOFOLLOW) == 0, now.st_dev == st.st_dev, now.st_ino == st.st_ino else {
            throw StoreError.unsafe(path: path, reason: "renamed while being shredded; its content is overwritten, the name now belongs to another file and is kept")
        }
        try remove(dirfd: dirfd, dirPath: dirPath, name: name)
    }

    static func octal(_ mode: mode_t) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// "alice (uid 1000)", or "uid 1000" for an id without an account.
    static func accountName(_ uid: uid_t) -> String {
        #if TWOSTEP_LEAN
        return "uid \(uid)"  // twostep-verify calls no NSS (lookUpAccount)
        #else
        guard let pw = getpwuid(uid), let name = pw.pointee.pw_name else { return "uid \(uid)" }
        return "\(String(cString: name)) (uid \(uid))"
        #endif
    }
}
