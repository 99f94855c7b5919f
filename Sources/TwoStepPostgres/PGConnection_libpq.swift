// SPDX-License-Identifier: Apache-2.0
// The one place twostep talks to libpq. A class owns each PGconn and PGresult and frees
// it in deinit; every query is parameterised (PQexecParams, bytea sent and read in binary);
// every failure is a DatabaseError carrying SQLSTATE and PQerrorMessage, which libpq
// never fills with the password.
import CLibPQ
import Glibc

/// A failed database call, with what an administrator needs to act on it.
public struct DatabaseError: Error, CustomStringConvertible {
    public let operation: String
    /// The server's SQLSTATE, when the server answered.
    public let sqlState: String?
    public let message: String
    /// The connection is unusable afterwards (never made, dropped, server shut down).
    public let connectionLost: Bool

    public init(operation: String, sqlState: String? = nil, message: String, connectionLost: Bool = false) {
        self.operation = operation
        self.sqlState = sqlState
        self.message = message
        self.connectionLost = connectionLost
    }

    /// Worth another attempt on a fresh transaction: a lost connection, a serialization
    /// failure or deadlock (class 40), a server going away (08, 57P0x).
    public var retryable: Bool {
        if connectionLost { return true }
        guard let s = sqlState else { return false }
        return s.hasPrefix("40") || s.hasPrefix("08") || s.hasPrefix("57P0")
    }

    public var description: String {
        "database: \(operation) failed" + (sqlState.map { " (\($0))" } ?? "") + ": \(message)"
    }
}

/// A query parameter. Text and integers go as text with their type; bytes as binary bytea.
public enum PGValue {
    case text(String)
    case int(Int64)
    case bytes([UInt8])
    case null
}

/// One result set, read in binary: bytea as raw bytes, integers big-endian.
public final class PGResult {
    fileprivate let res: OpaquePointer

    fileprivate init(_ res: OpaquePointer) { self.res = res }
    deinit { PQclear(res) }

    public var rows: Int { Int(PQntuples(res)) }
    /// The command tag ("COMMIT", "UPDATE 1", ...).
    public var commandStatus: String { String(cString: PQcmdStatus(res)) }
    /// Rows touched by INSERT/UPDATE/DELETE.
    public var affectedRows: Int { Int(String(cString: PQcmdTuples(res))) ?? 0 }

    public func isNull(_ row: Int, _ col: Int) -> Bool { PQgetisnull(res, Int32(row), Int32(col)) != 0 }

    public func bytes(_ row: Int, _ col: Int) -> [UInt8]? {
        guard !isNull(row, col), let p = PQgetvalue(res, Int32(row), Int32(col)) else { return nil }
        let n = Int(PQgetlength(res, Int32(row), Int32(col)))
        return p.withMemoryRebound(to: UInt8.self, capacity: n) { Array(UnsafeBufferPointer(start: $0, count: n)) }
    }

    public func text(_ row: Int, _ col: Int) -> String? {
        bytes(row, col).map { String(decoding: $0, as: UTF8.self) }
    }

    /// int2, int4 or int8 (binary: big-endian of 2, 4 or 8 bytes); bool as 0/1.
    public func int(_ row: Int, _ col: Int) -> Int64? {
        guard let b = bytes(row, col), [1, 2, 4, 8].contains(b.count) else { return nil }
        var v: Int64 = b[0] & 0x80 != 0 && b.count > 1 ? -1 : 0
        for byte in b { v = (v << 8) | Int64(byte) }
        return v
    }
}

/// One connection to the server. Not shared between processes (never used across fork).
public final class PGConnection {
    private var conn: OpaquePointer?
    /// Statements prepared on this connection by `pipeline`: cache key → name.
    private var prepared: [String: String] = [:]
    /// Statement names given so far on this connection; a name is never given twice.
    private var namesGiven = 0

