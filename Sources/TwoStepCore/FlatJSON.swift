// SPDX-License-Identifier: Apache-2.0
import TwoStepCrypto

/// One JSON object whose values are strings, numbers, booleans or null (no nesting): a line
/// of `twostep admin import --batch`. Parsed from bytes, and string values are kept as
/// `SecretBytes`, so a secret in a line never sits in String storage and is wiped when the
/// object goes (RFC 8259 grammar for what is accepted).
public struct FlatJSON {
    public enum Value {
        case string(SecretBytes)
        case number(String)
        case bool(Bool)
        case null
    }

    public struct ParseError: Error, CustomStringConvertible {
        public let description: String
        init(_ d: String, at offset: Int) { description = "\(d) at byte \(offset + 1)" }
    }

    public private(set) var fields: [String: Value] = [:]
    /// The keys in the order they came.
    public private(set) var keys: [String] = []

    public subscript(key: String) -> Value? { fields[key] }

    /// A string value as text (for fields that are not secret); nil when absent, not a
    /// string, or not valid UTF-8 (repairing it would make two different byte strings, two
    /// user names, one and the same).
    public func text(_ key: String) -> String? {
        guard case .string(let s)? = fields[key] else { return nil }
        return s.withBytes { bytes in
            let text = String(decoding: bytes, as: UTF8.self)
            return text.utf8.elementsEqual(bytes) ? text : nil
        }
    }

    public init<C: Collection>(parsing bytes: C) throws where C.Element == UInt8, C.Index == Int {
        var p = Parser(bytes: bytes)
        p.skipSpace()
        try p.expect(UInt8(ascii: "{"))
        p.skipSpace()
        if p.peek == UInt8(ascii: "}") {
            p.i += 1
        } else {
            while true {
                p.skipSpace()
                let at = p.i
                var keyBytes = try p.string()
                let key = String(decoding: keyBytes, as: UTF8.self)
                Crypto.wipe(&keyBytes)
                guard fields[key] == nil else { throw ParseError("duplicate key \(jsonString(key))", at: at) }
                p.skipSpace()
                try p.expect(UInt8(ascii: ":"))
                p.skipSpace()
                fields[key] = try p.value()
                keys.append(key)
                p.skipSpace()
                if p.peek == UInt8(ascii: ",") { p.i += 1; continue }
                try p.expect(UInt8(ascii: "}"))
                break
            }
        }
        p.skipSpace()
        guard p.i == p.bytes.endIndex else { throw ParseError("text after the object", at: p.i) }
    }

    struct Parser<C: Collection> where C.Element == UInt8, C.Index == Int {
        let bytes: C
        var i: Int

        init(bytes: C) {
            self.bytes = bytes
            i = bytes.startIndex
        }

        var peek: UInt8? { i < bytes.endIndex ? bytes[i] : nil }

        mutating func skipSpace() {
            while let c = peek, c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { i += 1 }
        }

        mutating func expect(_ c: UInt8) throws {
            guard peek == c else {
                throw ParseError(peek == nil ? "unexpected end of line" : "expected '\(Character(Unicode.Scalar(c)))'", at: i)
            }
            i += 1
        }

        mutating func value() throws -> Value {
            guard let c = peek else { throw ParseError("unexpected end of line", at: i) }
            switch c {
            case UInt8(ascii: "\""):
                var s = try string()
                defer { Crypto.wipe(&s) }
                return .string(SecretBytes(s))
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                let start = i
                while let c = peek, c == UInt8(ascii: "-") || c == UInt8(ascii: "+") || c == UInt8(ascii: ".")
                        || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") || (c >= 0x30 && c <= 0x39) { i += 1 }
                return .number(String(decoding: bytes[start..<i], as: UTF8.self))
            case UInt8(ascii: "t"): try word("true"); return .bool(true)
            case UInt8(ascii: "f"): try word("false"); return .bool(false)
            case UInt8(ascii: "n"): try word("null"); return .null
            case UInt8(ascii: "{"), UInt8(ascii: "["): throw ParseError("nested objects and arrays are not supported", at: i)
            default: throw ParseError("expected a value", at: i)
            }
        }

        mutating func word(_ w: String) throws {
            for c in w.utf8 {
                guard peek == c else { throw ParseError("expected \(w)", at: i) }
                i += 1
            }
        }

        /// A string literal's bytes (UTF-8), escapes resolved; the caller wipes them.
        mutating func string() throws -> [UInt8] {
            try expect(UInt8(ascii: "\""))
            var out: [UInt8] = []
            out.reserveCapacity(64)
            var ok = false
            defer { if !ok { Crypto.wipe(&out) } }
            while true {
                guard let c = peek else { throw ParseError("unterminated string", at: i) }
                i += 1
                if c == UInt8(ascii: "\"") { break }
                if c < 0x20 { throw ParseError("control character in a string", at: i - 1) }
                if c != UInt8(ascii: "\\") { out.append(c); continue }
                guard let e = peek else { throw ParseError("unterminated string", at: i) }
                i += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if scalar >= 0xD800 && scalar < 0xDC00 {
                        // A surrogate pair (RFC 8259 §7) stands for one scalar above U+FFFF.
                        guard peek == UInt8(ascii: "\\") else { throw ParseError("lone surrogate", at: i) }
                        i += 1
                        try expect(UInt8(ascii: "u"))
                        let low = try hex4()
                        guard low >= 0xDC00 && low < 0xE000 else { throw ParseError("lone surrogate", at: i) }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let u = Unicode.Scalar(scalar) else { throw ParseError("lone surrogate", at: i) }
                    out.append(contentsOf: Array(String(Character(u)).utf8))
                default: throw ParseError("bad escape", at: i - 1)
                }
            }
            ok = true
            return out
        }

        mutating func hex4() throws -> UInt32 {
            var v: UInt32 = 0
            for _ in 0..<4 {
                guard let c = peek, let d = hexDigitValue(c) else { throw ParseError("bad \\u escape", at: i) }
                v = v << 4 | UInt32(d)
                i += 1
            }
            return v
        }
    }
}
