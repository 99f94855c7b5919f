// SPDX-License-Identifier: Apache-2.0
import TwoStepCrypto
import TwoStepStore

/// `store = postgresql`: one row per user in `twostep_users`, shared by every host. The
/// row holds the same sealed bytes as `<user>.record` (the user name is in the sealed
/// record's associated data, so bytes copied into another user's row do not open) and the
/// state file's bytes, with the state's fields also in columns an operator can query.
///
/// `withLock` is one transaction: BEGIN and `SELECT … FOR UPDATE` of the user's row in one
/// round trip (made first if missing: INSERT … ON CONFLICT DO NOTHING waits for a
/// concurrent insert), the body, whose writes go with the COMMIT in one round trip. So a
/// code passes once across the fleet.
public final class PostgresUserStore: UserStore, SealedRecordAccess {
    public let database: PostgresDatabase
    let keys: KeyRing
    /// The row read FOR UPDATE by the open `withLock`, kept current by its writes.
    private var locked: (user: String, record: [UInt8]?, state: [UInt8]?)?
    /// The open `withLock` deleted its row: a later write there must insert it again.
    private var lockedRowRemoved = false
    /// The row just read outside a transaction, for the very next read of the same user
    /// only (a login's `hasRecord` then `loadState`: one round trip, not two). Any other
    /// call drops it; decisions are made on the row read again under the lock.
    private var snapshot: (user: String, row: (record: [UInt8]?, state: [UInt8]?)?)?

    public init(database: PostgresDatabase, keys: KeyRing) {
        self.database = database
        self.keys = keys
    }

    /// The process's shared database for `config`; audit events are mirrored into it.
    public convenience init(config: Config) throws {
        let db = try PostgresDatabase.shared(for: config)
        self.init(database: db, keys: try KeyRing(keyDir: config.keyDir))
        AuditLog.mirror = { [db] event, time in db.mirror(event, time: time) }
    }

    /// How errors name a row (where the file store names a path).
    func label(_ user: String) -> String { "database row twostep_users[\(user)]" }

    func checked(_ user: String) throws -> String {
        guard isValidUserName(user) else { throw StoreError.invalidUser(user) }
        return user
    }

    /// The user's sealed record and state bytes; nil when there is no row.
    func row(_ user: String) throws -> (record: [UInt8]?, state: [UInt8]?)? {
        let u = try checked(user)
        if let l = locked, l.user == u { return (l.record, l.state) }
        if let s = snapshot, s.user == u {
            snapshot = nil
            return s.row
        }
        let row: (record: [UInt8]?, state: [UInt8]?)? = try database.run { c in
            let r = try c.pipeline([Self.readRow(u)])[0]
            return r.rows == 0 ? nil : (r.bytes(0, 0), r.bytes(0, 1))
        }
        snapshot = locked == nil ? (u, row) : nil
        return row
    }

    public func sealedRecord(_ user: String) throws -> [UInt8]? {
        try row(user)?.record
    }

    public func loadRecord(_ user: String) throws -> UserRecord? {
        let r = try row(user)
        // A damaged state is refused where it is used (a login); here it only cannot vouch
        // for a generation (admin unlock must still read the record to repair it).
        let stateGeneration = (try? parseState(r?.state, user))?.recordGeneration ?? 0
        return try openRecord(r?.record, user, stateGeneration: stateGeneration)
    }

    /// Both from one read of the row (one round trip, whatever was read before).
    public func loadRecordAndState(_ user: String) throws -> (record: UserRecord?, state: UserState) {
        try reloadRecordAndState(user, opened: nil)
    }

    /// Under the lock, the row read FOR UPDATE; its record handed back unopened when its
    /// bytes are those `previous` was opened from (UserStore.reloadRecordAndState).
    public func reloadRecordAndState(_ user: String, opened previous: UserRecord?) throws
        -> (record: UserRecord?, state: UserState) {
        let r = try row(user)
        let state = try parseState(r?.state, user)
        if let sealed = r?.record, let last = lastOpened, let same = last.same(user, sealed, previous) {
            try notOlder(last.generation, than: state.recordGeneration, user)
            return (same, state)
        }
        return (try openRecord(r?.record, user, stateGeneration: state.recordGeneration), state)
    }

    private var lastOpened: LastOpened?

    /// As in the file store: the sealed record carries the generation it was written as, and
    /// the state (the same row) the newest generation written. An older record in the row
    /// is a restored copy (`UPDATE … SET record =` an old backup's bytes), which would
    /// bring spent backup and recovery codes, or an old secret, back: refused.
    private func openRecord(_ sealed: [UInt8]?, _ user: String, stateGeneration: UInt64) throws -> UserRecord? {
        guard let sealed else { return nil }
        var (plain, generation) = try SealedRecord.openWithGeneration(sealed, user: user, keys: keys, path: label(user))
        defer { Crypto.wipe(&plain) }
        try notOlder(generation, than: stateGeneration, user)
        let record = try UserRecord.parse(plain, path: label(user))
        lastOpened = LastOpened(user: user, sealed: sealed, generation: generation, record: record)
        return record
    }