    /// Connects with `conninfo` (a libpq URI or key=value string). `settings` come first
    /// so the connection string can override them; the password comes last so nothing
    /// overrides it, and its copy is wiped as soon as libpq has it.
    public init(conninfo: String, password: [UInt8]?, settings: [(String, String)]) throws {
        var pairs = settings
        pairs.append(("dbname", conninfo))
        var keywords: [UnsafeMutablePointer<CChar>?] = pairs.map { strdup($0.0) }
        var values: [UnsafeMutablePointer<CChar>?] = pairs.map { strdup($0.1) }
        var secret: UnsafeMutablePointer<CChar>? = nil
        if let password {
            secret = UnsafeMutablePointer<CChar>.allocate(capacity: password.count + 1)
            _ = password.withUnsafeBytes { p in
                memcpy(secret!, p.baseAddress!, password.count)
            }
            secret![password.count] = 0
            keywords.append(strdup("password"))
            values.append(secret)
        }
        keywords.append(nil)
        values.append(nil)
        defer {
            if let secret, let n = password?.count {
                memset(secret, 0, n)
                secret.deallocate()
            }
            for k in keywords { free(k) }
            for v in values.prefix(pairs.count) { free(v) }
        }
        let c = keywords.withUnsafeBufferPointer { kp in
            values.withUnsafeBufferPointer { vp in
                kp.withMemoryRebound(to: UnsafePointer<CChar>?.self) { k in
                    vp.withMemoryRebound(to: UnsafePointer<CChar>?.self) { v in
                        PQconnectdbParams(k.baseAddress, v.baseAddress, 1)
                    }
                }
            }
        }
        guard let c else { throw DatabaseError(operation: "connect", message: "out of memory", connectionLost: true) }
        conn = c
        guard PQstatus(c) == CONNECTION_OK else {
            let message = Self.errorText(c)
            PQfinish(c)
            conn = nil
            throw DatabaseError(operation: "connect", message: message, connectionLost: true)
        }
        // Server notices ("already exists, skipping") are not ours to print on stderr.
        _ = PQsetNoticeProcessor(c, { _, _ in }, nil)
    }

    deinit { close() }

    public func close() {
        if let c = conn { PQfinish(c) }
        conn = nil
    }

    /// Whether the connection still looks usable (libpq's view; a dead peer shows at the next query).
    public var isOpen: Bool {
        guard let c = conn else { return false }
        return PQstatus(c) == CONNECTION_OK
    }

    /// Whether the session is inside a transaction block.
    public var inTransaction: Bool {
        guard let c = conn else { return false }
        let s = PQtransactionStatus(c)
        return s == PQTRANS_INTRANS || s == PQTRANS_INERROR
    }

    /// Whether TLS protects this connection.
    public var usesTLS: Bool {
        guard let c = conn else { return false }
        return PQsslInUse(c) != 0
    }

    /// Whether the connection goes through a Unix socket (libpq names its directory as the
    /// host): no network path to protect.
    public var viaUnixSocket: Bool {
        guard let c = conn, let host = PQhost(c) else { return false }
        return String(cString: host).hasPrefix("/")
    }

    /// The `sslmode` this connection was made with (libpq's default is `prefer`): only
    /// `verify-full` checks the server's certificate and its name.
    public var sslMode: String {
        guard let c = conn, let options = PQconninfo(c) else { return "prefer" }
        defer { PQconninfoFree(options) }
        var i = 0
        while let keyword = options[i].keyword {
            if String(cString: keyword) == "sslmode" {
                return options[i].val.map { String(cString: $0) } ?? "prefer"
            }
            i += 1
        }
        return "prefer"
    }

    static func errorText(_ c: OpaquePointer) -> String {
        var s = String(cString: PQerrorMessage(c))
        while s.last == "\n" || s.last == " " { s.removeLast() }
        return s.split(separator: "\n").joined(separator: "; ")
    }

