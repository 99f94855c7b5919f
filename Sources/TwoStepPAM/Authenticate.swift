// SPDX-License-Identifier: Apache-2.0
// pam_sm_authenticate, reached through PAMShim's exported entry point.
// Order: options, fail delay, PAM items, helper (a running server's socket when socket= is
// given and answers, else a spawned process), relay, close/reap. Every path returns a PAM code.
import PAMShim
import TwoStepProtocol

/// After a verdict (or conversationFailed) the helper gets this long to close its end and exit before SIGKILL.
private let helperGraceMilliseconds: Int64 = 200
/// A server that has not sent its first frame this long after the request is not used:
/// the module spawns its own helper instead (a busy or starved server never costs a login).
let serverFirstFrameMilliseconds: Int64 = 2000
/// The longest connect() to the server may wait for room in a full listen backlog (a
/// flooded server): the same allowance as for its first frame, never `timeout=` (30 s by
/// default), so a flood costs a login at most about this much before the spawn fallback.
let serverConnectMilliseconds: Int64 = serverFirstFrameMilliseconds

/// The line's arguments, as libpam hands them over.
private func moduleArguments(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> [String] {
    var args: [String] = []
    if let argv, argc > 0 {
        for i in 0..<Int(argc) {
            if let p = argv[i] { args.append(String(cString: p)) }
        }
    }
    return args
}

/// pam_sm_acct_mgmt and pam_sm_setcred do nothing but check their line's arguments as
/// pam_sm_authenticate does (DESIGN.md: unknown arguments fail): PAM_SUCCESS, or
/// PAM_SERVICE_ERR (logged) for a line with an unknown or malformed argument.
@_cdecl("twostep_swift_check_arguments")
func twostepSwiftCheckArguments(_ pamh: OpaquePointer?, _ argc: Int32,
                                _ argv: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Int32 {
    guard let pamh else { return TWOSTEP_PAM_SYSTEM_ERR }
    let pam = PAMHandle(handle: pamh)
    let args = moduleArguments(argc, argv)
    switch parseModuleOptions(args) {
    case .success: return TWOSTEP_PAM_SUCCESS
    case .failure(let e):
        pam.error(e.message)
        return TWOSTEP_PAM_SERVICE_ERR
    }
}

@_cdecl("twostep_swift_authenticate")
func twostepSwiftAuthenticate(_ pamh: OpaquePointer?, _ flags: Int32, _ argc: Int32,
                              _ argv: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Int32 {
    guard let pamh else { return TWOSTEP_PAM_SYSTEM_ERR }
    var pam = PAMHandle(handle: pamh)

    let args = moduleArguments(argc, argv)
    let options: ModuleOptions
    switch parseModuleOptions(args) {
    case .success(let o): options = o
    case .failure(let e):
        pam.error(e.message)
        return TWOSTEP_PAM_SERVICE_ERR
    }
    pam.debug = options.debug

    pam.setFailDelay(microseconds: 2_000_000)

    let user: String
    switch pam.user() {
    case .success(let u): user = u
    case .failure(let code):
        pam.error(code.rawValue == TWOSTEP_PAM_USER_UNKNOWN ? "no user name, or one that is not valid UTF-8: refused"
                  : "cannot determine the user (\(code.rawValue))")
        return code.rawValue
    }

    let payload = LoginRequest.encode(
        user: user, service: pam.stringItem(TWOSTEP_PAM_SERVICE),
        rhost: pam.stringItem(TWOSTEP_PAM_RHOST), ruser: pam.stringItem(TWOSTEP_PAM_RUSER),
        tty: pam.stringItem(TWOSTEP_PAM_TTY), authInfo: pam.environment("SSH_AUTH_INFO_0"),
        config: options.config, nullok: options.nullok, debug: options.debug, forwardPass: options.forwardPass)
    guard payload.count <= ProtocolLimits.maxPayload else {
        // The helper would refuse it; an outsized PAM item is no reason to guess.
        pam.error("request of \(payload.count) bytes exceeds the protocol limit")
        return TWOSTEP_PAM_SYSTEM_ERR
    }

    let link: HelperLink
    switch openLink(options: options, pam: pam, request: payload) {
    case .success(let l): link = l
    case .failure(let code): return code.rawValue
    }

    var relay = Relay(pam: pam, connection: HelperConnection(fd: link.fd),
                      timeoutMilliseconds: Int64(options.timeoutSeconds) * 1000,
                      silent: flags & TWOSTEP_PAM_SILENT != 0)
    relay.forwardPass = options.forwardPass
    let end = relay.run(request: payload, alreadySent: link.requestSent)

    switch end {
    case .verdict(let verdict, let byte):
        link.finish(graceMilliseconds: helperGraceMilliseconds)
        guard let verdict else {
            pam.error("helper sent an unknown verdict \(byte)")
            return TWOSTEP_PAM_SYSTEM_ERR
        }
        pam.debugLog("verdict \(verdict.name) for \(user)")
        if verdict == .notEnrolled { pam.log(TWOSTEP_LOG_NOTICE, "user \(user) not enrolled") }
        return pamCode(for: verdict)
    case .abandoned(let code, let reason):
        link.finish(graceMilliseconds: helperGraceMilliseconds)
        pam.error(reason)
        return code
    case .aborted(let code, let reason):
        link.finish(graceMilliseconds: 0)
        pam.error(reason)
        return code
    }
}

/// Why a server that has answered is not to be used, from what it sent first (read ahead,
/// not taken; one recv): nil when it is to be used.
/// - The connection closed (end of stream, or reset) with no frame: systemd's socket with a
///   service that cannot start (masked, a broken config, its start limit hit).
/// - A bare system-error result: a server of another version refusing a request it cannot
///   read (the module and the helper beside it are one package; the running server may be
///   the one from before an upgrade, or the module one a long-running host loaded before
///   it), or one that cannot serve (its config). The helper of this module's package decides.
private func refusedAtOnce(_ fd: Int32) -> String? {
    let refusal = Frame(.result, [Verdict.systemError.rawValue]).encoded()
    var first = [UInt8](repeating: 0, count: refusal.count)
    let n = first.withUnsafeMutableBytes { twostep_peek(fd, $0.baseAddress, $0.count) }
    if n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE || errno == ENOTCONN)) {
        return "it closed the connection without answering"
    }
    return n == refusal.count && first == refusal ? "it answered the request with a system error" : nil
}

/// With socket=, a connection to the running server; without it, or when the server cannot
/// be used, a freshly spawned helper. Fails only when no helper can be had at all.
private func openLink(options: ModuleOptions, pam: PAMHandle, request: [UInt8]) -> Result<HelperLink, PAMCode> {
    if let path = options.socket {
        switch HelperSocket.connect(path: path,
                                    timeoutMilliseconds: min(Int64(options.timeoutSeconds) * 1000, serverConnectMilliseconds)) {
        case .success(let fd):
            // The server must answer the request's first frame promptly; otherwise it is
            // overloaded (or starved by someone) and a spawned helper serves this login.
            let channel = HelperConnection(fd: fd)
            let failure: String
            if case .failure(let f) = channel.send(Frame(.request, request)) {
                failure = f.message
            } else if case .failure(let f) = channel.waitReadable(deadline: monotonicMilliseconds() + serverFirstFrameMilliseconds) {
                failure = "no answer within \(serverFirstFrameMilliseconds) ms: \(f.message)"
            } else if let refusal = refusedAtOnce(fd) {
                // Nothing was asked yet, so a spawned helper serves this login from the start.
                failure = refusal
            } else {
                pam.debugLog("connected to helper server at \(path)")
                return .success(.connected(fd))
            }
            HelperLink.connected(fd).finish(graceMilliseconds: 0)
            pam.log(TWOSTEP_LOG_WARNING, "helper server at \(path) not used (\(failure)); starting \(options.helper)")
        case .failure(let f):
            let text = "helper server at \(path) not used (\(f.message)); starting \(options.helper)"
            if !f.noServer {
                // Not the plain "not running": a wrong path, wrong permissions, a stranger's
                // socket, an overloaded server. Worth seeing every time.
                pam.log(TWOSTEP_LOG_WARNING, text)
            } else if twostep_first_socket_fallback() != 0 || options.debug {
                // The server is simply not running. Once per host process is enough.
                pam.log(TWOSTEP_LOG_NOTICE, text)
            }
        }
    }
    switch HelperProcess.start(path: options.helper) {
    case .success(let h):
        pam.debugLog("started helper pid \(h.pid)")
        return .success(.spawned(h))
    case .failure(.socketpair(let err)):
        pam.error("socketpair failed: errno \(err)")
        return .failure(PAMCode(TWOSTEP_PAM_SYSTEM_ERR))
    case .failure(.spawn(let err)):
        // No helper, no decision: the second factor cannot be checked.
        pam.error("cannot start helper \(options.helper): errno \(err)")
        return .failure(PAMCode(TWOSTEP_PAM_AUTHINFO_UNAVAIL))
    }
}
