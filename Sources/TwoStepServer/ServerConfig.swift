// SPDX-License-Identifier: Apache-2.0
import Glibc
import TwoStepStore
import TwoStepSystem

/// The running helper's config file, read again when it changes. A worker asks for it at
/// each connection (one stat): an edit (`require = all`, a new `rate_limit`) applies from
/// the next login on, as it does for a helper spawned per login, with no restart. A file
/// that can no longer be read or parsed refuses every connection (fail closed, as a spawned
/// helper does) until it is mended; the reason goes to syslog once per change of the file.
/// `socket` and `max_connections` belong to the server's parent: they apply at a restart.
final class ServerConfig {
    let path: String
    /// The config the server started with (the parent's listening socket and worker count).
    let started: Config
    private var current: Config?
    private var stamp: FileStamp?

    init(path: String, started: Config) {
        self.path = path
        self.started = started
        current = started
        stamp = FileStamp(path: path)
    }

    /// The config as the file is now; nil when it cannot be used.
    func now() -> Config? {
        let seen = FileStamp(path: path)
        if let seen, seen == stamp { return current }
        // The stamp is taken before the read: a change during it is seen at the next call.
        stamp = seen
        do {
            current = try Config.load(path: path)
        } catch {
            if current != nil {
                AuditLog.syslogLine(LOG_ERR, "helper: \(error); refusing every connection until it is mended")
            }
            current = nil
        }
        return current
    }
}
