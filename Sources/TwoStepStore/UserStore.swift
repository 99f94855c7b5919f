// SPDX-License-Identifier: Apache-2.0
import Glibc
import TwoStepCrypto

/// The store behind the helper's logic. The file backend below is the only one today;
/// a shared backend (PostgreSQL for fleets) implements the same protocol.
public protocol UserStore: AnyObject {
    /// The sealed record, or nil when the user is not enrolled.
    func loadRecord(_ user: String) throws -> UserRecord?
    /// Whether the user has a record, without opening it.
    func hasRecord(_ user: String) throws -> Bool
    /// The mutable state; a fresh state when there is none.
    func loadState(_ user: String) throws -> UserState
    func saveRecord(_ record: UserRecord, for user: String) throws
    func saveState(_ state: UserState, for user: String) throws
    /// Removes record and state.
    func removeUser(_ user: String) throws
    func enrolledUsers() throws -> [String]
    /// Runs `body` holding the user's exclusive lock: every read-verify-write goes here.
    func withLock<R>(_ user: String, _ body: () throws -> R) throws -> R
    /// The record (nil: not enrolled) and the state, for a listing of every user.
    func loadRecordAndState(_ user: String) throws -> (record: UserRecord?, state: UserState)
    /// `loadRecordAndState` again, under the lock, by a login that opened `previous` with
    /// this store before it asked for the code and has not changed it since: when the
    /// sealed record read now holds the very bytes `previous` was opened from, `previous`
    /// itself comes back (no second decryption and parse). The state is always read anew.
    func reloadRecordAndState(_ user: String, opened previous: UserRecord?) throws -> (record: UserRecord?, state: UserState)
}

extension UserStore {
    public func loadRecordAndState(_ user: String) throws -> (record: UserRecord?, state: UserState) {
        (try loadRecord(user), try loadState(user))
    }

    public func reloadRecordAndState(_ user: String, opened previous: UserRecord?) throws
        -> (record: UserRecord?, state: UserState) {
        try loadRecordAndState(user)
    }

    /// A fresh set of backup codes for an enrolled user, under the lock; the old set stops
    /// working. The codes exist in clear only in the caller's hands.
    public func issueBackupCodes(for user: String) throws -> [String] {
        try withLock(user) {
            guard let record = try loadRecord(user) else { throw StoreError.notEnrolled(user) }
            let codes = try record.issueBackupCodes()
            try saveRecord(record, for: user)
            return codes
        }
    }
}

/// The record a store opened last and the sealed bytes it was opened from: what
/// `reloadRecordAndState` compares with. One slot, so a listing of every user keeps
/// nothing but the last one.
public struct LastOpened {
    let user: String
    let sealed: [UInt8]
    public let generation: UInt64
    let record: UserRecord

    public init(user: String, sealed: [UInt8], generation: UInt64 = 0, record: UserRecord) {
        self.user = user
        self.sealed = sealed
        self.generation = generation
        self.record = record
    }

    /// `previous`, when it is the record opened last for `user` from exactly `sealed`.
    public func same(_ user: String, _ sealed: [UInt8], _ previous: UserRecord?) -> UserRecord? {
        guard let previous, previous === record, user == self.user, sealed == self.sealed else { return nil }
        return previous
    }
}

/// One directory: `<user>.record` (sealed), `<user>.state`, `<user>.lock`; 0700, ours.
public final class FileUserStore: UserStore {
    public let directory: String
    public let keys: KeyRing

    public init(directory: String, keys: KeyRing) {
        self.directory = directory
        self.keys = keys
    }

    /// Master keys read once for many records (a listing of the whole store), when set.
    public var keyCache: KeyCache?

    public convenience init(config: Config) throws {
        self.init(directory: config.stateDir, keys: try KeyRing(keyDir: config.keyDir))
    }

    /// The base of `user`'s file names (`UserFileName`); throws for an invalid name.
    func checked(_ user: String) throws -> String {
        try UserFileName.encode(user)
    }

