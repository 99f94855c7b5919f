// SPDX-License-Identifier: Apache-2.0
// Compiled into twostep-verify's build of TwoStepServer only (the Makefile's lean rule,
// with -D TWOSTEP_LEAN): what the full helper gets from TwoStepPostgres and the wizard.
import Glibc
import TwoStepProtocol
import TwoStepStore
import TwoStepSystem

/// The lean helper's one store: files (a PostgreSQL config is handed to the full helper).
enum UserStores {
    static func open(_ config: Config, login: Bool = false) throws -> UserStore {
        try FileUserStore(config: config)
    }

    static func finish() {}
}

/// What twostep-verify, linked statically (glibc included), leaves to twostep-helper. It
/// calls no NSS: a static glibc would load the modules of sources after `files` (systemd,
/// sss, ldap) with dlopen, which is not safe in a static process. It does not start
/// libcrypto the way openssl.cnf says either (that may load a provider module).
public enum LeanLogin {
    /// Whether `Crypto.startForOneLogin` took libcrypto's built-in tables (main sets it).
    /// When it declined (the kernel is in FIPS mode, or a known answer was wrong), every
    /// login goes to twostep-helper, which starts OpenSSL as openssl.cnf says.
    public nonisolated(unsafe) static var cryptoReady = false

    /// Whether this process can finish `request`'s login: /etc/passwd answers for the user
    /// as NSS would (`PasswdFileCache.lookUpOnce`: the account, or no such account when
    /// `files` is the only source; `lookUpAccount` then returns that), and no `require =
    /// GROUPS` asks for group membership. A name the file lacks while other sources follow
    /// is handed on, and costs that hand-over (about 7 ms more before the prompt than an
    /// account in the file): on this path, the timing tells such names apart.
    static func canFinish(_ request: LoginRequest, config: Config) -> Bool {
        guard cryptoReady else { return false }
        if case .groups? = config.require { return false }
        // lookUpAccount answers an invalid name `.unknown` without asking NSS.
        guard isValidUserName(request.user) else { return true }
        guard let account = PasswdFileCache.lookUpOnce(request.user) else { return false }
        filesOnlyAccount = (Array(request.user.utf8), account)
        return true
    }
}

/// A login twostep-verify cannot finish itself (enrolment at first login, a database
/// store, and what LeanLogin.canFinish declines) goes to the full twostep-helper beside it: the request it read is written to a
/// pipe on fd 3 and the helper is exec'd in its place, on the same connection (fd 0/1),
/// with an empty environment, before anything was asked.
enum FullHelper {
    static let name = "twostep-helper"

    /// Returns only when the exec failed (then the login fails closed).
    static func continueLogin(_ request: LoginRequest) -> Verdict {
        guard let path = siblingPath() else {
            AuditLog.syslogLine(LOG_ERR, "twostep-verify: cannot find its own path to start \(name)")
            return .systemError
        }
        let frame = Frame(.request, request.encoded()).encoded()
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else {
            AuditLog.syslogLine(LOG_ERR, "twostep-verify: pipe: \(String(cString: strerror(errno)))")
            return .systemError
        }
        // A request is at most ProtocolLimits.maxPayload bytes: it fits in the pipe's buffer.
        guard Sys.writeAll(fds[1], frame) else {
            close(fds[0]); close(fds[1])
            AuditLog.syslogLine(LOG_ERR, "twostep-verify: cannot pass the request on")
            return .systemError
        }
        close(fds[1])
        if fds[0] != 3 {
            guard dup2(fds[0], 3) == 3 else { return .systemError }
            close(fds[0])
        }
        let words: [String] = [path, "pam", "--request-fd", "3"]  // argv[0] absolute (HelperProcess)
        var argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) }
        argv.append(nil)
        var envp: [UnsafeMutablePointer<CChar>?] = [nil]
        execve(path, argv, &envp)
        AuditLog.syslogLine(LOG_ERR, "twostep-verify: cannot start \(path): \(String(cString: strerror(errno)))")
        return .systemError
    }

    /// `twostep-helper` in the directory this executable was started from.
    static func siblingPath() -> String? {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        guard n > 0 else { return nil }
        let exe = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let slash = exe.lastIndex(of: "/") else { return nil }
        return String(exe[..<slash]) + "/" + name
    }
}
