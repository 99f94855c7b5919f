import CHelperSys
import Glibc
import TwoStepCore
import TwoStepPostgres
import TwoStepProtocol
import TwoStepStore

/// Process hygiene before any secret is read: no core dumps, not ptrace-attachable by
/// the same uid, private umask, SIGPIPE ignored (a vanished peer is an error, not death).
public func hardenProcess() {
    _ = twostep_sys_disable_dumps()
    _ = umask(0o077)
    _ = signal(SIGPIPE, SIG_IGN)
}

/// `twostep-helper pam`: one login, spoken over fd 0/1 with the module.
public enum PAMSession {
    /// Backstop: whatever happens, the helper is gone after this long.
    public static let maxSessionSeconds: UInt32 = 900

    public static func run(fd: Int32 = 0, writeFD: Int32 = 1) -> Int32 {
        hardenProcess()
        if isatty(fd) != 0 {
            writeStderr("twostep-helper: `pam` mode is for pam_twostep.so and does not read a terminal\n")
            return 2
        }
        alarm(maxSessionSeconds)
        let channel = FrameChannel(readFD: fd, writeFD: writeFD)
        channel.deadline = monotonicSeconds() + 30
        let verdict = session(channel)
        try? channel.send(Frame(.result, [verdict.rawValue]))
        UserStores.finish()
        return verdict == .success ? 0 : 1
    }

    static func session(_ channel: FrameChannel) -> Verdict {
        let fields: [String: String]
        do {
            let first = try channel.receive()
            guard first.type == .request else { return .systemError }
            fields = try decodeFields(first.payload)
        } catch {
            return .systemError
        }
        let config: Config
        do {
            config = try Config.load(path: fields["config"] ?? Config.defaultPath)
        } catch {
            AuditLog.syslogLine(LOG_ERR, "helper: \(error)")
            return .systemError
        }
        return verify(fields, config: config, channel: channel)
    }

    /// One login from a request's fields, whether spawned by the module or reached over
    /// the socket by a root caller.
    static func verify(_ fields: [String: String], config: Config, channel: FrameChannel) -> Verdict {
        // The prompt is answered by a person: no deadline while waiting for them; the
        // module's timeout= and the alarm cap the rest.
        channel.deadline = nil
        guard fields["version"] == "1", fields["mode"] == "pam",
              let user = fields["user"], let service = fields["service"] else {
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
        let audit = AuditLog(path: config.auditLog)
        let verifier = Verifier(config: config, store: store, audit: audit, now: { Int64(time(nil)) })
        let request = LoginRequest(user: user, service: service, rhost: fields["rhost"],
                                   nullok: fields["nullok"] == "1")
        return verifier.authenticate(request, conversation: FrameConversation(channel: channel))
    }
}

public func writeStderr(_ s: String) {
    let bytes = Array(s.utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}
