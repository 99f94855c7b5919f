// SPDX-License-Identifier: Apache-2.0
import TwoStepCore
import TwoStepProtocol
import TwoStepSystem

func printJSON(_ object: Any) throws {
    writeStdout(jsonText(object) + "\n")
}

/// JSON text for the CLI's answers (strings, integers, booleans, arrays and objects),
/// keys sorted, two-space indented.
func jsonText(_ value: Any, indent: String = "") -> String {
    var out = ""
    appendJSON(value, indent: indent, to: &out)
    return out
}

/// `jsonText` appended to `out` (one growing string: a listing of 100,000 rows builds no
/// intermediate arrays).
func appendJSON(_ value: Any, indent: String, to out: inout String) {
    let inner = indent + "  "
    switch value {
    case let s as String: out += jsonString(s)
    case let b as Bool: out += b ? "true" : "false"
    case let i as Int: out += String(i)
    case let i as Int64: out += String(i)
    case let a as [Any]:
        if a.isEmpty { out += "[]"; return }
        out += "[\n"
        for (n, v) in a.enumerated() {
            out += inner
            appendJSON(v, indent: inner, to: &out)
            out += n == a.count - 1 ? "\n" : ",\n"
        }
        out += indent + "]"
    case let o as [String: Any]:
        if o.isEmpty { out += "{}"; return }
        out += "{\n"
        for (n, (k, v)) in o.sorted(by: { $0.key < $1.key }).enumerated() {
            out += inner + jsonString(k) + " : "
            appendJSON(v, indent: inner, to: &out)
            out += n == o.count - 1 ? "\n" : ",\n"
        }
        out += indent + "}"
    default: out += "null"
    }
}

/// A JSON `null` for `printJSON` (what a key documented as always present holds when it has
/// no value).
let jsonNull: Any = Optional<Int>.none as Any

/// The helper's data fields as JSON values.
/// `object` with the documented lists of `devices --json` and `admin show --json` always
/// there: `[]` for no authenticators (not enrolled) and no trusted SSH key.
func withEveryList(_ object: [String: Any]) -> [String: Any] {
    var object = object
    for key in ["authenticators", "trusted_ssh_keys"] where object[key] == nil { object[key] = [Any]() }
    return object
}

func jsonObject(_ data: ServiceData) -> [String: Any] {
    var out: [String: Any] = [:]
    for (field, v) in data.fields {
        let k = field.rawValue
        switch field {
        case .backupCodes: out[k] = v.split(separator: ",").map(String.init)
        case .authenticators:
            // `last_used` is always there: null for an authenticator never used.
            out[k] = authenticatorRows(v).map { row -> [String: Any] in
                var row = row
                if row["last_used"] == nil { row["last_used"] = jsonNull }
                return row
            }
        case .trustedSSHKeys: out[k] = trustedKeys(v).map { ["fingerprint": $0.fingerprint, "added": $0.added, "expires": $0.expires] }
        case .enrolled, .locked: out[k] = (v == "true")
        case .digits, .period, .backupCodesLeft, .recentFailures: out[k] = Int(v) ?? v
        default: out[k] = v
        }
    }
    return out
}
