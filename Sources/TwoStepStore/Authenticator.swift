// SPDX-License-Identifier: Apache-2.0
import TwoStepCore
import TwoStepCrypto

/// Time based (RFC 6238) or counter based (RFC 4226: hardware OATH tokens, YubiKey
/// OATH-HOTP, FreeOTP counters).
public enum AuthenticatorKind: String, CaseIterable, Sendable {
    case totp, hotp
}

/// One named device that makes codes for a user: a phone app, a second phone, a token.
/// The secret stays in SecretBytes (wiped on release); nothing else here is secret.
public final class Authenticator {
    /// The name a record written before several authenticators gets, and a first enrolment.
    public static let defaultName = "default"
    /// At most this many per user: it bounds the record, the state (one line each) and the
    /// work of one login (every authenticator is tried).
    public static let maxCount = 16

    public let name: String
    public let kind: AuthenticatorKind
    public let secret: SecretBytes
    /// For HOTP the period means nothing (kept at 30, written as `-`).
    public let parameters: OTPParameters
    /// When it was added (Unix time).
    public let added: Int64

    public init(name: String = Authenticator.defaultName, kind: AuthenticatorKind = .totp, secret: [UInt8],
                parameters: OTPParameters, added: Int64) {
        self.name = name
        self.kind = kind
        self.secret = SecretBytes(secret)
        self.parameters = kind == .hotp ? OTPParameters(algorithm: parameters.algorithm, digits: parameters.digits) : parameters
        self.added = added
    }

    /// `[a-z0-9-]{1,32}`: safe in a record line, an audit detail and a command line.
    public static func isValidName(_ name: String) -> Bool { isValidName(name.utf8) }

    public static func isValidName<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 {
        (1...32).contains(bytes.count) && bytes.allSatisfy {
            ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "-")
        }
    }

    public static let nameRule = "1 to 32 of a-z, 0-9 and -"

    /// Whether `other` holds the same secret (compared in constant time).
    public func hasSameSecret(as other: Authenticator) -> Bool {
        secret.sameBytes(as: other.secret)
    }

    /// Whether `other` makes its codes from the same HMACs: the same secret, kind and
    /// algorithm and (TOTP) period. The digit count does not matter: a 6-digit code is the
    /// last six digits of the 8-digit code of the same step or counter, so a step one of them
    /// spent is spent for the other (a reviewer's used 8-digit code passed, as its last six
    /// digits, after `import --replace --digits 6` of the same secret).
    public func givesSameCodes(as other: Authenticator) -> Bool {
        kind == other.kind && parameters.algorithm == other.parameters.algorithm
            && (kind == .hotp || parameters.period == other.parameters.period) && hasSameSecret(as: other)
    }

    /// `totp default`, `hotp yubikey`: how the audit log and messages name it.
    public var label: String { kind.rawValue + " " + name }

    /// The record line's value: `NAME TYPE ALGORITHM DIGITS PERIOD|- ADDED BASE32SECRET`,
    /// built as bytes so the secret never passes through a String (the caller wipes it).
    func serialized() -> [UInt8] {
        var out = Array("\(name) \(kind.rawValue) \(parameters.algorithm.rawValue) \(parameters.digits) \(kind == .totp ? String(parameters.period) : "-") \(added) ".utf8)
        secret.withBytes { plain in
            var text = Base32.encodeToBytes(plain)
            out += text
            Crypto.wipe(&text)
        }
        return out
    }

    /// Reads a record line's value (see `serialized`); nil when anything is off. The secret
    /// goes from `bytes` to SecretBytes without a String.
    static func parse(_ bytes: ArraySlice<UInt8>) -> Authenticator? {
        guard let lastSpace = bytes.lastIndex(of: UInt8(ascii: " ")) else { return nil }
        // Split as bytes (a String's split walks grapheme clusters): a valid line is ASCII
        // before the secret, and a field holding any other byte fails its check either way.
        let fields = bytes[bytes.startIndex..<lastSpace].split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        func text(_ field: ArraySlice<UInt8>) -> String { String(decoding: field, as: UTF8.self) }
        guard fields.count == 6, isValidName(fields[0]),
              let kind = AuthenticatorKind(rawValue: text(fields[1])),
              let alg = HashAlgorithm(name: text(fields[2])),
              let digits = decimalInteger(fields[3], as: Int.self), OTPPolicy.digits.contains(digits),
              let added = decimalInteger(fields[5], as: Int64.self) else { return nil }
        var period = 30
        if kind == .totp {
            guard let p = decimalInteger(fields[4], as: Int.self), OTPPolicy.periods.contains(p) else { return nil }
            period = p
        } else {
            guard fields[4].elementsEqual([UInt8(ascii: "-")]) else { return nil }
        }
        guard var secret = Base32.decodeStrict(bytes[bytes.index(after: lastSpace)...]) else { return nil }
        defer { Crypto.wipe(&secret) }
        guard secret.count >= 10 else { return nil }
        return Authenticator(name: text(fields[0]), kind: kind, secret: secret,
                             parameters: OTPParameters(algorithm: alg, digits: digits, period: period), added: added)
    }
}
