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
    let inner = indent + "  "
    switch value {
    case let s as String: return jsonString(s)
    case let b as Bool: return b ? "true" : "false"
    case let i as Int: return String(i)
    case let i as Int64: return String(i)
    case let a as [Any]:
        if a.isEmpty { return "[]" }
        return "[\n" + a.map { inner + jsonText($0, indent: inner) }.joined(separator: ",\n") + "\n" + indent + "]"
    case let o as [String: Any]:
        if o.isEmpty { return "{}" }
        return "{\n" + o.keys.sorted().map { k in
            inner + jsonString(k) + " : " + jsonText(o[k] as Any, indent: inner)
        }.joined(separator: ",\n") + "\n" + indent + "}"
    default: return "null"
    }
}

/// The helper's data fields as JSON values.
func jsonObject(_ data: ServiceData) -> [String: Any] {
    var out: [String: Any] = [:]
    for (field, v) in data.fields {
        let k = field.rawValue
        switch field {
        case .backupCodes: out[k] = v.split(separator: ",").map(String.init)
        case .authenticators: out[k] = authenticatorRows(v)
        case .enrolled, .locked: out[k] = (v == "true")
        case .digits, .period, .backupCodesLeft, .recentFailures: out[k] = Int(v) ?? v
        default: out[k] = v
        }
    }
    return out
}
