// pam_sm_authenticate, reached through PAMShim's exported entry point.
// Order: options, fail delay, PAM items, helper, relay, reap. Every path returns a PAM code.
import PAMShim
import TwoStepProtocol

/// After a verdict the helper gets this long to close its end and exit before SIGKILL.
private let helperGraceMilliseconds: Int64 = 200

@_cdecl("twostep_swift_authenticate")
func twostepSwiftAuthenticate(_ pamh: OpaquePointer?, _ flags: Int32, _ argc: Int32,
                              _ argv: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Int32 {
    guard let pamh else { return TWOSTEP_PAM_SYSTEM_ERR }
    var pam = PAMSession(handle: pamh)

    var args: [String] = []
    if let argv, argc > 0 {
        for i in 0..<Int(argc) {
            if let p = argv[i] { args.append(String(cString: p)) }
        }
    }
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
        pam.error("cannot determine the user (\(code.rawValue))")
        return code.rawValue
    }

    var request: [(String, String)] = [
        (RequestField.version.rawValue, String(ProtocolLimits.version)),
        (RequestField.mode.rawValue, "pam"),
        (RequestField.user.rawValue, user),
    ]
    let optional: [(RequestField, String)] = [
        (.service, pam.stringItem(TWOSTEP_PAM_SERVICE)),
        (.rhost, pam.stringItem(TWOSTEP_PAM_RHOST)),
        (.ruser, pam.stringItem(TWOSTEP_PAM_RUSER)),
        (.tty, pam.stringItem(TWOSTEP_PAM_TTY)),
        (.authInfo, pam.environment("SSH_AUTH_INFO_0")),
    ]
    for (field, value) in optional where !value.isEmpty {
        request.append((field.rawValue, value))
    }
    request.append((RequestField.config.rawValue, options.config))
    request.append((RequestField.nullok.rawValue, options.nullok ? "1" : "0"))
    request.append((RequestField.debug.rawValue, options.debug ? "1" : "0"))

    let payload = encodeFields(request)
    guard payload.count <= ProtocolLimits.maxPayload else {
        // The helper would refuse it; an outsized PAM item is no reason to guess.
        pam.error("request of \(payload.count) bytes exceeds the protocol limit")
        return TWOSTEP_PAM_SYSTEM_ERR
    }

    let helper: HelperProcess
    switch HelperProcess.start(path: options.helper) {
    case .success(let h): helper = h
    case .failure(.socketpair(let err)):
        pam.error("socketpair failed: errno \(err)")
        return TWOSTEP_PAM_SYSTEM_ERR
    case .failure(.spawn(let err)):
        // No helper, no decision: the second factor cannot be checked.
        pam.error("cannot start helper \(options.helper): errno \(err)")
        return TWOSTEP_PAM_AUTHINFO_UNAVAIL
    }
    pam.debugLog("started helper pid \(helper.pid)")

    let relay = Relay(pam: pam, channel: HelperChannel(fd: helper.socket),
                      timeoutMilliseconds: Int64(options.timeoutSeconds) * 1000,
                      silent: flags & TWOSTEP_PAM_SILENT != 0)
    let end = relay.run(request: payload)

    switch end {
    case .verdict(let verdict, let byte):
        helper.finish(graceMilliseconds: helperGraceMilliseconds)
        guard let verdict else {
            pam.error("helper sent an unknown verdict \(byte)")
            return TWOSTEP_PAM_SYSTEM_ERR
        }
        pam.debugLog("verdict \(verdictName(verdict)) for \(user)")
        if verdict == .notEnrolled { pam.log(TWOSTEP_LOG_NOTICE, "user \(user) not enrolled") }
        return pamCode(for: verdict)
    case .aborted(let code, let reason):
        helper.finish(graceMilliseconds: 0)
        pam.error(reason)
        return code
    }
}
