// SPDX-License-Identifier: Apache-2.0
import Glibc
import TwoStepCore
#if !TWOSTEP_LEAN
import TwoStepPostgres
#endif
import TwoStepProtocol
import TwoStepService
import TwoStepStore
import TwoStepSystem

/// `twostep-helper pam`: one login, spoken over fd 0/1 with the module that spawned it;
/// also the login dialogue of a root caller on the server's socket.
public enum LoginSession {
    /// Backstop: whatever happens, the helper is gone after this long.
    public static let maxSessionSeconds: UInt32 = 900

    /// `requestFD`: read the request from there (a pipe twostep-verify filled before it
    /// exec'd this helper) instead of from `fd`; the dialogue stays on `fd`/`writeFD`.
    public static func run(fd: Int32 = 0, writeFD: Int32 = 1, requestFD: Int32? = nil) -> Int32 {
        hardenProcess()
        if isatty(fd) != 0 {
            writeStderr("twostep-helper: `pam` mode is for pam_twostep.so and does not read a terminal\n")
            return 2
        }
        alarm(maxSessionSeconds)
        let link = HelperLink(FrameStream(readFD: fd, writeFD: writeFD), requestSeconds: 30,
                              requestStream: requestFD.map { FrameStream(readFD: $0, writeFD: -1) })
        let verdict = session(link)
        link.finish(verdict)
        UserStores.finish()
        return verdict == .success ? 0 : 1
    }

    static func session(_ link: HelperLink) -> Verdict {
        let request: LoginRequest
        switch link.receiveRequest() {
        case .login(let r)?: request = r
        default: return .systemError
        }
        let config: Config
        do {
            config = try Config.load(path: request.config)
        } catch {
            AuditLog.syslogLine(LOG_ERR, "helper: \(error)")
            return .systemError
        }
        #if TWOSTEP_LEAN
        // The lean helper's store is the file store; anything else is the full helper's, and
        // so is a login LeanLogin.canFinish declines (a user /etc/passwd does not answer for).
        guard config.store == .files, LeanLogin.canFinish(request, config: config) else {
            return FullHelper.continueLogin(request)
        }
        #endif
        return verify(request, config: config, link: link)
    }

    /// One login from its request, whether spawned by the module or reached over the
    /// socket by a root caller.
    static func verify(_ request: LoginRequest, config: Config, link: HelperLink) -> Verdict {
        // The prompt is answered by a person: no deadline while waiting for them; the
        // module's timeout= and the alarm cap the rest.
        link.stream.deadline = nil
        guard !request.service.isEmpty else {
            AuditLog.syslogLine(LOG_ERR, "helper: malformed request")
            return .systemError
        }
        let store: UserStore
        do {
            store = try UserStores.open(config, login: true)
        } catch {
            AuditLog.syslogLine(LOG_ERR, "helper: \(error)")
            return .systemError
        }
        // Each master key is read once: for this login (before the prompt and again under the
        // lock) and, in a socket worker, for the logins after it while key_dir is unchanged.
        if let files = store as? FileUserStore { files.keyCache = workerKeys(files.keys, keyDir: config.keyDir) }
        let audit = AuditLog(path: config.auditLog)
        if let health = ClockWarning.current() {
            ClockWarning.note(health, config: config, audit: audit, service: request.service, now: Int64(time(nil)))
        }
        let verifier = Verifier(config: config, store: store, audit: audit, now: { Int64(time(nil)) })
        #if TWOSTEP_LEAN
        // Enrolment at first login needs the wizard (QR codes): the full helper's work.
        verifier.enrolAtFirstLogin = { _, _, _ in FullHelper.continueLogin(request) }
        #endif
        return verifier.authenticate(request, conversation: link)
    }

    /// The master keys this process has read, kept for its next login while `key_dir` looks
    /// the same to lstat (inode, mtime, ctime: a key added, removed or renamed, a chmod or
    /// chown of the directory). A key is named by a digest of its bytes (KeyRing.loadKey
    /// checks it), so a name read once cannot stand for other bytes; a key removed from
    /// `key_dir` stops opening records at the next login. Only the root helper holds them,
    /// in a process that is not dumpable and writes no core.
    nonisolated(unsafe) static var keys: (dir: String, stamp: [Int], cache: KeyCache)?

    static func workerKeys(_ ring: KeyRing, keyDir: String) -> KeyCache {
        var st = stat()
        guard lstat(keyDir, &st) == 0 else {
            keys = nil
            return KeyCache(ring)
        }
        let stamp = [Int(st.st_dev), Int(st.st_ino), Int(st.st_mode), Int(st.st_uid),
                     st.st_mtim.tv_sec, st.st_mtim.tv_nsec, st.st_ctim.tv_sec, st.st_ctim.tv_nsec]
        if let k = keys, k.dir == keyDir, k.stamp == stamp { return k.cache }
        let cache = KeyCache(ring)
        keys = (keyDir, stamp, cache)
        return cache
    }
}
