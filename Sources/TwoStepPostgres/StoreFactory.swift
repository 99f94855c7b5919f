// SPDX-License-Identifier: Apache-2.0
import TwoStepStore

/// The one place a program turns `store =` into a store: the helper (spawned and socket
/// workers), self-service and every CLI command come through here, so nothing falls back
/// to local files when the config names a database.
public enum UserStores {
    /// `login: true` (the helper verifying a login): audit rows for the database wait
    /// for `finish()`, which the helper calls once the verdict is sent.
    public static func open(_ config: Config, login: Bool = false) throws -> UserStore & SealedRecordAccess {
        switch config.store {
        case .files: return try FileUserStore(config: config)
        case .postgresql:
            let store = try PostgresUserStore(config: config)
            store.database.deferAudit = login
            return store
        }
    }

    /// After a login's verdict has been sent: writes what was held back (the audit mirror).
    public static func finish() {
        for db in PostgresDatabase.shared.values {
            db.deferAudit = false
            db.flushAudit()
        }
    }

    /// A socket worker connects while it waits for a caller, so a login pays no TCP/TLS
    /// handshake, and prepares the login's statements, so the server parses and plans none
    /// of them during the login. A failure here is not an error: the login reconnects, or
    /// fails closed.
    public static func prepare(_ config: Config) {
        guard config.store == .postgresql, let db = try? PostgresDatabase.shared(for: config) else { return }
        _ = try? PostgresUserStore.prepareLoginStatements(db)
    }
}
