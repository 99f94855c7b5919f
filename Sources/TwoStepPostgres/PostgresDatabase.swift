// SPDX-License-Identifier: Apache-2.0
import Glibc
import TwoStepCrypto
import TwoStepStore
import TwoStepSystem

/// The process's connection to the fleet's database: opened on first use (or ahead of a
/// login by a socket worker), kept open, and made again when it breaks. Statements outside
/// a transaction are retried a bounded number of times on a lost connection or a
/// serialization failure; inside a transaction nothing is retried (the caller's
/// transaction is gone), so the login fails closed.
public final class PostgresDatabase {
    public let conninfo: String
    public let passwordFile: String?
    /// Attempts per statement (or per lock) before giving up.
    public static let attempts = 3
    /// No attempt starts after this many seconds (within the module's default timeout= of 30).
    public static let retryBudgetSeconds: Int64 = 8
    /// Per-statement and per-lock wait on the server; libpq's connect_timeout and
    /// tcp_user_timeout bound the client side.
    public static let statementTimeout = "5s"
    static let connectSettings = [("connect_timeout", "2"), ("tcp_user_timeout", "5000"),
                                  ("application_name", "twostep"), ("client_encoding", "UTF8")]

    private var connection: PGConnection?
    /// The process that opened `connection`: a forked child never uses (or closes) it.
    private var owner: pid_t = 0
    private var pendingAudit: [(AuditEvent, Int64)] = []
    /// Hold mirrored audit rows until `flushAudit()` (a login: after its verdict is sent).
    public var deferAudit = false

    public init(conninfo: String, passwordFile: String?) {
        self.conninfo = conninfo
        self.passwordFile = passwordFile
    }

    private(set) static var shared: [String: PostgresDatabase] = [:]

    /// One database object per connection string in a process, so a socket worker's
    /// connection outlives the stores made for each request.
    public static func shared(for config: Config) throws -> PostgresDatabase {
        guard let conninfo = config.database else {
            throw StoreError.config(path: config.path, line: 0, message: "store = postgresql needs `database = URI`")
        }
        let key = conninfo + "\u{0}" + (config.databasePasswordFile ?? "")
        if let db = shared[key] { return db }
        let db = PostgresDatabase(conninfo: conninfo, passwordFile: config.databasePasswordFile)
        shared[key] = db
        return db
    }

    // MARK: connection

    /// The open connection, made now if there is none. `checkSchema: false` is for
    /// `admin db init|migrate`, which create the schema.
    public func connected(checkSchema: Bool = true) throws -> PGConnection {
        if let c = connection, owner == getpid(), c.isOpen { return c }
        drop()
        var password = try readPassword()
        defer { if password != nil { Crypto.wipe(&password!) } }
        let c = try PGConnection(conninfo: conninfo, password: password, settings: Self.connectSettings)
        // Server-side bounds for this session, then the schema this binary was built for.
        try c.exec("SELECT set_config('statement_timeout', $1, false), set_config('lock_timeout', $1, false)",
                   [.text(Self.statementTimeout)], operation: "session settings")
        if checkSchema {
            let version = try PostgresSchema.currentVersion(c)
            guard version == Int64(PostgresSchema.version) else {
                throw DatabaseError(operation: "schema check", message: version < PostgresSchema.version
                    ? "schema version \(version), this twostep needs \(PostgresSchema.version): run `twostep admin db migrate`"
                    : "schema version \(version) is newer than this twostep (\(PostgresSchema.version)): upgrade twostep")
            }
        }
        connection = c
        owner = getpid()
        return c
    }

    /// Forgets the connection; one inherited over fork is left alone (closing it would
    /// end the parent's session).
    func drop() {
        if let c = connection {
            if owner == getpid() {
                c.close()
            } else {
                // Never released, so its deinit (PQfinish, a Terminate message on the
                // parent's socket) never runs in this process.
                _ = Unmanaged.passRetained(c)
            }
        }
        connection = nil
    }

    /// Inside a transaction opened by `withTransaction` on this connection.
    public var inTransaction: Bool { connection.map { owner == getpid() && $0.inTransaction } ?? false }

    /// Writes made by a transaction's body, sent with its COMMIT (`write`).
    private var pendingWrites: [PGStatement] = []
    /// A `withTransaction` body is running: `write` queues instead of sending.
    private var queueingWrites = false

    /// Runs `body` on the connection. Outside a transaction, a lost connection or a
    /// serialization failure is retried on a fresh connection (bounded); inside one it is not,
    /// and the body's queued writes are sent first, so it reads what it wrote.
    @discardableResult
    public func run<T>(_ body: (PGConnection) throws -> T) throws -> T {
        if inTransaction {
            let c = connection!
            try sendQueuedWrites(c)
            return try body(c)
        }
        if queueingWrites {
            // A transaction's body whose connection is gone: never carry on outside it.
            throw DatabaseError(operation: "transaction", message: "the connection was lost inside the transaction",
                                connectionLost: true)
        }
        let deadline = Sys.monotonicSeconds() + Self.retryBudgetSeconds
        var attempt = 1
        while true {
            do {
                return try body(try connected())
            } catch let e as DatabaseError where e.retryable && attempt < Self.attempts && Sys.monotonicSeconds() < deadline {
                if e.connectionLost || !(connection?.isOpen ?? false) { drop() }
                if connection?.inTransaction == true { _ = try? connection?.exec("ROLLBACK") }
                usleep(UInt32(50_000 * attempt))
                attempt += 1
            }
        }
    }