    /// The state directory, opened once per store (a store lives for one login or one
    /// command) and checked again with fstat before every use.
    private var directoryFD: Int32 = -1

    func withDirectory<R>(_ body: (Int32) throws -> R) throws -> R {
        if directoryFD < 0 {
            directoryFD = try Files.openPrivateDirectory(directory)
        } else {
            try Files.checkPrivateDirectory(directoryFD, path: directory)
        }
        return try body(directoryFD)
    }

    deinit {
        if directoryFD >= 0 { close(directoryFD) }
    }

    /// The newest record generation this store has seen per user (read or written), so
    /// that a state written after a record never carries an older generation.
    var generations: [String: UInt64] = [:]

    public func loadRecord(_ user: String) throws -> UserRecord? {
        _ = try checked(user)
        // A damaged state is refused where it is used (a login); here it only cannot vouch
        // for a generation (admin unlock must still read the record to repair it).
        let stateGeneration = (try? loadState(user))?.recordGeneration ?? 0
        return try openRecord(user, stateGeneration: stateGeneration)
    }

    /// Each file read once (`loadRecord` reads the state for its generation, and a listing
    /// wants the state too); a damaged state makes the pair unreadable.
    public func loadRecordAndState(_ user: String) throws -> (record: UserRecord?, state: UserState) {
        try reloadRecordAndState(user, opened: nil)
    }

    public func reloadRecordAndState(_ user: String, opened previous: UserRecord?) throws
        -> (record: UserRecord?, state: UserState) {
        let state: UserState
        do { state = try loadState(user) } catch {
            guard try hasRecord(user) else { return (nil, UserState()) }   // nobody's state to show
            throw error
        }
        return (try openRecord(user, stateGeneration: state.recordGeneration, previous: previous), state)
    }

    private var lastOpened: LastOpened?

    private func openRecord(_ user: String, stateGeneration: UInt64, previous: UserRecord? = nil) throws -> UserRecord? {
        let name = try checked(user) + ".record"
        let path = directory + "/" + name
        return try withDirectory { fd in
            guard let sealed = try Files.readPrivate(dirfd: fd, dirPath: directory, name: name) else { return nil }
            func notOlder(_ generation: UInt64) throws {
                guard generation >= stateGeneration else {
                    throw StoreError.restoredCopy(path: path, generation: generation, stateGeneration: stateGeneration)
                }
                generations[user] = max(generations[user] ?? 0, generation)
            }
            if let last = lastOpened, let same = last.same(user, sealed, previous) {
                try notOlder(last.generation)
                return same
            }
            var (plain, generation) = try SealedRecord.openWithGeneration(sealed, user: user, path: path,
                                                                           key: keyCache?.key(id:) ?? keys.key(id:))
            defer { Crypto.wipe(&plain) }
            try notOlder(generation)
            let record = try UserRecord.parse(plain, path: path)
            lastOpened = LastOpened(user: user, sealed: sealed, generation: generation, record: record)
            return record
        }
    }

    public func hasRecord(_ user: String) throws -> Bool {
        let name = try checked(user) + ".record"
        return try withDirectory { fd in
            var st = stat()
            if fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 {
                if errno == ENOENT { return false }
                throw StoreError.io(path: directory + "/" + name, operation: "stat", errno: errno)
            }
            return true
        }
    }

    public func loadState(_ user: String) throws -> UserState {
        let name = try checked(user) + ".state"
        let state = try withDirectory { fd in
            guard let bytes = try Files.readPrivate(dirfd: fd, dirPath: directory, name: name) else { return UserState() }
            // Two slots written in place (StateFile), or the older text file.
            guard let payload = StateFile.payload(of: bytes) else {
                throw StoreError.damaged(path: directory + "/" + name, reason: "neither state slot is valid")
            }
            return try UserState.parse(payload, path: directory + "/" + name)
        }
        generations[user] = max(generations[user] ?? 0, state.recordGeneration)
        return state
    }

