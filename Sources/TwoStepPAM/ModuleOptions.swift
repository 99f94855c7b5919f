// Module arguments from the PAM stack line, parsed once through one table.
// Anything unknown or malformed fails authentication (PAM_SERVICE_ERR): a typo in
// /etc/pam.d must never silently weaken the stack.

struct ModuleOptions {
    var config = "/etc/twostep/twostep.conf"
    var helper = "/usr/libexec/twostep/twostep-helper"
    var nullok = false
    var debug = false
    /// Longest silence accepted from the helper, in seconds (1...600).
    var timeoutSeconds = 30

    static let timeoutRange = 1...600
}

enum OptionError: Error {
    case unknown(String)
    case malformed(String, why: String)

    var message: String {
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
    ]
}

func parseModuleOptions(_ args: [String]) -> Result<ModuleOptions, OptionError> {
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
