// SPDX-License-Identifier: Apache-2.0
import CTwoStepSys
import Glibc
import TwoStepCrypto
import TwoStepPostgres
import TwoStepProtocol
import TwoStepService
import TwoStepStore
import TwoStepSystem

/// `twostep-helper serve`: the helper's socket, for self-service requests from anyone and
/// for logins relayed by pam_twostep.so socket= from root. Each connection is served by its
/// own process (a pre-forked worker here, or an instance per connection from systemd with
/// Accept=yes), which learns who is calling from SO_PEERCRED and never from anything the
/// caller says.
public enum HelperServer {
    /// A connection's whole life, password typing and QR scanning included.
    public static let connectionSeconds: UInt32 = 600
    /// How long a caller may take to send its request: an idle connection is dropped.
    public static let requestSeconds: Int64 = 3

    /// Socket activation: systemd passes fd 3. Listening (Accept=no) → accept loop on it;
    /// connected (Accept=yes) → serve that one connection.
    public static func activatedDescriptor() -> Int32? {
        guard let fds = getenv("LISTEN_FDS").map({ String(cString: $0) }), fds == "1",
              let pid = getenv("LISTEN_PID").map({ String(cString: $0) }), pid == "\(getpid())" else { return nil }
        unsetenv("LISTEN_FDS"); unsetenv("LISTEN_PID"); unsetenv("LISTEN_FDNAMES")
        return 3
    }

    /// The mode of a socket `serve` creates: users connect to it for self-service.
    public static let defaultSocketMode: mode_t = 0o666