    /// Runs one statement with parameters `$1…$n`; the result comes back in binary.
    @discardableResult
    public func exec(_ sql: String, _ params: [PGValue] = [], operation: String? = nil) throws -> PGResult {
        try exec(PGStatement(sql, params, operation: operation))
    }

    /// The same for a statement already made (one a transaction's body queued: `write`).
    @discardableResult
    public func exec(_ statement: PGStatement) throws -> PGResult {
        guard let c = conn else {
            throw DatabaseError(operation: statement.operation, message: "not connected", connectionLost: true)
        }
        let r = Self.withParameters(statement.params) { n, types, values, lengths, formats in
            PQexecParams(c, statement.sql, n, types, values, lengths, formats, 1)
        }
        return try Self.checked(r, c, statement.operation)
    }

    /// Runs `statements` in libpq's pipeline mode: all sent, then one Sync, so the server
    /// answers them in one round trip. They run in order; the first that fails is thrown and
    /// the server skips the rest (inside a transaction block, which a Sync does not end, the
    /// transaction is then aborted and the caller rolls it back). Any other trouble (a send
    /// that fails, an answer missing, the connection dropped mid-pipeline) closes the
    /// connection, so it is made afresh rather than reused in a half state.
    ///
    /// Each statement is a named prepared statement of this connection, prepared in the same
    /// pipeline the first time it runs (no round trip of its own), so the server parses and
    /// plans it once per connection, not per login.
    @discardableResult
    public func pipeline(_ statements: [PGStatement]) throws -> [PGResult] {
        guard let first = statements.first else { return [] }
        guard let c = conn else {
            throw DatabaseError(operation: first.operation, message: "not connected", connectionLost: true)
        }
        func broken(_ operation: String, _ error: DatabaseError? = nil) -> DatabaseError {
            let e = DatabaseError(operation: error?.operation ?? operation, sqlState: error?.sqlState,
                                  message: error?.message ?? Self.errorText(c), connectionLost: true)
            close()
            return e
        }
        guard PQenterPipelineMode(c) == 1 else { throw broken("enter pipeline mode") }
        // The statements prepared by this pipeline: (cache key, name), nil where already prepared.
        var preparing: [(key: String, name: String)?] = []
        for s in statements {
            let key = s.cacheKey
            let known = prepared[key]
            if known == nil { namesGiven += 1 }
            let name = known ?? "twostep_\(namesGiven)"
            let sent = Self.withParameters(s.params) { n, types, values, lengths, formats -> Bool in
                if known == nil, PQsendPrepare(c, name, s.sql, n, types) != 1 { return false }
                return PQsendQueryPrepared(c, name, n, values, lengths, formats, 1) == 1
            }
            guard sent else { throw broken(s.operation) }
            preparing.append(known == nil ? (key, name) : nil)
        }
        guard PQpipelineSync(c) == 1 else { throw broken("pipeline sync") }
        // Each result (a Prepare's, a statement's) is followed by a NULL; after the last, the Sync's.
        func next(_ operation: String, _ failure: DatabaseError?) throws -> OpaquePointer {
            guard let r = PQgetResult(c) else { throw broken(operation, failure) }
            var extra = 0
            while let more = PQgetResult(c) {
                PQclear(more)
                extra += 1
                guard extra < 4 else { PQclear(r); throw broken(operation, failure) }
            }
            return r
        }
        var results: [PGResult] = []
        var failure: DatabaseError?
        for (s, prepare) in zip(statements, preparing) {
            for step in (prepare == nil ? [false] : [true, false]) {
                let r = try next(s.operation, failure)
                guard failure == nil else { PQclear(r); continue }   // PGRES_PIPELINE_ABORTED: skipped
                do {
                    let result = try Self.checked(r, c, s.operation)
                    if step, let prepare { prepared[prepare.key] = prepare.name } else if !step { results.append(result) }
                } catch let e as DatabaseError { failure = e }
            }
        }
        guard let sync = PQgetResult(c) else { throw broken("pipeline sync", failure) }
        let synced = PQresultStatus(sync) == PGRES_PIPELINE_SYNC
        PQclear(sync)
        guard synced, PQexitPipelineMode(c) == 1, PQstatus(c) == CONNECTION_OK else {
            throw broken("pipeline sync", failure)
        }
        if let failure {
            // Whether the server kept a statement prepared in a failed pipeline is not ours to
            // guess: forget them, and never use their names again.
            for case let p? in preparing where prepared[p.key] == p.name { prepared[p.key] = nil }
            // A prepared statement the server no longer has (26000), or whose plan a schema
            // change invalidated (0A000, "cached plan must not change result type"): start
            // afresh on a new connection rather than fail every login on this one.
            if failure.sqlState == "26000" || failure.sqlState == "0A000" { throw broken(failure.operation, failure) }
            throw failure
        }
        return results
    }

