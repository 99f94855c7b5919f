// SPDX-License-Identifier: Apache-2.0
// RFC 4648 §4 Base64, standard alphabet, with padding.
public enum Base64Error: Error, Equatable, CustomStringConvertible {
    /// `position` counts bytes of the input, starting at 1.
    case invalidCharacter(position: Int)
    case invalidLength
    case invalidPadding

    public var description: String {
        switch self {
        case .invalidCharacter(let p): return "invalid Base64 character at position \(p)"
        case .invalidLength: return "invalid Base64 length (must be a multiple of 4)"
        case .invalidPadding: return "invalid Base64 padding"
        }
    }
}

public enum Base64 {
    static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    static let reverse: [UInt8] = {
        var table = [UInt8](repeating: 0xff, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = UInt8(i) }
        return table
    }()

    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 3 <= bytes.count {
            let n = (UInt32(bytes[i]) << 16) | (UInt32(bytes[i + 1]) << 8) | UInt32(bytes[i + 2])
            out.append(alphabet[Int(n >> 18)]); out.append(alphabet[Int((n >> 12) & 63)])
            out.append(alphabet[Int((n >> 6) & 63)]); out.append(alphabet[Int(n & 63)])
            i += 3
        }
        switch bytes.count - i {
        case 1:
            let n = UInt32(bytes[i]) << 16
            out.append(alphabet[Int(n >> 18)]); out.append(alphabet[Int((n >> 12) & 63)])
            out.append(UInt8(ascii: "=")); out.append(UInt8(ascii: "="))
        case 2:
            let n = (UInt32(bytes[i]) << 16) | (UInt32(bytes[i + 1]) << 8)
            out.append(alphabet[Int(n >> 18)]); out.append(alphabet[Int((n >> 12) & 63)])
            out.append(alphabet[Int((n >> 6) & 63)]); out.append(UInt8(ascii: "="))
        default: break
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Strict decoder: only the standard alphabet, length a multiple of 4, '=' only as the
    /// final one or two characters, unused bits zero. Trailing whitespace (e.g. a newline) is ignored.
    public static func decode(_ text: String) throws -> [UInt8] {
        var input = Array(text.utf8)
        while let last = input.last, last == 0x20 || last == 0x0a || last == 0x0d || last == 0x09 { input.removeLast() }
        guard input.count % 4 == 0 else {
            if let bad = input.firstIndex(where: { reverse[Int($0)] == 0xff && $0 != UInt8(ascii: "=") }) {
                throw Base64Error.invalidCharacter(position: bad + 1)
            }
            throw Base64Error.invalidLength
        }
        var pad = 0
        if input.last == UInt8(ascii: "=") {
            pad = input[input.count - 2] == UInt8(ascii: "=") ? 2 : 1
        }
        var out: [UInt8] = []
        out.reserveCapacity(input.count / 4 * 3)
        var i = 0
        while i < input.count {
            var n: UInt32 = 0
            let isLast = i + 4 == input.count
            for j in 0..<4 {
                let c = input[i + j]
                if c == UInt8(ascii: "=") {
                    guard isLast, j >= 4 - pad else { throw Base64Error.invalidPadding }
                    n <<= 6
                    continue
                }
                if isLast, j >= 4 - pad { throw Base64Error.invalidPadding }
                let v = reverse[Int(c)]
                guard v != 0xff else { throw Base64Error.invalidCharacter(position: i + j + 1) }
                n = (n << 6) | UInt32(v)
            }
            let produced = isLast ? 3 - pad : 3
            if isLast {
                // Non-canonical encodings (stray bits under the padding) are refused.
                if pad == 1, n & 0xff != 0 { throw Base64Error.invalidPadding }
                if pad == 2, n & 0xffff != 0 { throw Base64Error.invalidPadding }
            }
            out.append(UInt8(truncatingIfNeeded: n >> 16))
            if produced > 1 { out.append(UInt8(truncatingIfNeeded: n >> 8)) }
            if produced > 2 { out.append(UInt8(truncatingIfNeeded: n)) }
            i += 4
        }
        return out
    }
}
