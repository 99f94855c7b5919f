// SPDX-License-Identifier: Apache-2.0
/// The tables behind `store = postgresql`, created and upgraded by
/// `twostep admin db init|migrate` (docs/ARCHITECTURE.md, "Many hosts: the schema").
/// Each migration runs once, in order, in one transaction with its row in `twostep_schema`;
/// an advisory lock keeps two hosts from migrating at once.
public enum PostgresSchema {
    /// The version this twostep reads and writes; connections refuse any other.
    public static let version = 1

    static let migrations: [(version: Int, statements: [String])] = [
        (1, [
            """
            CREATE TABLE twostep_users (
                name         text PRIMARY KEY CHECK (octet_length(name) BETWEEN 1 AND 32),
                record       bytea,
                key_id       text,
                state        bytea,
                last_step    bigint NOT NULL DEFAULT -1,
                failures     integer NOT NULL DEFAULT 0,
                locked_until bigint NOT NULL DEFAULT 0,
                updated      timestamptz NOT NULL DEFAULT now())
            """,
            """
            CREATE TABLE twostep_audit (
                id        bigserial PRIMARY KEY,
                time      timestamptz NOT NULL,
                host      text NOT NULL,
                event     text NOT NULL,
                user_name text NOT NULL,
                service   text NOT NULL,
                result    text NOT NULL,
                detail    text,
                rhost     text)
            """,
            "CREATE INDEX twostep_audit_user_time ON twostep_audit (user_name, time)",
        ]),
    ]

    /// Arbitrary but fixed: the advisory lock every migrating host takes.
    static let advisoryLock: Int64 = 0x7477_6f73_7465_70  // "twostep"

    /// The schema version in the database; 0 when there is none yet.
    public static func currentVersion(_ c: PGConnection) throws -> Int64 {
        let r = try c.exec("SELECT to_regclass('twostep_schema') IS NOT NULL", operation: "schema check")
        guard r.int(0, 0) == 1 else { return 0 }
        return try c.exec("SELECT coalesce(max(version), 0)::bigint FROM twostep_schema", operation: "schema check").int(0, 0) ?? 0
    }

    /// Applies every migration newer than the database's version. Returns (before, after).
    @discardableResult
    public static func migrate(_ db: PostgresDatabase) throws -> (from: Int64, to: Int64) {
        let c = try db.connected(checkSchema: false)
        try c.exec("BEGIN")
        do {
            try c.exec("SELECT pg_advisory_xact_lock($1)", [.int(advisoryLock)], operation: "migration lock")
            try c.exec("""
                CREATE TABLE IF NOT EXISTS twostep_schema (
                    version integer PRIMARY KEY,
                    applied timestamptz NOT NULL DEFAULT now())
                """, operation: "create twostep_schema")
            let before = try currentVersion(c)
            guard before <= Int64(version) else {
                throw DatabaseError(operation: "migrate",
                                    message: "schema version \(before) is newer than this twostep (\(version))")
            }
            for m in migrations where Int64(m.version) > before {
                for sql in m.statements { try c.exec(sql, operation: "migration \(m.version)") }
                try c.exec("INSERT INTO twostep_schema (version) VALUES ($1::integer)", [.int(Int64(m.version))],
                           operation: "migration \(m.version)")
            }
            try c.exec("COMMIT")
            return (before, Int64(version))
        } catch {
            _ = try? c.exec("ROLLBACK")
            throw error
        }
    }
}