    /// Hands libpq the parameters: text and integers as text with their type, bytes as
    /// binary bytea; the buffers live for the call only.
    private static func withParameters<T>(_ params: [PGValue], _ body: (Int32, UnsafePointer<Oid>,
        UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>, UnsafePointer<Int32>) -> T) -> T {
        var buffers: [UnsafeMutablePointer<CChar>?] = []
        var lengths: [Int32] = []
        var formats: [Int32] = []
        var types: [Oid] = []
        defer { for b in buffers { free(b) } }
        for p in params {
            switch p {
            case .text(let s):
                buffers.append(strdup(s)); lengths.append(0); formats.append(0); types.append(25)
            case .int(let n):
                buffers.append(strdup(String(n))); lengths.append(0); formats.append(0); types.append(20)
            case .bytes(let b):
                let buf = malloc(max(b.count, 1))!.assumingMemoryBound(to: CChar.self)
                b.withUnsafeBytes { if b.count > 0 { memcpy(buf, $0.baseAddress!, b.count) } }
                buffers.append(buf); lengths.append(Int32(b.count)); formats.append(1); types.append(17)
            case .null:
                buffers.append(nil); lengths.append(0); formats.append(0); types.append(0)
            }
        }
        return buffers.withUnsafeBufferPointer { bp in
            bp.withMemoryRebound(to: UnsafePointer<CChar>?.self) { values in
                body(Int32(params.count), types, values.baseAddress, lengths, formats)
            }
        }
    }

    /// `r` as a result, or the DatabaseError it (or its absence) stands for.
    private static func checked(_ r: OpaquePointer?, _ c: OpaquePointer, _ op: String) throws -> PGResult {
        guard let r else {
            throw DatabaseError(operation: op, message: errorText(c), connectionLost: PQstatus(c) != CONNECTION_OK)
        }
        let result = PGResult(r)
        let status = PQresultStatus(r)
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else {
            let state = PQresultErrorField(r, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            var message = String(cString: PQresultErrorMessage(r))
            while message.last == "\n" { message.removeLast() }
            if message.isEmpty { message = errorText(c) }
            throw DatabaseError(operation: op, sqlState: state, message: message,
                                connectionLost: PQstatus(c) != CONNECTION_OK)
        }
        return result
    }
}

/// One statement with its parameters, for `exec` and `pipeline`.
public struct PGStatement {
    public let sql: String
    public let params: [PGValue]
    /// How errors name it (default: the statement's first word).
    public let operation: String

    public init(_ sql: String, _ params: [PGValue] = [], operation: String? = nil) {
        self.sql = sql
        self.params = params
        self.operation = operation ?? String(sql.prefix(while: { $0 != " " }))
    }

    /// A prepared statement fits the SQL and its parameters' types (a NULL has none).
    var cacheKey: String {
        params.map { p -> String in
            switch p {
            case .text: return "t"
            case .int: return "i"
            case .bytes: return "b"
            case .null: return "n"
            }
        }.joined() + ":" + sql
    }
}
