// SPDX-License-Identifier: Apache-2.0
// New OTP secrets and one-time backup codes.
import TwoStepCrypto

public enum SecretGeneratorError: Error, Equatable, CustomStringConvertible {
    case tooShort(Int)
    case tooLong(Int)
    public var description: String {
        switch self {
        case .tooShort(let n): return "an OTP secret needs at least \(SecretGenerator.minimumBytes) bytes (160 bits); \(n) requested"
        case .tooLong(let n): return "an OTP secret of \(n) bytes is unreasonably long (at most \(SecretGenerator.maximumBytes))"
        }
    }
}

public enum SecretGenerator {
    public static let defaultBytes = 20
    public static let minimumBytes = 20
    public static let maximumBytes = 128

    /// A fresh secret from OpenSSL's CSPRNG; at least 20 bytes (RFC 4226 §4 recommends 160 bits).
    public static func newSecret(bytes: Int = 20) throws -> [UInt8] {
        guard bytes >= minimumBytes else { throw SecretGeneratorError.tooShort(bytes) }
        guard bytes <= maximumBytes else { throw SecretGeneratorError.tooLong(bytes) }
        return try Crypto.randomBytes(bytes)
    }
}

public enum BackupCodes {
    public static let count = 10
    /// Characters per code (without the hyphen).
    public static let length = 10
    /// Crockford's Base32, lower case: no i, l, o or u.
    public static let alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
    static let alphabetBytes: [UInt8] = Array(alphabet.utf8)

    /// `count` distinct codes of `length` characters (50 random bits each), shown as "xxxxx-xxxxx".
    /// Each character takes exactly 5 bits of RAND_bytes output, so there is no modulo bias.
    public static func generate() throws -> [String] {
        var codes: [String] = []
        while codes.count < count {
            let code = try randomCode(length: length)
            if !codes.contains(code) { codes.append(code) }
        }
        return codes
    }

    /// google-authenticator's scratch codes, imported as backup codes: 8 decimal digits.
    public static let scratchCodeLength = 8
    /// One code of `length` characters of the alphabet (5 random bits each), a hyphen
    /// after the first half: backup codes (10) and the short-lived mailed and support
    /// codes (8, `shortLength`).
    public static func randomCode(length: Int) throws -> String {
        var random = try Crypto.randomBytes((5 * length + 7) / 8)
        defer { Crypto.wipe(&random) }
        var chars: [UInt8] = []
        var buffer: UInt64 = 0, bits = 0, taken = 0
        for b in random {
            buffer = (buffer << 8) | UInt64(b)
            bits += 8
            while bits >= 5 && taken < length {
                bits -= 5
                if taken == length / 2 { chars.append(UInt8(ascii: "-")) }
                chars.append(alphabetBytes[Int((buffer >> UInt64(bits)) & 0x1f)])
                taken += 1
            }
        }
        buffer = 0
        return String(decoding: chars, as: UTF8.self)
    }

    /// Characters of a mailed login code, an address confirmation or a support recovery code.
    public static let shortLength = 8

    /// Lower-cases, drops spaces and hyphens, maps o to 0 and i, l to 1. Returns nil unless
    /// exactly `length` characters of the alphabet remain, or exactly `scratchCodeLength`
    /// decimal digits (an imported scratch code, kept as typed: its own hash input, which a
    /// `length`-character code can never equal).
    public static func normalize(_ input: String) -> String? {
        normalize(Array(input.utf8)).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The same over bytes, so a typed answer never has to become a String.
    public static func normalize(_ input: [UInt8], length: Int = BackupCodes.length) -> [UInt8]? {
        var digits = input.filter { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "-") }
        if digits.count == scratchCodeLength, OTP.isDecimal(digits) {
            return digits
        }
        Crypto.wipe(&digits)
        var out: [UInt8] = []
        out.reserveCapacity(length)
        for var b in input {
            if b == UInt8(ascii: " ") || b == UInt8(ascii: "-") { continue }
            if b >= UInt8(ascii: "A"), b <= UInt8(ascii: "Z") { b += 32 }
            switch b {
            case UInt8(ascii: "o"): b = UInt8(ascii: "0")
            case UInt8(ascii: "i"), UInt8(ascii: "l"): b = UInt8(ascii: "1")
            default: break
            }
            guard alphabetBytes.contains(b), out.count < length else { return nil }
            out.append(b)
        }
        guard out.count == length else { return nil }
        return out
    }

    /// HMAC-SHA256(key, normalized code). Codes are stored only as these keyed hashes.
    public static func hash(_ normalizedCode: String, key: [UInt8]) throws -> [UInt8] {
        try hash(Array(normalizedCode.utf8), key: key)
    }

    public static func hash(_ normalizedCode: [UInt8], key: [UInt8]) throws -> [UInt8] {
        try Crypto.hmac(.sha256, key: key, message: normalizedCode)
    }

    /// The index of the stored hash that `input` matches, or nil. Input that does not
    /// normalize is refused before any crypto; otherwise every stored hash is compared in
    /// constant time, with no early exit (the first index wins if hashes repeat).
    public static func match(_ input: String, hashes: [[UInt8]], key: [UInt8]) throws -> Int? {
        var bytes = Array(input.utf8)
        defer { Crypto.wipe(&bytes) }
        return try match(bytes, hashes: hashes, key: key)
    }

    public static func match(_ input: [UInt8], hashes: [[UInt8]], key: [UInt8]) throws -> Int? {
        guard var code = normalize(input) else { return nil }
        defer { Crypto.wipe(&code) }
        var digest = try hash(code, key: key)
        defer { Crypto.wipe(&digest) }
        var found: Int? = nil
        for (index, stored) in hashes.enumerated() {
            let equal = Crypto.constantTimeEqual(stored, digest)
            if equal && found == nil { found = index }
        }
        return found
    }

    public static func looksLikeBackupCode(_ input: String) -> Bool {
        normalize(input) != nil
    }
}