    /// Writes the record with the next generation, then the state naming it (a crash in
    /// between leaves a record newer than its state, which opens).
    public func saveRecord(_ record: UserRecord, for user: String) throws {
        let name = try checked(user) + ".record"
        var plain = record.serialized()
        defer { Crypto.wipe(&plain) }
        // A damaged state is not replaced here: a fresh one would forget replay marks and
        // HOTP counters, so spent codes could pass again. `admin unlock` repairs it (every
        // code valid now spent, HOTP counters lost until resync); `admin reset` removes it.
        var state: UserState
        do { state = try loadState(user) } catch StoreError.damaged(let path, let reason) {
            throw StoreError.damagedStateNeedsUnlock(path: path, reason: reason, user: user)
        }
        let generation = try SealedRecord.next(after: max(state.recordGeneration, generations[user] ?? 0),
                                               path: directory + "/" + name)
        lastOpened = nil
        // Sealed and in place before `rotate-key --retire` can judge the key unneeded.
        try keys.sealing {
            let sealed = try SealedRecord.seal(plain, user: user, key: try keys.activeKey(), generation: generation)
            try withDirectory { fd in
                try nameHashedUser(user, dirfd: fd)
                try Files.writeAtomically(dirfd: fd, dirPath: directory, name: name, bytes: sealed,
                                          temporary: Files.lockedTemporary(of: name))
            }
        }
        generations[user] = generation
        state.recordGeneration = generation
        try saveState(state, for: user)
    }

    public func saveState(_ state: UserState, for user: String) throws {
        let name = try checked(user) + ".state"
        var state = state
        // Never lower the generation: merge with what is on disk when this store has not read it.
        if generations[user] == nil { _ = try? loadState(user) }
        state.recordGeneration = max(state.recordGeneration, generations[user] ?? 0)
        // In place: one pwrite and one fdatasync (StateFile), the login path's only write.
        try withDirectory { fd in
            // In place (two slots); a first write or a grown state goes whole through the
            // locked temporary name, which the next lock holder clears by name.
            try StateFile.write(dirfd: fd, dirPath: directory, name: name, payload: state.serialized(),
                                temporary: Files.lockedTemporary(of: name))
        }
    }

    /// Removes the record and what the state held. A user whose records had a generation
    /// (the state's, or the record's own when it opens) keeps a tombstone state naming the generation
    /// after it: every record of before the removal is then older than the state and
    /// refused if it is put back (a backup's copy, with an old secret and backup codes),
    /// and an enrolment after it is sealed with a later generation, never again from 1.
    /// The record goes first: a crash before the tombstone leaves a user who is simply not
    /// enrolled (a tombstone first left a record refused as "a restored copy", and its user
    /// locked out until an administrator reset them again).
    public func removeUser(_ user: String) throws {
        let u = try checked(user)
        let sealed = try? withDirectory { fd in try Files.readPrivate(dirfd: fd, dirPath: directory, name: u + ".record") }
        // The record's own generation, authenticated: a damaged header must not decide it.
        let sealedGeneration = (sealed ?? nil).flatMap { SealedRecord.openedGeneration(of: $0, user: user, keys: keys) } ?? 0
        let held = max((try? loadState(user))?.recordGeneration ?? 0, generations[user] ?? 0, sealedGeneration)
        try withDirectory { fd in
            try Files.remove(dirfd: fd, dirPath: directory, name: u + ".record")
            if let nameFile = UserFileName.nameFile(of: u) { try Files.remove(dirfd: fd, dirPath: directory, name: nameFile) }
        }
        generations[user] = nil
        guard held > 0 else {
            try withDirectory { fd in try Files.remove(dirfd: fd, dirPath: directory, name: u + ".state") }
            return
        }
        // Twice: both slots of the state file (StateFile) hold the tombstone, none of the
        // devices' and failures' lines of before.
        for _ in 0..<2 { try saveState(UserState.tombstone(after: held), for: user) }
    }

    public func enrolledUsers() throws -> [String] {
        try recordFiles().named.sorted()
    }

