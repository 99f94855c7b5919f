// SPDX-License-Identifier: Apache-2.0
// RFC 4648 §6 Base32 (the alphabet authenticator apps use for secrets).
public enum Base32Error: Error, Equatable, CustomStringConvertible {
    /// `position` counts characters of the input as given, starting at 1.
    case invalidCharacter(Character, position: Int)
    /// The number of Base32 characters cannot come from whole bytes (1, 3 or 6 left over).
    case invalidLength
    /// Nothing but spaces, hyphens and padding.
    case empty

    public var description: String {
        switch self {
        case .invalidCharacter(let c, let position):
            let shown = c.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value < 0x7f })
                ? "'\(c)'" : "U+" + c.unicodeScalars.map { hex4($0.value) }.joined(separator: " U+")
            return "invalid Base32 character \(shown) at position \(position) (allowed: A-Z and 2-7; spaces and hyphens are ignored)"
        case .invalidLength:
            return "invalid Base32 length: the text is truncated or has extra characters"
        case .empty:
            return "empty Base32 text"
        }
    }
}

func hex4(_ value: UInt32) -> String {
    let digits = Array("0123456789ABCDEF")
    var text = ""
    var v = value
    repeat { text.insert(digits[Int(v & 0xf)], at: text.startIndex); v >>= 4 } while v > 0
    return String(repeating: "0", count: max(0, 4 - text.count)) + text
}

public enum Base32 {
    static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    public static func encode(_ bytes: [UInt8], padding: Bool = false) -> String {
        var out = encodeToBytes(bytes, padding: padding)
        defer { for i in out.indices { out[i] = 0 } }
        return String(decoding: out, as: UTF8.self)
    }

    /// The Base32 text as ASCII bytes: for secrets that must not pass through a String
    /// (a sealed record's plaintext is built and wiped as bytes).
    public static func encodeToBytes(_ bytes: [UInt8], padding: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 4) / 5 * 8)
        var buffer: UInt64 = 0
        var bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt64(byte)
            bits += 8
            while bits >= 5 {
                bits -= 5
                out.append(alphabet[Int((buffer >> UInt64(bits)) & 0x1f)])
            }
        }
        if bits > 0 {
            out.append(alphabet[Int((buffer << UInt64(5 - bits)) & 0x1f)])
        }
        if padding {
            while out.count % 8 != 0 { out.append(UInt8(ascii: "=")) }
        }
        return out
    }

    /// Strict decoder over ASCII bytes, as `encodeToBytes` writes them (upper case, no
    /// padding, nothing else): nil for anything else.
    @inlinable
    public static func decodeStrict<C: Collection>(_ text: C) -> [UInt8]? where C.Element == UInt8 {
        var values: [UInt8] = []
        values.reserveCapacity(text.count)
        defer { for i in values.indices { values[i] = 0 } }
        for ascii in text {
            switch ascii {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): values.append(ascii - UInt8(ascii: "A"))
            case UInt8(ascii: "2")...UInt8(ascii: "7"): values.append(ascii - UInt8(ascii: "2") + 26)
            default: return nil
            }
        }
        return try? bytes(fromValues: values)
    }

    /// Forgiving decoder: lower case, spaces, hyphens and missing (or present, trailing)
    /// padding are accepted. Anything else throws `Base32Error.invalidCharacter` naming the
    /// character and its 1-based position.
    public static func decode(_ text: String) throws -> [UInt8] {
        var values: [UInt8] = []
        values.reserveCapacity(text.utf8.count)
        var paddingStarted = false
        var position = 0
        for character in text {
            position += 1
            let value: UInt8?
            if character == " " || character == "-" {
                continue
            } else if character == "=" {
                paddingStarted = true
                continue
            } else if let ascii = character.asciiValue {
                value = forgivingValue(ascii)
            } else {
                value = nil
            }
            guard let v = value else { throw Base32Error.invalidCharacter(character, position: position) }
            if paddingStarted {
                // Data after padding: the text stops making sense at this character.
                throw Base32Error.invalidCharacter(character, position: position)
            }
            values.append(v)
        }
        defer { for i in values.indices { values[i] = 0 } }
        return try bytes(fromValues: values)
    }

    /// `decode` over bytes that are not in a String (a secret read from a file stays out of
    /// String storage, so the caller can wipe every copy). Positions count bytes.
    public static func decode<C: Collection>(bytes text: C) throws -> [UInt8] where C.Element == UInt8 {
        var values: [UInt8] = []
        values.reserveCapacity(text.count)
        defer { for i in values.indices { values[i] = 0 } }
        var paddingStarted = false
        for (offset, ascii) in text.enumerated() {
            if ascii == UInt8(ascii: " ") || ascii == UInt8(ascii: "-") { continue }
            if ascii == UInt8(ascii: "=") { paddingStarted = true; continue }
            guard let v = forgivingValue(ascii), !paddingStarted else {
                throw Base32Error.invalidCharacter(ascii < 0x80 ? Character(Unicode.Scalar(ascii)) : "\u{FFFD}",
                                                   position: offset + 1)
            }
            values.append(v)
        }
        return try bytes(fromValues: values)
    }

    /// The 5-bit value of an ASCII letter (either case) or digit 2-7; nil for anything else.
    static func forgivingValue(_ ascii: UInt8) -> UInt8? {
        switch ascii {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return ascii - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return ascii - UInt8(ascii: "a")
        case UInt8(ascii: "2")...UInt8(ascii: "7"): return ascii - UInt8(ascii: "2") + 26
        default: return nil
        }
    }

    /// 5-bit values to bytes.
    @usableFromInline static func bytes(fromValues values: [UInt8]) throws -> [UInt8] {
        guard !values.isEmpty else { throw Base32Error.empty }
        switch values.count % 8 {
        case 1, 3, 6: throw Base32Error.invalidLength
        default: break
        }
        var out: [UInt8] = []
        out.reserveCapacity(values.count * 5 / 8)
        var buffer: UInt64 = 0
        var bits = 0
        for v in values {
            buffer = (buffer << 5) | UInt64(v)
            bits += 5
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: buffer >> UInt64(bits)))
            }
        }
        return out
    }
}
