// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Glibc
import TwoStepPostgres
import TwoStepService
import TwoStepStore
import TwoStepSystem

@main
struct Twostep: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "twostep",
        abstract: "Two-factor authentication (TOTP and backup codes) for Linux logins.",
        discussion: """
        Users enrol an authenticator app with `twostep enroll`; pam_twostep.so then asks for \
        a code at SSH, sudo, su or console login. Administrators manage the store with \
        `twostep admin`. `twostep try` runs a real PAM login to prove a stack works.
        """,
        version: "0.1.0",
        subcommands: [Enroll.self, Status.self, NewBackupCodes.self, QR.self, Disable.self, Devices.self, Email.self,
                      Admin.self, Try.self, Doctor.self])

    /// Secrets, codes and passwords pass through this process too: no core dumps, no
    /// ptrace by the same uid, private umask, before anything is parsed.
    static func main() {
        hardenProcess()
        // Arguments are read as UTF-8 with bad bytes replaced (U+FFFD), which would make
        // `x\xe9` and `x\xe8`, two accounts to NSS, one user name here: refuse instead.
        for i in 1..<Int(CommandLine.argc) {
            guard let arg = CommandLine.unsafeArgv[i], String(validatingCString: arg) == nil else { continue }
            writeStderr("twostep: argument \(i) is not valid UTF-8 (user names and other arguments must be)\n")
            Glibc.exit(64)
        }
        main(nil)
    }
}

/// --config, shared by every command that reads the store.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "The twostep config file.")
    var config: String = Config.defaultPath

    func load() throws -> Config {
        do { return try Config.load(path: config) } catch { throw CLIError("\(error)") }
    }
}

struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Config, store and audit log, opened once for a command that works on the store in
/// this process (root's admin commands, root's own self-service).
struct LocalStore {
    let config: Config
    let store: UserStore & SealedRecordAccess
    let audit: AuditLog

    init(_ options: ConfigOptions) throws {
        try self.init(config: try options.load())
    }

    init(config: Config) throws {
        self.config = config
        do { store = try UserStores.open(config) } catch { throw CLIError("\(error)") }
        audit = AuditLog(path: config.auditLog)
        // Records sealed now would open only where the variable is set: never in a login
        // through a helper the module spawns (its environment is cleaned).
        if let id = try? KeyRing(keyDir: config.keyDir).environmentKeyOutsideKeyDir() {
            writeStderr("twostep: warning: \(KeyRing.environmentVariable) (key \(id)) has no file in \(config.keyDir): " +
                        "records written now open only where that variable is set, not in logins through a spawned helper\n")
        }
    }

    /// A second handle on the same store (for a second thread).
    func reopened() throws -> LocalStore { try LocalStore(config: config) }

    func now() -> Int64 { Int64(time(nil)) }

    /// An administrator's change to USER's enrolment: root only, under the user's lock
    /// (unless `body` takes it itself), audited as `event` once it has succeeded.
    func adminChange<T>(_ event: String, user: String, locked: Bool = true, detail: String? = nil, reason: String? = nil,
                        _ body: () throws -> T) throws -> T {
        try requireRoot(String(event.map { $0 == "_" ? " " : $0 }))
        let result = try withCLIErrors { locked ? try store.withLock(user) { try body() } : try body() }
        audit.record(AuditEvent(event: event, user: user, service: "twostep", result: "success",
                                detail: (detail.map { $0 + ", " } ?? "") + "by \(actingAdmin())" + (reason.map { ": \($0)" } ?? "")))
        return result
    }

    /// For a repair of `user` (`reset`, `unlock`): "not enrolled" before any lock is taken,
    /// so that a mistyped name leaves no lock file behind. The repair checks again under the
    /// lock.
    func requireEnrolled(_ user: String, for event: String) throws {
        try requireRoot(String(event.map { $0 == "_" ? " " : $0 }))
        guard try withCLIErrors({ try store.hasRecord(user) }) else { throw CLIError("\(user) is not enrolled") }
    }

    /// A damaged lock file (not a regular file of ours) fails every lock of `user`, so the
    /// repairs (`unlock`, `reset`) replace it first, and say so.
    func repairLockFile(_ user: String) throws {
        guard let files = store as? FileUserStore else { return }
        if let path = try withCLIErrors({ try files.repairLockFile(user) }) {
            print("twostep: \(user)'s lock file \(path) was not a regular file of root's; removed (it is made again on use)")
        }
    }

    /// For a command that reads every record: master keys read once, not once a record.
    func cacheKeys() {
        if let files = store as? FileUserStore { files.keyCache = KeyCache(files.keys) }
    }

    func requireRoot(_ what: String) throws {
        guard geteuid() == 0 else { throw CLIError("\(what) needs root") }
    }
}

/// Runs `body`, turning any error into a CLIError (one line on stderr, exit status 1).
func withCLIErrors<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as CLIError { throw e } catch { throw CLIError("\(error)") }
}

func invokingUser() -> String {
    userName(uid: getuid()) ?? "\(getuid())"
}