    /// Every `*.record` in the directory: the users they belong to, and the file bases no
    /// user name could be found for (a hashed base, `UserFileName`, whose `.name` file is
    /// missing or does not match: written before these files existed, or damaged).
    public func recordFiles() throws -> (named: [String], unnamed: [String]) {
        try withDirectory { fd in
            var named: [String] = [], unnamed: [String] = []
            for file in try Files.names(dirfd: fd, dirPath: directory) where file.hasSuffix(".record") {
                let base = String(file.dropLast(".record".count))
                if let user = UserFileName.decode(base) ?? hashedUser(dirfd: fd, base: base) {
                    named.append(user)
                } else {
                    unnamed.append(base)
                }
            }
            return (named, unnamed.sorted())
        }
    }

    /// The user a hashed file base (`%~<sha256>`) stands for, from its `.name` file, when
    /// that name hashes to the base again.
    private func hashedUser(dirfd: Int32, base: String) -> String? {
        guard let nameFile = UserFileName.nameFile(of: base),
              let bytes = try? Files.readPrivate(dirfd: dirfd, dirPath: directory, name: nameFile, limit: 4096),
              let user = String(validating: bytes, as: UTF8.self),
              (try? UserFileName.encode(user)) == base else { return nil }
        return user
    }

    /// For a user whose file names are a hash, the `.name` file that lets listings,
    /// rotation and migration find the record by name; written before the record, so a
    /// record never stands without it. Nothing for any other user.
    func nameHashedUser(_ user: String, dirfd fd: Int32) throws {
        guard let name = UserFileName.nameFile(of: try checked(user)) else { return }
        let bytes = Array(user.utf8)
        if (try? Files.readPrivate(dirfd: fd, dirPath: directory, name: name, limit: 4096)) == bytes { return }
        try Files.writeAtomically(dirfd: fd, dirPath: directory, name: name, bytes: bytes,
                                  temporary: Files.lockedTemporary(of: name))
    }

    /// Replaces `user`'s lock file when it is not a regular file of ours (a directory, a
    /// symlink, a FIFO, another owner's file): every lock of that user, and so every login,
    /// fails on it until then. Nothing of ours can hold such a file locked (FileLock checks
    /// before it locks), so removing it races with no holder. Returns the path when it was
    /// replaced; throws for what it will not remove (a directory with entries).
    public func repairLockFile(_ user: String) throws -> String? {
        let name = try checked(user) + ".lock"
        let path = directory + "/" + name
        return try withDirectory { fd -> String? in
            var st = stat()
            guard fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { return nil }   // none yet: made on use
            if FileLock.usable(st) { return nil }
            let isDirectory = st.st_mode & S_IFMT == S_IFDIR
            guard unlinkat(fd, name, isDirectory ? AT_REMOVEDIR : 0) == 0 else {
                throw StoreError.io(path: path, operation: "remove the damaged lock file (remove it by hand)", errno: errno)
            }
            _ = fsync(fd)
            return path
        }
    }

    public func withLock<R>(_ user: String, _ body: () throws -> R) throws -> R {
        let name = try checked(user) + ".lock"
        let lock = try withDirectory { fd in try FileLock(dirfd: fd, dirPath: directory, name: name) }
        defer { lock.unlock() }
        // What this store saw before the lock may be gone: a login that waited at its prompt
        // while an admin reset the user and enrolled them again wrote the old record's
        // generation into the new state, and the new record was refused as an old copy for
        // good. Under the lock only what is read under it counts.
        generations[user] = nil
        // A writer killed mid-write leaves its temporary file; nobody else writes these
        // files without this lock, so a dead writer's leftovers can go (two unlinks by name:
        // nothing on the login path reads the whole directory).
        try withDirectory { fd in
            let base = try checked(user)
            Files.removeStaleTemporaries(dirfd: fd, of: [base + ".record", base + ".state", UserFileName.nameFile(of: base)]
                                            .compactMap { $0 })
        }
        return try body()
    }
}