    /// Generation 0 is a record the previous versions of this store wrote (they sealed
    /// every record as 0, beside a state that `admin migrate` may have given a higher
    /// one): it opens, so an upgrade, or an older host of a fleet writing meanwhile, locks
    /// nobody out. Such a record is not protected against being put back; every record
    /// written from this version on is.
    private func notOlder(_ generation: UInt64, than stateGeneration: UInt64, _ user: String) throws {
        guard generation == 0 || generation >= stateGeneration else {
            throw StoreError.restoredCopy(path: label(user), generation: generation, stateGeneration: stateGeneration)
        }
        if locked?.user == user { seen[user] = max(seen[user] ?? 0, generation) }
    }

    private func parseState(_ bytes: [UInt8]?, _ user: String) throws -> UserState {
        guard let bytes else { return UserState() }
        return try UserState.parse(bytes, path: label(user))
    }

    public func hasRecord(_ user: String) throws -> Bool {
        try sealedRecord(user) != nil
    }

    public func loadState(_ user: String) throws -> UserState {
        try parseState(try row(user)?.state, user)
    }

    /// Writes the record with the next generation, then the state naming it (in one
    /// transaction under `withLock`; outside one, a failure in between leaves a record
    /// newer than its state, which opens). A damaged state is not replaced (see the file
    /// store's saveRecord).
    public func saveRecord(_ record: UserRecord, for user: String) throws {
        let u = try checked(user)
        var plain = record.serialized()
        defer { Crypto.wipe(&plain) }
        var state: UserState
        do { state = try loadState(u) } catch StoreError.damaged(let path, let reason) {
            throw StoreError.damagedStateNeedsUnlock(path: path, reason: reason, user: u)
        }
        state.recordGeneration = try SealedRecord.next(after: max(state.recordGeneration, seen[u] ?? 0), path: label(u))
        try storeSealedRecord(try SealedRecord.seal(plain, user: u, key: try keys.activeKey(),
                                                    generation: state.recordGeneration), for: u)
        seen[u] = state.recordGeneration
        try saveState(state, for: u)
    }

    /// The newest record generation this store opened or wrote per user inside the current
    /// `withLock` (dropped when a lock is taken, as the file store drops what it saw before
    /// one): a state the caller read before the record was written, or a fresh one (`admin
    /// unlock` of a damaged state), never names an older one.
    private var seen: [String: UInt64] = [:]

    public func storeSealedRecord(_ sealed: [UInt8], for user: String) throws {
        snapshot = nil
        lastOpened = nil
        let u = try checked(user)
        let keyID = try SealedRecord.keyID(of: sealed, path: label(u))
        try database.write(Self.recordWrite(u, sealed, keyID: keyID, locked: holdsRow(u)))
        if locked?.user == u { locked?.record = sealed }
    }

    public func saveState(_ state: UserState, for user: String) throws {
        snapshot = nil
        let u = try checked(user)
        var state = state
        // Never lower the generation the row names: a caller's state may be fresh (an
        // import's, built from another module's file) or read before the record was
        // written. Under the lock the row's state is at hand (and kept current by writes).
        let stored = holdsRow(u) ? ((try? parseState(locked?.state, u))?.recordGeneration ?? 0) : 0
        state.recordGeneration = max(state.recordGeneration, seen[u] ?? 0, stored)
        try writeState(state, u)
    }

    private func writeState(_ state: UserState, _ u: String) throws {
        let bytes = state.serialized()
        try database.write(Self.stateWrite(u, bytes, state, locked: holdsRow(u)))
        if locked?.user == u { locked?.state = bytes }
    }

    public func storeCopy(_ sealed: [UInt8], state: UserState, for user: String) throws {
        let u = try checked(user)
        try storeSealedRecord(sealed, for: u)
        snapshot = nil
        try writeState(state, u)   // exactly this: not merged with what the row held
    }

    /// As in the file store: a row whose records had a generation stays, without its
    /// record, as a tombstone naming the generation after it (`enrolledUsers` and every
    /// count take rows with a record only).
    public func removeUser(_ user: String) throws {
        snapshot = nil
        let u = try checked(user)
        let sealedGeneration = ((try? sealedRecord(u)) ?? nil).flatMap { SealedRecord.openedGeneration(of: $0, user: u, keys: keys) } ?? 0
        let held = max((try? loadState(u))?.recordGeneration ?? 0, seen[u] ?? 0, sealedGeneration)
        seen[u] = nil
        guard held > 0 else {
            try database.write(PGStatement("DELETE FROM twostep_users WHERE name = $1", [.text(u)], operation: "remove user"))
            if locked?.user == u { locked?.record = nil; locked?.state = nil; lockedRowRemoved = true }
            return
        }
        try writeState(UserState.tombstone(after: held), u)
        try database.write(PGStatement("UPDATE twostep_users SET record = NULL, key_id = NULL, updated = now() WHERE name = $1",
                                       [.text(u)], operation: "remove user"))
        lastOpened = nil
        if locked?.user == u { locked?.record = nil }
    }