    /// `--mode`'s value: octal permissions that let root read and write and give nobody
    /// execute or more than read and write (0600, 0660, 0666, ...); nil otherwise.
    public static func socketMode(_ text: String) -> mode_t? {
        guard (3...4).contains(text.utf8.count), let m = mode_t(text, radix: 8),
              text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "7") }),
              m & 0o600 == 0o600, m & ~mode_t(0o666) == 0 else { return nil }
        return m
    }

    public static func run(configPath: String, socketPath: String?, mode: mode_t = defaultSocketMode) -> Int32 {
        hardenProcess()
        let source: ServerConfig
        do { source = try ServerConfig(path: configPath) } catch {
            writeStderr("twostep-helper: \(error)\n")
            return 1
        }
        let config = source.started
        if let fd = activatedDescriptor() {
            var listening: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            if getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening != 0 {
                return acceptLoop(fd, config: source)
            }
            // One connection per process (Accept=yes): the config just read is current.
            return serveConnection(fd, config: config)
        }
        let path = socketPath ?? config.socket
        guard let fd = listen(at: path, mode: mode) else { return 1 }
        return acceptLoop(fd, config: source)
    }

    static func listen(at path: String, mode: mode_t) -> Int32? {
        guard var addr = unixSocketAddress(path) else {
            writeStderr("twostep-helper: socket path too long: \(path)\n")
            return nil
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        // A stale socket from an earlier run is replaced; anything else at the path is not.
        var st = stat()
        if lstat(path, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFSOCK else {
                writeStderr("twostep-helper: \(path) exists and is not a socket\n")
                return nil
            }
            unlink(path)
        }
        let dir = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        // 0755 explicitly: the umask (077 since hardenProcess) would make it 0700 and
        // users could not reach the socket.
        if !dir.isEmpty && mkdir(dir, 0o755) == 0 { chmod(dir, 0o755) }
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard ok == 0, chmod(path, mode) == 0, Glibc.listen(fd, 64) == 0 else {
            writeStderr("twostep-helper: cannot listen on \(path): \(String(cString: strerror(errno)))\n")
            close(fd)
            return nil
        }
        return fd
    }

    /// Pre-forked workers: `max_connections` processes, forked from this warmed-up parent
    /// ahead of time. A worker serves root's logins one after another (up to
    /// `loginsPerWorker`), so a login pays no fork, no exit and no cold cache; any other
    /// connection (a user's self-service request, or a root connection that was not a
    /// login) has the worker to itself, which exits after it. The parent forks a
    /// replacement for every worker that exits. No fork stands between a caller and its
    /// answer.
    static func acceptLoop(_ listener: Int32, config source: ServerConfig) -> Int32 {
        // Pay OpenSSL's one-time start-up (provider and algorithm tables) once, here, so
        // that every worker starts warm.
        Crypto.warmUp()
        // /etc/passwd indexed here, and brought up to date before each fork: the workers
        // inherit a current index and rebuild their own only when the file changes later.
        PasswdFileCache.shared = PasswdFileCache()
        let parent = getpid()
        var workers = Set<pid_t>()
        while true {
            PasswdFileCache.shared?.refresh()
            while workers.count < source.started.maxConnections {
                let pid = fork()
                if pid == 0 { _exit(worker(listener, parent: parent, config: source)) }
                guard pid > 0 else {
                    writeStderr("twostep-helper: fork: \(String(cString: strerror(errno)))\n")
                    sleep(1)
                    break
                }
                workers.insert(pid)
            }
            var status: Int32 = 0
            let pid = waitpid(-1, &status, 0)
            if pid > 0 {
                workers.remove(pid)
            } else if errno == ECHILD {
                workers.removeAll()
            }
        }
    }

    /// Root logins one worker serves before it exits and is replaced (a bound on whatever
    /// a long life could accumulate).
    public static let loginsPerWorker = 1000

    /// One worker: waits for a connection it may serve and serves it; after a root login it
    /// waits for the next one. A non-root connection from a uid with no account, over its
    /// user's cap or over the cap on non-root connections (`nonRootConnections`) is refused
    /// at once and the worker accepts the next one, so neither one user opening hundreds
    /// of connections nor many uids together can make others wait or leave root's logins
    /// without a worker. Dies with the server.
    static func worker(_ listener: Int32, parent: pid_t, config source: ServerConfig) -> Int32 {
        // A stop (SIGTERM to the server, then to each worker as the server is gone) lets a
        // login in progress finish: an upgrade's restart killed every user waiting at the
        // code prompt (a reviewer's). Idle workers end at once.
        guard twostep_sys_worker_signals() == 0, twostep_sys_die_with_parent(parent) == 0 else { return 1 }
        // Touch OpenSSL's shared tables once more, now, and everything else a login needs
        // (WarmUp): the copy-on-write faults that a fork owes land here, before a caller
        // is waiting, instead of inside its login.
        WarmUp.worker(source.now() ?? source.started)
        var logins = 0
        while true {
            let conn = Sys.retry { twostep_sys_accept_idle(listener) }
            if conn >= 0 {
                // Admission counts connections against the workers this server started
                // (`max_connections` as it started, slot locks in its state_dir); what is
                // served follows the file as it is now (ServerConfig). A config that cannot
                // be read is refused after admission, with the request read and a verdict sent.
                let config = source.now()
                guard let caller = admit(conn, config: source.started) else { continue }
                guard caller.uid == 0 else {
                    // A user's connection: this process is theirs alone, then gone.
                    close(listener)
                    return serve(conn, caller: caller, config: config).status
                }
                let served = serve(conn, caller: caller, config: config)
                // The answer is out: bring the passwd index up to date now, not in a login.
                PasswdFileCache.shared?.refresh()
                logins += 1
                guard served.login, logins < loginsPerWorker else { return served.status }
                alarm(0)
                continue
            }
            if errno == ECONNABORTED { continue }
            writeStderr("twostep-helper: accept: \(String(cString: strerror(errno)))\n")
            sleep(1)
            return 1
        }
    }

    /// Self-service connections one non-root user may have open at once.
    public static let connectionsPerUser = 3

    /// Non-root connections served at once across all workers: half of `max_connections`
    /// (at least one), so that callers with many uids (each under its own cap) can never
    /// hold every worker, and root's logins always find one free.
    public static func nonRootConnections(_ config: Config) -> Int { max(1, config.maxConnections / 2) }

    /// The file whose bytes are the connection slots (ByteLocks), in `state_dir`.
    public static let slotsFile = ".conn-slots"
    /// Byte of a user's slot n: uid * connectionsPerUser + n (below 2^34 for any uid).
    static func userSlot(_ uid: uid_t, _ n: Int) -> Int64 { Int64(uid) * Int64(connectionsPerUser) + Int64(n) }
    /// Bytes of the non-root cap's slots start here, above every user's slot.
    static let sharedSlotBase: Int64 = 1 << 40

    /// Why a caller is turned away before a worker is spent on it.
    enum Refusal: Error {
        case noAccount, lookupFailed, userCap, sharedCap

        var message: String {
            switch self {
            case .noAccount: return "Your uid has no account on this host: twostep serves only users with one."
            case .lookupFailed: return "Your uid could not be looked up (the user database did not answer); try again later."
            case .userCap: return "Too many open twostep requests for your user; finish or cancel the others first."
            case .sharedCap: return "The twostep helper is busy with other users' requests; try again in a moment."
            }
        }
    }

    /// Takes one of the caller's connection slots and one of the non-root slots, as
    /// open-file-description locks on bytes of `state_dir/.conn-slots` (released when the
    /// returned ByteLocks is released or this process ends; nothing accumulates on disk).
    static func claimSlots(uid: uid_t, config: Config) throws -> Result<ByteLocks, Refusal> {
        let dirfd = try Files.openPrivateDirectory(config.stateDir)
        defer { close(dirfd) }
        let locks = try ByteLocks(dirfd: dirfd, dirPath: config.stateDir, name: slotsFile)
        guard try locks.claimFirst(of: (0..<connectionsPerUser).map { userSlot(uid, $0) }) != nil else {
            return .failure(.userCap)
        }
        guard try locks.claimFirst(of: (0..<nonRootConnections(config)).map { sharedSlotBase + Int64($0) }) != nil else {
            return .failure(.sharedCap)   // releasing `locks` gives the user's slot back
        }
        return .success(locks)
    }

    /// Who is calling, known at accept (SO_PEERCRED), and the slots a non-root caller holds.
    struct Caller {
        let uid: uid_t
        let slot: ByteLocks?
    }

    /// Takes the caller's uid and, for a non-root caller, its slots, at once, before
    /// reading a byte. nil (and the connection closed, after an error frame and a `denied`
    /// result) when the caller has no account, is over its own cap or the non-root cap,
    /// or cannot be identified.
    static func admit(_ fd: Int32, config: Config) -> Caller? {
        var uid: uid_t = 0
        guard twostep_sys_peer_uid(fd, &uid) == 0 else { close(fd); return nil }
        if uid == 0 { return Caller(uid: 0, slot: nil) }
        // A uid no account has cannot own an enrolment: nothing to serve.
        switch hasAccount(uid: uid) {
        case true?: break
        case false?:
            AuditLog.syslogLine(LOG_NOTICE, "helper: connection from uid \(uid), which has no account, refused")
            refuse(fd, .noAccount)
            return nil
        case nil:
            AuditLog.syslogLine(LOG_ERR, "helper: uid \(uid) could not be looked up; connection refused")
            refuse(fd, .lookupFailed)
            return nil
        }
        do {
            switch try claimSlots(uid: uid, config: config) {
            case .success(let slot): return Caller(uid: uid, slot: slot)
            case .failure(let refusal):
                if refusal == .sharedCap {
                    AuditLog.syslogLine(LOG_WARNING, "helper: \(nonRootConnections(config)) non-root connections open; uid \(uid) refused")
                }
                refuse(fd, refusal)
                return nil
            }
        } catch {
            AuditLog.syslogLine(LOG_ERR, "helper: connection slots for uid \(uid): \(error)")
            close(fd)
            return nil
        }
    }

    /// Says why and closes. The reply fits in the socket buffer: never blocks this worker.
    static func refuse(_ fd: Int32, _ refusal: Refusal) {
        var flags = fcntl(fd, F_GETFL)
        if flags >= 0 { flags |= O_NONBLOCK; _ = fcntl(fd, F_SETFL, flags) }
        let stream = FrameStream(readFD: fd, writeFD: fd)
        try? stream.send(Frame(.error, text: refusal.message))
        try? stream.send(Frame(.result, [Verdict.denied.rawValue]))
        close(fd)
    }

    /// One connection, in its own process (systemd Accept=yes).
    public static func serveConnection(_ fd: Int32, config: Config) -> Int32 {
        guard let caller = admit(fd, config: config) else { return 1 }
        return serve(fd, caller: caller, config: config).status
    }

    /// Serves one connection and closes it. `login`: it was a login relayed by root (the
    /// only kind after which a worker serves another connection).
    /// The process is hardened already: `run` did it once, before any worker was forked or
    /// any connection served (nothing a login runs undoes it), not once per connection.
    static func serve(_ fd: Int32, caller: Caller, config: Config?) -> (status: Int32, login: Bool) {
        alarm(connectionSeconds)
        defer { caller.slot?.release() }
        let link = HelperLink(FrameStream(readFD: fd, writeFD: fd), requestSeconds: requestSeconds)
        let (verdict, login) = serve(link, peerUID: caller.uid, config: config)
        link.finish(verdict)
        UserStores.finish()
        close(fd)
        return (verdict == .success ? 0 : 1, login)
    }

    static func serve(_ link: HelperLink, peerUID: uid_t, config: Config?) -> (Verdict, login: Bool) {
        let request = link.receiveRequest()
        guard let config else {
            // ServerConfig logged why; a root login leaves the worker serving the next one.
            if case .login(_)? = request, peerUID == 0 { return (.systemError, true) }
            pauseLoggedRefusal(peerUID)
            return (.systemError, false)
        }
        switch request {
        case .login(let request)?:
            // A login relayed by pam_twostep.so with socket=: only root (sshd, sudo, su)
            // may ask, and the policy is this server's config, not the caller's.
            guard peerUID == 0 else {
                AuditLog.syslogLine(LOG_WARNING, "helper: login request from uid \(peerUID) refused")
                pauseLoggedRefusal(peerUID)
                return (.systemError, false)
            }
            return (LoginSession.verify(request, config: config, link: link), true)
        case .selfService(let request)?:
            link.stream.deadline = nil
            do {
                // The caller's connection slot was taken at accept (admit).
                let store = try UserStores.open(config)
                let service = SelfService(config: config, store: store, audit: AuditLog(path: config.auditLog),
                                          now: { Int64(time(nil)) },
                                          confirmPassword: { user, conversation in
                                              PasswordCheck.confirm(user: user, service: config.passwordService,
                                                                    conversation: conversation)
                                          })
                return (service.handle(request, callerUID: peerUID, conversation: link) { link.sendData($0) }, false)
            } catch {
                AuditLog.syslogLine(LOG_ERR, "helper: self-service connection from uid \(peerUID): \(error)")
                return (.systemError, false)
            }
        case nil:
            AuditLog.syslogLine(LOG_ERR, "helper: connection from uid \(peerUID): no valid request")
            pauseLoggedRefusal(peerUID)
            return (.systemError, false)
        }
    }

    /// A non-root caller whose connection ended in a logged refusal waits
    /// `SelfService.refusalPauseSeconds`, holding its connection slot, so that one account
    /// cannot write syslog lines as fast as it can open connections. Root (the module, on
    /// behalf of sshd or sudo) never waits here.
    static func pauseLoggedRefusal(_ peerUID: uid_t) {
        if peerUID != 0 { Sys.sleepUninterrupted(seconds: SelfService.refusalPauseSeconds) }
    }
}
