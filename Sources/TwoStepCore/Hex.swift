// SPDX-License-Identifier: Apache-2.0
// Lower-case hex, as the sealed record stores keys and hashes.
import TwoStepCrypto

public func isHexDigit(_ b: UInt8) -> Bool {
    (b >= 48 && b <= 57) || (b >= 97 && b <= 102)
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
    func v(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 65...70: return c - 55
        case 97...102: return c - 87
        default: return nil
        }
    }
    var out: [UInt8] = []
    out.reserveCapacity(u.count / 2)
    var i = 0
    while i < u.count {
        guard let hi = v(u[i]), let lo = v(u[i + 1]) else { return nil }
        out.append(hi << 4 | lo)
        i += 2
    }
    return out
}
