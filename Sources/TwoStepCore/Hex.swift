// SPDX-License-Identifier: Apache-2.0
// Lower-case hex, as the sealed record stores keys and hashes.
import TwoStepCrypto

public func isHexDigit(_ b: UInt8) -> Bool {
    (b >= 48 && b <= 57) || (b >= 97 && b <= 102)
}

/// The value of a hex digit in either case (JSON's \u escapes, URI percent escapes).
public func hexDigitValue(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
    default: return nil
    }
}

public func hex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count * 2)
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 0x0f)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// Lower-case hex only (what `hex` writes), as the sealed record stores it.
public func unhex(_ s: Substring) -> [UInt8]? {
    let u = Array(s.utf8)
    guard !u.contains(where: { $0 >= 65 && $0 <= 70 }) else { return nil }
    return decodeHex(u)
}

/// Hex in either case, over bytes (a secret read from a file never becomes a String).
public func decodeHex<C: Collection>(_ text: C) -> [UInt8]? where C.Element == UInt8 {
    var u = Array(text)
    defer { Crypto.wipe(&u) }
    guard u.count % 2 == 0 else { return nil }
    var out: [UInt8] = []
    out.reserveCapacity(u.count / 2)
    var i = 0
    while i < u.count {
        guard let hi = hexDigitValue(u[i]), let lo = hexDigitValue(u[i + 1]) else { return nil }
        out.append(hi << 4 | lo)
        i += 2
    }
    return out
}

/// What `percentDecoded` does with a `%` that two hex digits do not follow.
public enum MalformedEscape {
    /// The whole text is refused (nil): an otpauth URI.
    case refuse
    /// The `%` stays as it is, as libpq treats it: a connection string checked for a password.
    case keep
}

/// `%XX` (two hex digits, either case) as the byte it stands for, and `+` as a space when
/// `plusIsSpace` (a URI's query). nil only for a malformed escape with `.refuse`.
public func percentDecoded(_ bytes: [UInt8], plusIsSpace: Bool = false, malformed: MalformedEscape) -> [UInt8]? {
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count)
    var i = 0
    while i < bytes.count {
        let b = bytes[i]
        if b == UInt8(ascii: "%") {
            if i + 2 < bytes.count, let hi = hexDigitValue(bytes[i + 1]), let lo = hexDigitValue(bytes[i + 2]) {
                out.append(hi << 4 | lo)
                i += 3
                continue
            }
            guard malformed == .keep else { return nil }
        }
        out.append(plusIsSpace && b == UInt8(ascii: "+") ? UInt8(ascii: " ") : b)
        i += 1
    }
    return out
}
