// SPDX-License-Identifier: Apache-2.0
import TwoStepCrypto

/// Maps a user name to the base of its file names in the state directory, reversibly and
/// safely: the result never holds '/', is never "." or "..", and stays under NAME_MAX.
///
/// - A plain name (`isPlainUserName`) is its own file name, as in every earlier version.
/// - Any other name is `%` followed by the name with each byte outside `[A-Za-z0-9._-]`
///   written as `%XX` (upper-case hex): `alice@corp` -> `%alice%40corp`.
/// - When that would be longer than `maxEscaped` (a long directory name), `%~` and the
///   SHA-256 of the name in hex: still one file per name. The name itself is kept beside
///   the record in `<base>.name` (not secret: a login name), so `enrolledUsers` can list it;
///   the record's associated data binds it to the name either way.
public enum UserFileName {
    /// The file beside a hashed base's record that holds its user name.
    public static let nameSuffix = ".name"

    /// Whether `base` is the hashed form (`%~` and a digest) of a long name.
    public static func isHashed(_ base: String) -> Bool { base.hasPrefix("%~") }

    /// The file naming the user of a hashed `base`; nil for any other base (its name is
    /// its file name).
    public static func nameFile(of base: String) -> String? { isHashed(base) ? base + nameSuffix : nil }

    /// Leaves room for ".record", and ".NAME.tmp.PID" of an atomic write, in 255 bytes.
    static let maxEscaped = 220

    public static func encode(_ user: String) throws -> String {
        guard isValidUserName(user) else { throw StoreError.invalidUser(user) }
        if isPlainUserName(user) { return user }
        let hexDigits = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = [UInt8(ascii: "%")]
        for b in user.utf8 {
            if isPlainByte(b) {
                out.append(b)
            } else {
                out += [UInt8(ascii: "%"), hexDigits[Int(b >> 4)], hexDigits[Int(b & 15)]]
            }
        }
        if out.count <= maxEscaped { return String(decoding: out, as: UTF8.self) }
        return "%~" + (try Crypto.sha256(Array(user.utf8))).map { b in
            String(decoding: [hexDigits[Int(b >> 4)], hexDigits[Int(b & 15)]], as: UTF8.self)
        }.joined()
    }

    /// The user name a file base stands for, or nil (hashed, or not ours).
    public static func decode(_ base: String) -> String? {
        let bytes = Array(base.utf8)
        guard bytes.first == UInt8(ascii: "%") else { return isPlainUserName(base) ? base : nil }
        var out: [UInt8] = []
        var i = 1
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%") {
                guard i + 2 < bytes.count, let hi = hexValue(bytes[i + 1]), let lo = hexValue(bytes[i + 2]) else { return nil }
                out.append(hi << 4 | lo)
                i += 3
            } else {
                guard isPlainByte(bytes[i]) else { return nil }
                out.append(bytes[i])
                i += 1
            }
        }
        guard let name = String(validating: out, as: UTF8.self),
              isValidUserName(name), !isPlainUserName(name),
              (try? encode(name)) == base else { return nil }
        return name
    }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
