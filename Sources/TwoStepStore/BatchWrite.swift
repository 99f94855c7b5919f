// SPDX-License-Identifier: Apache-2.0
import Glibc
import TwoStepCrypto
import TwoStepSystem

// Many records at once (`admin import --batch`, `admin rotate-key`): thousands a second,
// where one record at a time costs two fsyncs of a file and two of the directory each.
// A batch holds its users' locks, writes every record to its temporary file, flushes the
// file system once, renames, and fsyncs the directory once. At every instant each record
// is its old file or a complete new one: a temporary is durable before its rename, and a
// rename the directory flush did not reach yet reverts to the old file after a crash.

extension Files {
    /// A file for `writeBatch`: its name and contents.
    public struct Pending {
        public let name: String
        public let bytes: [UInt8]
    }

    /// Writes `files` in `dirfd` (the caller holds each name's lock) with one syncfs and one
    /// directory fsync for them all. Each goes through its `lockedTemporary` and a rename,
    /// or, with `spares` (files that replace others), through a spare and an exchange.
    /// Returns, per file, nil when it was written, else the error.
    static func writeBatch(dirfd: Int32, dirPath: String, files: [Pending], spares: SparePool? = nil) -> [Error?] {
        var errors = [Error?](repeating: nil, count: files.count)
        for (i, f) in files.enumerated() {
            do {
                if let spares {
                    try spares.fill(i, f.bytes, for: dirPath + "/" + f.name)
                } else {
                    try writeTemporary(dirfd: dirfd, tmp: lockedTemporary(of: f.name), path: dirPath + "/" + f.name,
                                       bytes: f.bytes, mode: 0o600, sync: false)
                }
            } catch {
                errors[i] = error
            }
        }
        func failAll(_ e: Error, unlinking: Bool) {
            for (i, f) in files.enumerated() where errors[i] == nil {
                if unlinking && spares == nil { _ = unlinkat(dirfd, lockedTemporary(of: f.name), 0) }
                errors[i] = e
            }
        }
        if Sys.syncFileSystem(dirfd) != 0 {
            failAll(StoreError.io(path: dirPath, operation: "syncfs", errno: errno), unlinking: true)
            return errors
        }
        for (i, f) in files.enumerated() where errors[i] == nil {
            do {
                if let spares {
                    try spares.swap(i, into: f.name)
                } else if renameat(dirfd, lockedTemporary(of: f.name), dirfd, f.name) != 0 {
                    let e = errno
                    _ = unlinkat(dirfd, lockedTemporary(of: f.name), 0)
                    throw StoreError.io(path: dirPath + "/" + f.name, operation: "rename", errno: e)
                }
            } catch {
                errors[i] = error
            }
        }
        if Sys.retry({ fsync(dirfd) }) != 0 {
            // Renamed, but a crash could still undo it: not reported as written.
            failAll(StoreError.io(path: dirPath, operation: "fsync", errno: errno), unlinking: false)
        }
        return errors
    }
}

/// Files that take the new versions of records a batch replaces. Replacing a file by a
/// rename frees its inode and block, which on ext4 here costs a quarter of a millisecond
/// a record, ten times the rest of a re-seal; exchanging names (renameat2 RENAME_EXCHANGE)
/// frees nothing, and the spare then holds the old version, ready to be overwritten by the
/// next batch. Spares are `.twostep-spare.N`, used by one run at a time (a lock); a killed
/// run's leftovers (old sealed records, never read) go when the next run starts. Where the
/// file system cannot exchange, a spare is renamed over the record instead.
final class SparePool {
    static let prefix = ".twostep-spare."
    let dirfd: Int32
    let dirPath: String
    let size: Int
    private let lock: FileLock
    private var exchangeWorks = true

    init(dirfd: Int32, dirPath: String, size: Int) throws {
        guard let lock = try FileLock(dirfd: dirfd, dirPath: dirPath, name: SparePool.prefix + "lock", wait: false) else {
            throw StoreError.io(path: dirPath, operation: "re-seal (another rotate-key is running)", errno: EBUSY)
        }
        self.lock = lock
        self.dirfd = dirfd
        self.dirPath = dirPath
        self.size = size
        removeAll()
    }

    func name(_ k: Int) -> String { SparePool.prefix + String(k) }

