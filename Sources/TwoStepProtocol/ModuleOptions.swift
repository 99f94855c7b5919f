// SPDX-License-Identifier: Apache-2.0
// Module arguments from the PAM stack line, parsed once through one table.
// Anything unknown or malformed fails authentication (PAM_SERVICE_ERR): a typo in
// /etc/pam.d must never silently weaken the stack. Here, not in TwoStepPAM, so that
// `twostep doctor` checks a stack's line with the module's own parser.
//
//   config=FILE     the helper's config (absolute; default /etc/twostep/twostep.conf)
//   helper=PATH     the helper to spawn when no running helper answers (absolute; default
//                   /usr/libexec/twostep/twostep-verify, the lean static login helper, which
//                   hands enrolment at first login to twostep-helper beside it)
//   socket=PATH     the running `twostep-helper serve` to ask (absolute, shorter than 108
//                   bytes; default /run/twostep/verify.sock, started by systemd socket
//                   activation from twostep-helperd.socket and kept warm). `socket=none`:
//                   always spawn helper=. The module connects and runs the same relay over
//                   the connection: same request, same timeout=, same fail-closed verdict
//                   mapping. The server decides with ITS OWN config (it ignores config=), so
//                   point both at the same file. It must be owned by root: a server whose
//                   peer uid is not 0 is never asked. When nothing listens there (ENOENT,
//                   ECONNREFUSED: no systemd, or the unit stopped) the module spawns helper=
//                   instead, and says so once per host process at LOG_NOTICE (every time
//                   with debug); any other connect failure also falls back, logged each time.
//   timeout=SECONDS longest silence accepted from the helper or server, 1..600 (default 30)
//   nullok          a user with no enrollment gets PAM_IGNORE instead of failing
//   debug           log the dialogue's steps at LOG_DEBUG (never an answer)
//   forward_pass    one prompt `Password and verification code:`; the trailing code goes to
//                   the helper, the rest becomes PAM_AUTHTOK for the next module
//                   (`pam_unix.so use_first_pass`). The password never reaches the helper.

public struct ModuleOptions {
    public var config = "/etc/twostep/twostep.conf"
    public var helper = "/usr/libexec/twostep/twostep-verify"
    /// A running helper's Unix socket, asked first; nil (`socket=none`): spawn `helper`
    /// for every login.
    public var socket: String? = ModuleOptions.defaultSocket
    public var nullok = false
    public var debug = false
    public var forwardPass = false
    /// Longest silence accepted from the helper, in seconds (1...600).
    public var timeoutSeconds = 30

    /// twostep-helperd.socket's ListenStream=.
    public static let defaultSocket = "/run/twostep/verify.sock"
    public static let timeoutRange = 1...600
    /// sun_path holds 108 bytes, the terminating NUL included.
    public static let maxSocketPathBytes = 107
}

public enum OptionError: Error {
    case unknown(String)
    case malformed(String, why: String)

    public var message: String {
        switch self {
        case .unknown(let arg): return "unknown module argument \"\(arg)\""
        case .malformed(let arg, let why): return "bad module argument \"\(arg)\": \(why)"
        }
    }
}

private enum OptionKind {
    /// `name` alone sets a flag.
    case flag((inout ModuleOptions) -> Void)
    /// `name=value`; the closure returns why the value is rejected, or nil.
    case value((inout ModuleOptions, String) -> String?)
}

private enum OptionTable {
    static let entries: [(name: String, kind: OptionKind)] = [
        ("config", .value { opts, v in
            guard v.hasPrefix("/") else { return "must be an absolute path" }
            opts.config = v
            return nil
        }),
        ("helper", .value { opts, v in
            guard v.hasPrefix("/") else { return "must be an absolute path" }
            opts.helper = v
            return nil
        }),
        ("socket", .value { opts, v in
            if v == "none" {
                opts.socket = nil
                return nil
            }
            guard v.hasPrefix("/") else { return "must be an absolute path" }
            guard v.utf8.count <= ModuleOptions.maxSocketPathBytes else {
                return "must be shorter than \(ModuleOptions.maxSocketPathBytes + 1) bytes"
            }
            opts.socket = v
            return nil
        }),
        ("timeout", .value { opts, v in
            // Digits only, short enough that parsing cannot overflow.
            guard !v.isEmpty, v.utf8.count <= 3, v.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                  let n = Int(v), ModuleOptions.timeoutRange.contains(n)
            else { return "must be a number of seconds from 1 to 600" }
            opts.timeoutSeconds = n
            return nil
        }),
        ("nullok", .flag { $0.nullok = true }),
        ("debug", .flag { $0.debug = true }),
        ("forward_pass", .flag { $0.forwardPass = true }),
    ]
}

public func parseModuleOptions(_ args: [String]) -> Result<ModuleOptions, OptionError> {
    var opts = ModuleOptions()
    for arg in args {
        let name: Substring
        let value: Substring?
        if let eq = arg.firstIndex(of: "=") {
            name = arg[..<eq]
            value = arg[arg.index(after: eq)...]
        } else {
            name = Substring(arg)
            value = nil
        }
        guard let entry = OptionTable.entries.first(where: { $0.name == name }) else {
            return .failure(.unknown(arg))
        }
        switch (entry.kind, value) {
        case (.flag(let apply), nil):
            apply(&opts)
        case (.flag, .some):
            return .failure(.malformed(arg, why: "takes no value"))
        case (.value, nil):
            return .failure(.malformed(arg, why: "needs a value"))
        case (.value(let apply), .some(let v)):
            if let why = apply(&opts, String(v)) { return .failure(.malformed(arg, why: why)) }
        }
    }
    return .success(opts)
}
