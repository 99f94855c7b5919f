// SPDX-License-Identifier: Apache-2.0
import TwoStepCrypto

/// A store whose sealed records can be read and written as bytes, without opening them:
/// `twostep admin migrate` copies records between backends bit for bit, so a copy needs
/// no re-sealing and running it twice changes nothing.
public protocol SealedRecordAccess: UserStore {
    func sealedRecord(_ user: String) throws -> [UInt8]?
    func storeSealedRecord(_ sealed: [UInt8], for user: String) throws
    /// Writes a user copied whole from another store: the sealed record, then exactly
    /// `state` (its generation the record's, lower than what this store held or not; a
    /// `saveState` would keep the higher one and the copy would not open). The caller holds
    /// the user's lock.
    func storeCopy(_ sealed: [UInt8], state: UserState, for user: String) throws
    /// Records `enrolledUsers` cannot name, by the key id their header names ("unreadable"
    /// when it cannot be read), as identifiers an admin can find them by.
    func unnamedRecordKeys() throws -> [String: [String]]
}

extension SealedRecordAccess {
    /// A store keyed by user name (PostgreSQL) names every record.
    public func unnamedRecordKeys() throws -> [String: [String]] { [:] }
}

extension FileUserStore: SealedRecordAccess {
    /// The state first, then the record: killed in between, a user new here is left with a
    /// state naming the copy's generation and no record (not enrolled; the rerun copies the
    /// record, the state already being the copy's), where the other order left a record
    /// beside no state, "different in the destination" for every rerun.
    public func storeCopy(_ sealed: [UInt8], state: UserState, for user: String) throws {
        generations[user] = state.recordGeneration   // exactly this: not merged with what was here
        try saveState(state, for: user)
        try storeSealedRecord(sealed, for: user)
    }

    public func sealedRecord(_ user: String) throws -> [UInt8]? {
        let name = try checked(user) + ".record"
        return try withDirectory { fd in try Files.readPrivate(dirfd: fd, dirPath: directory, name: name) }
    }

    public func unnamedRecordKeys() throws -> [String: [String]] {
        var byKey: [String: [String]] = [:]
        for base in try recordFiles().unnamed {
            let name = base + ".record"
            let id = try? withDirectory { fd in
                try Files.readPrivate(dirfd: fd, dirPath: directory, name: name)
                    .map { try SealedRecord.keyID(of: $0, path: directory + "/" + name) }
            }
            byKey[(id ?? nil) ?? KeyRotation.unreadable, default: []].append(directory + "/" + name)
        }
        return byKey
    }

    public func storeSealedRecord(_ sealed: [UInt8], for user: String) throws {
        let name = try checked(user) + ".record"
        _ = try SealedRecord.keyID(of: sealed, path: directory + "/" + name)
        try keys.sealing {
            try withDirectory { fd in
                try nameHashedUser(user, dirfd: fd)
                try Files.writeAtomically(dirfd: fd, dirPath: directory, name: name, bytes: sealed,
                                          temporary: Files.lockedTemporary(of: name))
            }
        }
    }
}

/// What a copy between stores did, user by user.
public struct StoreCopyReport {
    public var copied: [String] = []
    public var unchanged: [String] = []
    /// In the destination already, with other contents, or removed there (a tombstone of a
    /// later generation than the copy's), and left as they are (no `overwrite`).
    public var differing: [String] = []
    /// Enrolled in the destination but not in the source (removed there since an earlier
    /// copy?): left as they are, and able to log in with that enrolment once the destination
    /// is the store in use.
    public var onlyInDestination: [String] = []
    public var failed: [(user: String, reason: String)] = []
    /// Overwritten (`overwrite`) although the destination's record was of a later
    /// generation: a copy older than what the destination held, unless the source's user
    /// was reset and enrolled again. Said, so that a mistaken rerun does not pass silently.
    public var lowered: [(user: String, from: UInt64, to: UInt64)] = []
    /// Users of the source not reached because `stop` asked to end the copy (each user is
    /// copied whole or not at all, so running the copy again finishes it).
    public var notReached = 0
    /// The source's records that no user name leads to (a hashed file name without its
    /// `.name` file), not copied: their paths.
    public var unnamed: [String] = []
}

public enum StoreCopy {
    /// What became of one user, as `copy`'s `progress` hears it.
    public enum Outcome {
        case copied, unchanged
        /// The destination holds other contents, left as they are (no `overwrite`).
        case differs
        case failed(String)
    }

