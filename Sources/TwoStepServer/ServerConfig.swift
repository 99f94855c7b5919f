// SPDX-License-Identifier: Apache-2.0
import Glibc
import TwoStepStore
import TwoStepSystem

/// The running helper's config file, read again when it changes. A worker asks for it at
/// each connection (one stat): an edit (`require = all`, a new `rate_limit`) applies from
/// the next login on, as it does for a helper spawned per login, with no restart. A file
/// that cannot be read or parsed refuses the connection (fail closed, as a spawned helper
/// does), and is tried again at the next one: a passing failure (EMFILE, ENOMEM) does not
/// outlast it. The reason goes to syslog once for each version of the file in each worker.
/// `socket`, `max_connections` and the `state_dir` of the connection slots belong to the
/// server as it started: they apply at a restart.
final class ServerConfig {
    let path: String
    /// The config the server started with (the parent's listening socket and worker count).
    let started: Config
    private var current: Config?
    private var stamp: FileStamp?
    /// The file as it was when its failure was logged (`.some(nil)`: a file stat could not see).
    private var reported: FileStamp??

    /// Reads the file for the start; throws what a broken file says.
    init(path: String) throws {
        self.path = path
        // The stamp is taken before the read: an edit during it is seen at the next call.
        stamp = FileStamp(path: path)
        started = try Config.load(path: path)
        current = started
    }

    /// The config as the file is now; nil when it cannot be used.
    func now() -> Config? {
        let seen = FileStamp(path: path)
        if let seen, seen == stamp, let current { return current }
        do {
            current = try Config.load(path: path)
            stamp = seen
            reported = nil
        } catch {
            current = nil
            stamp = nil   // tried again at the next connection
            if reported != .some(seen) {
                reported = .some(seen)
                AuditLog.syslogLine(LOG_ERR, "helper: \(error); refusing connections until it can be read")
            }
        }
        return current
    }
}
