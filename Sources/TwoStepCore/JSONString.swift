// SPDX-License-Identifier: Apache-2.0
// JSON string literals for the audit log and the CLI's --json answers.

/// Characters that act on a terminal or on how text is laid out rather than print: C0 and
/// C1 controls and DEL (escape sequences, 8-bit CSI/OSC), the Unicode line and paragraph
/// separators, and the bidirectional embeddings, overrides and isolates.
public func isDisplayControl(_ c: Unicode.Scalar) -> Bool {
    switch c.value {
    case 0..<0x20, 0x7f...0x9f, 0x2028, 0x2029, 0x202a...0x202e, 0x2066...0x2069: return true
    default: return false
    }
}

/// A JSON string literal with every `isDisplayControl` character escaped (`\u` form):
/// a value printed from the audit log acts on no terminal, and tools that split on every
/// line break (U+2028) see the line whole. Other non-ASCII text is kept as UTF-8.
public func jsonString(_ s: String) -> String {
    // Most values (names, times, algorithms) need no escape: copied whole.
    if s.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7f && $0 != 0x22 && $0 != 0x5c }) { return "\"" + s + "\"" }
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if isDisplayControl(u) {
                let h = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
            } else {
                out.unicodeScalars.append(u)
            }
        }
    }
    return out + "\""
}
