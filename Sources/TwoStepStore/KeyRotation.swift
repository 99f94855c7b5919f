// SPDX-License-Identifier: Apache-2.0
import Glibc

/// `twostep admin rotate-key`, made killable at any instant: every record is re-sealed under
/// its user's lock with an atomic write, so each record is at every moment readable under
/// either its old key or the new one, and old keys stay until no record names them. A run
/// that finds records still under an inactive key finishes that rotation instead of
/// starting another, so running the command again after a crash completes the job.
public struct KeyRotation {
    public let store: UserStore & SealedRecordAccess
    public let ring: KeyRing

    public init(store: UserStore & SealedRecordAccess, ring: KeyRing) {
        self.store = store
        self.ring = ring
    }

    /// Which key each record names (read from its header, nothing decrypted); users whose
    /// record cannot even be read are under the key "unreadable".
    public func census() throws -> [String: [String]] {
        var byKey: [String: [String]] = [:]
        for user in try store.enrolledUsers() {
            let id = (try? store.sealedKeyID(user)) ?? nil
            byKey[id ?? KeyRotation.unreadable, default: []].append(user)
        }
        return byKey
    }

    public static let unreadable = "unreadable"

    /// Records no user name could be found for (`FileUserStore.recordFiles`), by the key
    /// their header names ("unreadable" when not even that could be read), as file bases.
    /// They cannot be re-sealed (their associated data needs the name), but their keys
    /// must stay.
    public func unnamedCensus() throws -> [String: [String]] {
        try store.unnamedRecordKeys()
    }

    public struct Plan {
        /// The key records are re-sealed under.
        public let activeKey: String
        /// The key that was active before, when this run made a new one.
        public let previousKey: String?
        /// Users whose records name another key.
        public let users: [String]
        public var resuming: Bool { previousKey == nil }
    }

    /// With `use`, makes that existing key (from `--prepare`) active and re-seals whatever
    /// is not under it. Without: resumes an unfinished rotation (records still under an
    /// inactive key), or makes a new key active when every record is under the active one.
    public func plan(use: String? = nil) throws -> Plan {
        let active = try ring.activeKey().id
        if let use {
            if use != active { try ring.activate(use) }
            let users = try census().filter { $0.key != use && $0.key != KeyRotation.unreadable }
                .flatMap(\.value).sorted()
            return Plan(activeKey: use, previousKey: use == active ? nil : active, users: users)
        }
        let stale = try census().filter { $0.key != active && $0.key != KeyRotation.unreadable }
            .flatMap(\.value).sorted()
        if !stale.isEmpty {
            return Plan(activeKey: active, previousKey: nil, users: stale)
        }
        return try startNew(excluding: [])
    }

    /// A new active key and every record but `excluding`'s to re-seal under it: what a run
    /// does after the only records left under older keys proved unable to be re-sealed
    /// (damaged, or an older copy put back), which would otherwise make every later run
    /// "finish" that rotation and never make a new key.
    public func startNew(excluding: Set<String>) throws -> Plan {
        let active = try ring.activeKey().id
        let new = try ring.createKey()
        return Plan(activeKey: new, previousKey: active, users: try store.enrolledUsers().filter { !excluding.contains($0) })
    }

    /// Re-seals one user's record under the active key, under the lock; false when it was
    /// already there (another run, or the user's own login, did it).
    public func reseal(_ user: String, activeKey: String) throws -> Bool {
        try store.withLock(user) {
            guard try store.sealedKeyID(user) != activeKey,
                  let record = try store.loadRecord(user) else { return false }
            try store.saveRecord(record, for: user)
            return true
        }
    }

    /// Deletes every key file no record names, except the active key. Returns the ids
    /// removed and, for each kept key, the users (or, for records without a known name,
    /// the file bases) whose records still name it. Removes nothing, and throws, while any
    /// record's header cannot be read: which key it needs is then unknown, and deleting
    /// that key would lose the record for good.
    public func retire() throws -> (removed: [String], kept: [String: [String]]) {
        // No writer between taking a key and its record being in place while the records
        // are counted and keys deleted (file store; a database's writers commit on their
        // own connection, and a fleet's other hosts are out of reach: see the runbook).
        try ring.retiring { try retireLocked() }
    }

    private func retireLocked() throws -> (removed: [String], kept: [String: [String]]) {
        let active = try ring.activeKey().id
        var needed = try census()
        for (id, files) in try unnamedCensus() { needed[id, default: []] += files }
        if let unknown = needed[KeyRotation.unreadable], !unknown.isEmpty {
            throw StoreError.refused("no old key removed: \(unknown.count) record(s) cannot be read (\(unknown.prefix(5).joined(separator: ", "))\(unknown.count > 5 ? ", …" : "")), so the key they need is unknown; `twostep admin show USER` says why")
        }
        var removed: [String] = []
        var kept: [String: [String]] = [:]
        for id in try ring.keyIDs() where id != active {
            if let users = needed[id], !users.isEmpty {
                kept[id] = users
            } else {
                try ring.removeKey(id: id)
                removed.append(id)
            }
        }
        return (removed.sorted(), kept)
    }
}

extension SealedRecordAccess {
    /// The key id a user's sealed record names, without opening it; nil when not enrolled.
    public func sealedKeyID(_ user: String) throws -> String? {
        guard let sealed = try sealedRecord(user) else { return nil }
        return try SealedRecord.keyID(of: sealed, path: user)
    }
}

extension KeyRing {
    /// Deletes `<id>.key`; never the active key.
    public func removeKey(id: String) throws {
        guard id != (try activeKey().id) else { throw StoreError.badKey("refusing to remove the active key \(id)") }
        let dirfd = try Files.openPrivateDirectory(keyDir)
        defer { close(dirfd) }
        try Files.remove(dirfd: dirfd, dirPath: keyDir, name: id + ".key")
    }
}