    /// Copies every enrolled user's sealed record and state from `source` to `destination`,
    /// each under both users' locks (source first), and opens every copied record with
    /// `keys` (and the user's name), and then through the destination's own reader, before
    /// counting it. A user already identical in the destination is left alone. A user the
    /// destination holds with other contents is overwritten only with `overwrite`: a copy
    /// made again after hosts started using the destination would otherwise put back
    /// spent backup codes, replay marks and lockouts from the older source.
    ///
    /// A record the source itself refuses (older than its state) is not copied: the user
    /// fails, with the source's reason.
    ///
    /// The state's `record_generation` is set to the copied record's generation: the file
    /// store refuses a record older than its state (a restored copy), and the PostgreSQL
    /// store seals with generation 0, so a state carried over from files would otherwise
    /// make every record re-sealed in the database "older than its state" back in files.
    ///
    /// `begin` hears how many users the source holds; `stop` is asked before each user, and
    /// when it says so the copy ends there (`notReached`).
    public static func copy(from source: SealedRecordAccess, to destination: SealedRecordAccess,
                            keys: KeyRing, overwrite: Bool = false,
                            begin: (Int) -> Void = { _ in },
                            stop: () -> Bool = { false },
                            progress: (String, Outcome) -> Void = { _, _ in }) throws -> StoreCopyReport {
        var report = StoreCopyReport()
        let users = try source.enrolledUsers()
        begin(users.count)
        for (i, user) in users.enumerated() {
            // Between users only: what is copied is each user's record and state, whole.
            if stop() {
                report.notReached = users.count - i
                break
            }
            do {
                var lowered: (from: UInt64, to: UInt64)?
                let outcome: Outcome = try source.withLock(user) {
                    guard let sealed = try source.sealedRecord(user) else { throw StoreError.notEnrolled(user) }
                    var state = try source.loadState(user)
                    state.recordGeneration = try verify(sealed, user: user, keys: keys, label: "source")
                    // What the source's own logins refuse (a record older than its state: a
                    // restored copy that would bring spent backup codes back) is not copied,
                    // where it would open: its generation goes with it into the new state.
                    guard try source.loadRecord(user) != nil else { throw StoreError.notEnrolled(user) }
                    return try destination.withLock(user) {
                        let there = try destination.sealedRecord(user)
                        if there == sealed, try destination.loadState(user) == state { return .unchanged }
                        if there != nil && !overwrite { return .differs }
                        // A user removed in the destination after this copy was made leaves a
                        // tombstone (a state naming a later generation, no record): putting the
                        // older record back would bring the secret that was removed back.
                        let held = (try? destination.loadState(user).recordGeneration) ?? 0
                        if held > state.recordGeneration {
                            guard overwrite else { return .differs }
                            lowered = (held, state.recordGeneration)
                        }
                        try destination.storeCopy(sealed, state: state, for: user)
                        guard let back = try destination.sealedRecord(user), back == sealed else {
                            throw StoreError.damaged(path: user, reason: "destination does not hold what was written")
                        }
                        _ = try verify(back, user: user, keys: keys, label: "destination")
                        // The destination's own reader: what a login there will do with it.
                        guard try destination.loadRecord(user) != nil else {
                            throw StoreError.damaged(path: user, reason: "destination does not open what was written")
                        }
                        return .copied
                    }
                }
                switch outcome {
                case .copied:
                    report.copied.append(user)
                    if let lowered { report.lowered.append((user, lowered.from, lowered.to)) }
                case .differs: report.differing.append(user)
                case .unchanged: report.unchanged.append(user)
                case .failed(let reason): report.failed.append((user, reason))
                }
                progress(user, outcome)
            } catch {
                report.failed.append((user, "\(error)"))
                progress(user, .failed("\(error)"))
            }
        }
        let copiedFrom = Set(users)
        report.onlyInDestination = try destination.enrolledUsers().filter { !copiedFrom.contains($0) }
        report.unnamed = try source.unnamedRecordKeys().values.flatMap { $0 }.sorted()
        return report
    }

    /// Opens and parses a sealed record: it authenticates for this user under a known key.
    /// Returns the generation it was sealed with.
    static func verify(_ sealed: [UInt8], user: String, keys: KeyRing, label: String) throws -> UInt64 {
        var (plain, generation) = try SealedRecord.openWithGeneration(sealed, user: user, keys: keys,
                                                                      path: "\(label) record of \(user)")
        defer { Crypto.wipe(&plain) }
        _ = try UserRecord.parse(plain, path: "\(label) record of \(user)")
        return generation
    }
}