    /// Spare `k` now holds exactly `bytes` (not yet flushed).
    func fill(_ k: Int, _ bytes: [UInt8], for path: String) throws {
        let fd = Sys.retry { openat(dirfd, name(k), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600) }
        guard fd >= 0 else { throw StoreError.io(path: path, operation: "open spare", errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG, Files.ownershipProblem(st, allowGroupOtherRead: false) == nil else {
            throw StoreError.unsafe(path: dirPath + "/" + name(k), reason: "not a private regular file of ours")
        }
        try Files.writeAll(fd: fd, bytes: bytes, path: path)
        guard Sys.retry({ ftruncate(fd, off_t(bytes.count)) }) == 0 else {
            throw StoreError.io(path: path, operation: "truncate spare", errno: errno)
        }
    }

    /// Puts spare `k`'s contents under `target`, atomically.
    func swap(_ k: Int, into target: String) throws {
        if exchangeWorks {
            if Sys.exchange(dirfd, name(k), target) == 0 { return }
            guard errno == EINVAL || errno == ENOSYS else {
                throw StoreError.io(path: dirPath + "/" + target, operation: "exchange", errno: errno)
            }
            exchangeWorks = false
        }
        guard renameat(dirfd, name(k), dirfd, target) == 0 else {
            throw StoreError.io(path: dirPath + "/" + target, operation: "rename", errno: errno)
        }
    }

    func removeAll() {
        for k in 0..<size { _ = unlinkat(dirfd, name(k), 0) }
    }

    deinit {
        removeAll()
        lock.unlock()
    }
}

/// What a batch did for one user.
public enum BatchOutcome {
    case written
    /// Nothing to do: the record was already under the key, or is gone.
    case unchanged
    /// The user has a record or a state already (enrolment: not a new user).
    case exists
    case failed(Error)
}

/// Master keys by id, read from key_dir once for many records (an id is the hash of its
/// key, so a cached key can never be the wrong one).
public final class KeyCache {
    let ring: KeyRing
    private var keys: [String: MasterKey] = [:]

    public init(_ ring: KeyRing) { self.ring = ring }

    public func key(id: String) throws -> MasterKey {
        if let k = keys[id] { return k }
        let k = try ring.key(id: id)
        keys[id] = k
        return k
    }
}

extension FileUserStore {
    /// Enrols users that have neither a record nor a state (`.exists` for the others, which
    /// the caller handles one by one), sealed under the active key as generation 1. No state
    /// file is written: a missing state is a fresh one. Each user appears once per batch.
    public func enrolNew(_ entries: [(user: String, record: UserRecord)]) throws -> [BatchOutcome] {
        // The whole batch sealed and renamed into place before `retire` may count records.
        try keys.sealing { try enrolNew(entries, key: try keys.activeKey()) }
    }

    private func enrolNew(_ entries: [(user: String, record: UserRecord)], key: MasterKey) throws -> [BatchOutcome] {
        try inBatch(entries.map(\.user)) { i, user, base, dirfd in
            guard try !exists(dirfd, base + ".record"), try !exists(dirfd, base + ".state") else { return nil }
            // A hashed file name's `.name` file before the record, as saveRecord writes it:
            // without it listings, rotation and migration cannot find the record by name.
            try nameHashedUser(user, dirfd: dirfd)
            var plain = entries[i].record.serialized()
            defer { Crypto.wipe(&plain) }
            return try SealedRecord.seal(plain, user: user, key: key, generation: 1)
        } missing: { .exists }
    }

    /// Re-seals these users' records under `key`, keeping each one's generation (its
    /// contents do not change, so neither does its state).
    func reseal(_ users: [String], under key: MasterKey, keys cache: KeyCache, spares: SparePool) throws -> [BatchOutcome] {
        // In place before a concurrent `retire` (another admin's `--use K --retire`) counts,
        // and under a key that is still there: it was read before the lock, and a retire
        // that ran in between may have deleted it (nothing named it yet).
        try self.keys.sealing {
            _ = try self.keys.key(id: key.id)
            return try resealLocked(users, under: key, keys: cache, spares: spares)
        }
    }

    private func resealLocked(_ users: [String], under key: MasterKey, keys cache: KeyCache, spares: SparePool) throws -> [BatchOutcome] {
        try inBatch(users, spares: spares) { _, user, base, dirfd in
            let name = base + ".record"
            guard let sealed = try Files.readPrivate(dirfd: dirfd, dirPath: directory, name: name),
                  try SealedRecord.keyID(of: sealed, path: directory + "/" + name) != key.id else { return nil }
            var (plain, generation) = try SealedRecord.openWithGeneration(sealed, user: user, path: directory + "/" + name,
                                                                           key: cache.key(id:))
            defer { Crypto.wipe(&plain) }
            _ = try UserRecord.parse(plain, path: directory + "/" + name)
            return try SealedRecord.seal(plain, user: user, key: key, generation: generation)
        } missing: { .unchanged }
    }

    /// Takes every user's lock, asks `sealed` for each user's new record (nil: nothing to
    /// write, reported as `missing()`), writes them with `Files.writeBatch`, and releases
    /// the locks. The locks are taken in the order of their file names, whatever order the
    /// caller gives: two batches over the same users (a rotation in name order and an
    /// import in its file's order) each waited for a lock the other held, for ever, and so
    /// did every login of the users they held. `sealed` and the outcomes keep the caller's
    /// indices; of a name given twice, the later one fails.
    private func inBatch(_ users: [String], spares: SparePool? = nil,
                         _ sealed: (Int, String, String, Int32) throws -> [UInt8]?,
                         missing: () -> BatchOutcome) throws -> [BatchOutcome] {
        try withDirectory { dirfd in
            var outcomes = [BatchOutcome](repeating: missing(), count: users.count)
            var locks: [FileLock] = []
            defer { for l in locks { l.unlock() } }
            var seen = Set<String>()
            var pending: [Files.Pending] = []
            var slots: [Int] = []
            var named: [(i: Int, base: String)] = []
            for (i, user) in users.enumerated() {
                do { named.append((i, try checked(user))) } catch { outcomes[i] = .failed(error) }
            }
            named.sort { ($0.base, $0.i) < ($1.base, $1.i) }
            for (i, base) in named {
                let user = users[i]
                do {
                    // A second flock of one file from this process would wait for ever.
                    guard seen.insert(base).inserted else {
                        throw StoreError.io(path: directory + "/" + base, operation: "batch (named twice)", errno: EINVAL)
                    }
                    // (A dead writer's temporary record goes when writeBatch makes ours.)
                    locks.append(try FileLock(dirfd: dirfd, dirPath: directory, name: base + ".lock"))
                    guard let bytes = try sealed(i, user, base, dirfd) else { continue }
                    pending.append(Files.Pending(name: base + ".record", bytes: bytes))
                    slots.append(i)
                } catch {
                    outcomes[i] = .failed(error)
                }
            }
            for (k, error) in Files.writeBatch(dirfd: dirfd, dirPath: directory, files: pending, spares: spares).enumerated() {
                outcomes[slots[k]] = error.map { .failed($0) } ?? .written
            }
            return outcomes
        }
    }

    /// The spare files of one re-sealing run (at most one at a time).
    func spares(_ size: Int) throws -> SparePool {
        try withDirectory { try SparePool(dirfd: $0, dirPath: directory, size: size) }
    }

    private func exists(_ dirfd: Int32, _ name: String) throws -> Bool {
        var st = stat()
        if fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 { return true }
        if errno == ENOENT { return false }
        throw StoreError.io(path: directory + "/" + name, operation: "stat", errno: errno)
    }
}

extension KeyRotation {
    /// Re-seals `users` under `activeKey`: on a file store `batchSize` records per flush,
    /// elsewhere (PostgreSQL: a short transaction each) one at a time. Calls `step` after
    /// each user with nil or the error, and stops between batches once `stop()` is true.
    /// Returns how many users it went through.
    public func reseal(_ users: [String], activeKey: String, batchSize: Int = 256,
                       stop: () -> Bool, step: (String, Error?) -> Void) throws -> Int {
        var done = 0
        guard let files = store as? FileUserStore else {
            for user in users {
                if stop() { break }
                do { _ = try reseal(user, activeKey: activeKey); step(user, nil) } catch { step(user, error) }
                done += 1
            }
            return done
        }
        let cache = KeyCache(ring)
        let key = try cache.key(id: activeKey)
        let spares = try files.spares(batchSize)
        while done < users.count && !stop() {
            let batch = Array(users[done..<min(done + batchSize, users.count)])
            for (user, outcome) in zip(batch, try files.reseal(batch, under: key, keys: cache, spares: spares)) {
                if case .failed(let e) = outcome { step(user, e) } else { step(user, nil) }
            }
            done += batch.count
        }
        return done
    }
}