    /// The open `withLock` holds `u`'s row, which exists.
    private func holdsRow(_ u: String) -> Bool { locked?.user == u && !lockedRowRemoved }

    public func enrolledUsers() throws -> [String] {
        snapshot = nil
        return try database.run { c in
            let r = try c.exec("SELECT name FROM twostep_users WHERE record IS NOT NULL ORDER BY name", operation: "list users")
            return (0..<r.rows).compactMap { r.text($0, 0) }.filter(isValidUserName)
        }
    }

    public func withLock<R>(_ user: String, _ body: () throws -> R) throws -> R {
        snapshot = nil
        let u = try checked(user)
        if let l = locked {
            // Already inside this user's transaction (a helper that takes the lock itself).
            guard l.user == u else {
                throw DatabaseError(operation: "lock", message: "already holding \(l.user)'s row; refusing to lock \(u) too")
            }
            return try body()
        }
        let select = Self.lockRow(u)
        seen[u] = nil
        return try database.withTransaction(first: select, lock: { c, first -> (record: [UInt8]?, state: [UInt8]?) in
            var r = first
            if r.rows == 0 {
                r = try c.pipeline([PGStatement("INSERT INTO twostep_users (name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
                                                [.text(u)], operation: "create row"), select])[1]
            }
            guard r.rows == 1 else { throw DatabaseError(operation: "lock row", message: "row for \(u) vanished") }
            return (r.bytes(0, 0), r.bytes(0, 1))
        }) { row in
            locked = (u, row.record, row.state)
            lockedRowRemoved = false
            defer { locked = nil; lockedRowRemoved = false }
            return try body()
        }
    }

    // MARK: a login's statements (also prepared ahead of it by `prepareLoginStatements`)

    static func readRow(_ u: String) -> PGStatement {
        PGStatement("SELECT record, state FROM twostep_users WHERE name = $1", [.text(u)], operation: "read row")
    }

    static func lockRow(_ u: String) -> PGStatement {
        PGStatement("SELECT record, state FROM twostep_users WHERE name = $1 FOR UPDATE", [.text(u)], operation: "lock row")
    }

    /// Under this user's lock the row exists: a plain UPDATE (cheaper for the server than an
    /// INSERT that finds the conflict) is enough; elsewhere the row may have to be made.
    /// (A login writes the record too when it spends a backup or recovery code.)
    static func recordWrite(_ u: String, _ sealed: [UInt8], keyID: String, locked: Bool) -> PGStatement {
        PGStatement(locked
            ? "UPDATE twostep_users SET record = $2, key_id = $3, updated = now() WHERE name = $1"
            : """
              INSERT INTO twostep_users (name, record, key_id) VALUES ($1, $2, $3)
              ON CONFLICT (name) DO UPDATE SET record = EXCLUDED.record, key_id = EXCLUDED.key_id, updated = now()
              """, [.text(u), .bytes(sealed), .text(keyID)], operation: "write record")
    }

    /// The same for the state (its fields also in columns an operator can query).
    static func stateWrite(_ u: String, _ bytes: [UInt8], _ state: UserState, locked: Bool) -> PGStatement {
        PGStatement(locked
            ? """
              UPDATE twostep_users SET state = $2, last_step = $3, failures = $4, locked_until = $5, updated = now()
              WHERE name = $1
              """
            : """
              INSERT INTO twostep_users (name, state, last_step, failures, locked_until) VALUES ($1, $2, $3, $4, $5)
              ON CONFLICT (name) DO UPDATE SET state = EXCLUDED.state, last_step = EXCLUDED.last_step,
                  failures = EXCLUDED.failures, locked_until = EXCLUDED.locked_until, updated = now()
              """, [.text(u), .bytes(bytes), .int(state.lastStep), .int(Int64(state.failures.count)),
                    .int(state.lockedUntil)], operation: "write state")
    }

    /// Prepares a login's statements on the process's connection before a login comes (a
    /// socket worker waiting in accept): the read, and a transaction that locks and writes
    /// nothing (no row is named ""), so its COMMIT has nothing to flush.
    public static func prepareLoginStatements(_ db: PostgresDatabase) throws {
        try db.run { c in
            do {
                try c.pipeline([readRow(""), PGStatement("BEGIN"), lockRow(""),
                                stateWrite("", [], UserState(), locked: true), PGStatement("COMMIT")])
            } catch {
                if c.inTransaction { _ = try? c.exec("ROLLBACK") }
                throw error
            }
        }
    }
}