    /// A write that changes no result the caller reads: inside a `withTransaction` body it
    /// is queued and sent in one pipeline with the COMMIT (or before the body's next
    /// statement), so it costs the transaction no round trip of its own; anywhere else it
    /// runs at once, like `run`.
    public func write(_ statement: PGStatement) throws {
        if queueingWrites {
            pendingWrites.append(statement)
        } else {
            try run { c in try c.exec(statement) }
        }
    }

    private func sendQueuedWrites(_ c: PGConnection) throws {
        guard !pendingWrites.isEmpty else { return }
        let writes = pendingWrites
        pendingWrites = []
        try c.pipeline(writes)
    }

    /// BEGIN and `first` (the statement that takes the row lock) in one round trip (libpq's
    /// pipeline mode), then `lock` on its result (which may take more); `body`; its queued
    /// writes and COMMIT in one round trip. Beginning and locking are retried like `run`;
    /// once `body` has started, any failure rolls back and throws, and a COMMIT that did not
    /// report COMMIT is a failure: nothing the body decided counts until the server said so.
    public func withTransaction<L, R>(first: PGStatement, lock: (PGConnection, PGResult) throws -> L,
                                      _ body: (L) throws -> R) throws -> R {
        let locked: L = try run { c in
            do {
                let results = try c.pipeline([PGStatement("BEGIN"), first])
                return try lock(c, results[1])
            } catch {
                if c.inTransaction { _ = try? c.exec("ROLLBACK") }
                throw error
            }
        }
        let c = connection!
        let result: R
        pendingWrites = []
        queueingWrites = true
        do {
            defer { queueingWrites = false }
            result = try body(locked)
            let writes = pendingWrites
            pendingWrites = []
            let committed = try c.pipeline(writes + [PGStatement("COMMIT")])
            guard committed.last?.commandStatus == "COMMIT" else {
                throw DatabaseError(operation: "COMMIT", message: "the transaction was rolled back")
            }
        } catch {
            pendingWrites = []
            if c.inTransaction { _ = try? c.exec("ROLLBACK") }
            if !deferAudit { flushAudit() }
            throw error
        }
        if !deferAudit { flushAudit() }
        return result
    }

    /// The password from `database_password_file`: root's (our euid's) own file, not
    /// readable by group or others, not a symlink, the password alone on one line.
    func readPassword() throws -> [UInt8]? {
        guard let path = passwordFile else { return nil }
        guard path.hasPrefix("/"), let slash = path.lastIndex(of: "/") else {
            throw StoreError.unsafe(path: path, reason: "database_password_file must be an absolute path")
        }
        let dir = slash == path.startIndex ? "/" : String(path[..<slash])
        let name = String(path[path.index(after: slash)...])
        let dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dirfd >= 0 else { throw StoreError.io(path: dir, operation: "open directory", errno: errno) }
        defer { close(dirfd) }
        guard var bytes = try Files.readPrivate(dirfd: dirfd, dirPath: dir, name: name, limit: 1024) else {
            throw StoreError.io(path: path, operation: "open", errno: ENOENT)
        }
        defer { Crypto.wipe(&bytes) }
        var end = bytes.count
        if end > 0 && bytes[end - 1] == 10 { end -= 1 }
        if end > 0 && bytes[end - 1] == 13 { end -= 1 }
        let password = Array(bytes[..<end])
        guard !password.isEmpty, !password.contains(10), !password.contains(0) else {
            throw StoreError.damaged(path: path, reason: "must hold the password alone on one line")
        }
        return password
    }

    // MARK: audit mirror

    /// Mirrors an audit event into `twostep_audit`. Best effort: inside a transaction it
    /// waits for the end of it (so it never aborts a login's transaction), and for a login
    /// until its verdict is sent (`deferAudit`: the row costs the login nothing); it never
    /// connects or retries, statement_timeout bounds it, and a failure goes to syslog. The
    /// local log and syslog, written first, remain the record.
    func mirror(_ event: AuditEvent, time: Int64) {
        if inTransaction || deferAudit {
            pendingAudit.append((event, time))
        } else {
            insertAudit(event, time: time)
        }
    }

    public func flushAudit() {
        let events = pendingAudit
        pendingAudit = []
        for (e, t) in events { insertAudit(e, time: t) }
    }

    private func insertAudit(_ e: AuditEvent, time: Int64) {
        guard let c = connection, owner == getpid(), c.isOpen else {
            AuditLog.syslogLine(LOG_ERR, "audit mirror: no database connection; event kept in the local log only")
            return
        }
        do {
            // A prepared statement of this connection (`pipeline`), like a login's.
            try c.pipeline([PGStatement("""
                INSERT INTO twostep_audit (time, host, event, user_name, service, result, detail, rhost)
                VALUES (to_timestamp($1), $2, $3, $4, $5, $6, $7, $8)
                """, [.int(time), .text(Sys.hostName() ?? "unknown"), .text(e.event), .text(e.user), .text(e.service), .text(e.result),
                      e.detail.map(PGValue.text) ?? .null, e.rhost.map(PGValue.text) ?? .null],
                operation: "audit mirror")])
        } catch {
            AuditLog.syslogLine(LOG_ERR, "audit mirror: \(error)")
        }
    }
}


