// SPDX-License-Identifier: Apache-2.0
// HOTP (RFC 4226) and TOTP (RFC 6238). Pure: the clock is always passed in.
import TwoStepCrypto

/// The knobs an authenticator app and the server must agree on.
public struct OTPParameters: Equatable, Sendable {
    public var algorithm: HashAlgorithm
    public var digits: Int
    public var period: Int

    public init(algorithm: HashAlgorithm = .sha1, digits: Int = 6, period: Int = 30) {
        self.algorithm = algorithm
        self.digits = digits
        self.period = period
    }

    /// SHA1, 6 digits, 30 seconds: what every authenticator app supports.
    public static let standard = OTPParameters()

    /// Throws `OTPError` when digits or period are outside `OTPPolicy`.
    public func validate() throws {
        try OTPPolicy.check(digits: digits, period: period)
    }

    /// RFC 6238 §4: the time step that `unixTime` falls in for this authenticator. The one
    /// place "the step of now" is computed (login, status, admin unlock).
    public func step(at unixTime: Int64) -> Int64 {
        OTP.timeStep(at: unixTime, period: period)
    }

    /// The first second of `step` (for "last code at" in status).
    public func startOfStep(_ step: Int64) -> Int64 {
        step.multipliedReportingOverflow(by: Int64(period)).overflow ? .max : step * Int64(period)
    }
}

/// What twostep enrols, imports, stores and reads back: the one policy for every edge where
/// OTP parameters come in (config, `admin import`, the sealed record, otpauth URIs).
///
/// - digits 6 or 8: what authenticator apps show (RFC 4226 §5.3 asks for at least 6; 7
///   is valid arithmetic, but no common app offers it).
/// - periods 10 to 300 seconds: below 10 s a person cannot type a code before it expires;
///   above 300 s a seen code stays good for too long (with window 1, 15 minutes).
///
/// The arithmetic in `OTP` checks only what it needs (a positive period, 6 to 8 digits),
/// so tests can stand at the far ends of time.
public enum OTPPolicy {
    public static let digits: [Int] = [6, 8]
    public static let periods: ClosedRange<Int> = 10...300

    public static func check(digits: Int, period: Int) throws {
        guard Self.digits.contains(digits) else { throw OTPError.invalidDigits(digits) }
        guard Self.periods.contains(period) else { throw OTPError.invalidPeriod(period) }
    }

    /// "6 or 8", for messages.
    public static var digitsText: String { digits.map(String.init).joined(separator: " or ") }
    /// "10 to 300 seconds", for messages.
    public static var periodsText: String { "\(periods.lowerBound) to \(periods.upperBound) seconds" }
}

public enum OTPError: Error, Equatable, CustomStringConvertible {
    case invalidDigits(Int)
    case invalidPeriod(Int)
    case invalidWindow(Int)
    case emptySecret
    case timeBeforeEpoch(Int64)

    public var description: String {
        switch self {
        case .invalidDigits(let d):
            return "OTP length \(d) is not supported (allowed: \(OTPPolicy.digitsText))"
        case .invalidPeriod(let p):
            return "OTP period \(p)s is not supported (allowed: \(OTPPolicy.periodsText))"
        case .invalidWindow(let w): return "OTP window \(w) must not be negative"
        case .emptySecret: return "OTP secret is empty"
        case .timeBeforeEpoch(let t): return "time \(t) is before the Unix epoch"
        }
    }
}

public enum OTP {
    private static let powersOfTen: [UInt32] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000]

    /// RFC 4226 HOTP: HMAC over the big-endian 8-byte counter, dynamic truncation (§5.3),
    /// reduced modulo 10^digits and zero padded.
    /// What the arithmetic below can compute (powersOfTen); policy is `OTPPolicy`'s.
    static let computableDigits = 6...8

    public static func hotp(secret: [UInt8], counter: UInt64, digits: Int, algorithm: HashAlgorithm) throws -> String {
        guard computableDigits.contains(digits) else { throw OTPError.invalidDigits(digits) }
        guard !secret.isEmpty else { throw OTPError.emptySecret }
        var message = [UInt8](repeating: 0, count: 8)
        for i in 0..<8 { message[i] = UInt8(truncatingIfNeeded: counter >> (56 - 8 * UInt64(i))) }
        var mac = try Crypto.hmac(algorithm, key: secret, message: message)
        defer { Crypto.wipe(&mac) }
        let offset = Int(mac[mac.count - 1] & 0x0f)
        let binary = (UInt32(mac[offset] & 0x7f) << 24)
            | (UInt32(mac[offset + 1]) << 16)
            | (UInt32(mac[offset + 2]) << 8)
            | UInt32(mac[offset + 3])
        let value = binary % powersOfTen[digits]
        let text = String(value)
        return String(repeating: "0", count: digits - text.count) + text
    }

    /// RFC 6238 §4: T = floor((unixTime - T0) / period) with T0 = 0. Rounds towards
    /// negative infinity for times before the epoch. `period` must be positive.
    public static func timeStep(at unixTime: Int64, period: Int) -> Int64 {
        precondition(period > 0, "TOTP period must be positive")
        let p = Int64(period)
        let q = unixTime / p
        return (unixTime % p < 0) ? q - 1 : q
    }

    /// The TOTP code for the time step containing `unixTime`.
    public static func totp(secret: [UInt8], at unixTime: Int64, parameters: OTPParameters) throws -> String {
        try checkComputable(parameters)
        let step = parameters.step(at: unixTime)
        guard step >= 0 else { throw OTPError.timeBeforeEpoch(unixTime) }
        return try hotp(secret: secret, counter: UInt64(step), digits: parameters.digits, algorithm: parameters.algorithm)
    }

    /// A typed answer without spaces, tabs and line ends (people paste codes with them).
    /// Every byte is an ASCII decimal digit (true for no bytes).
    public static func isDecimal<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 {
        bytes.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }

    public static func strippingWhitespace(_ answer: [UInt8]) -> [UInt8] {
        answer.filter { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") && $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }
    }

    static func checkComputable(_ parameters: OTPParameters) throws {
        guard computableDigits.contains(parameters.digits) else { throw OTPError.invalidDigits(parameters.digits) }
        guard parameters.period > 0 else { throw OTPError.invalidPeriod(parameters.period) }
    }

    /// Removes spaces and returns the ASCII digits as bytes, or nil if the result is not
    /// exactly `digits` decimal digits.
    static func normalizedCode(_ code: [UInt8], digits: Int) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(digits)
        for byte in code where byte != UInt8(ascii: " ") {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), out.count < digits else { return nil }
            out.append(byte)
        }
        return out.count == digits ? out : nil
    }

    /// Checks `code` against the steps now-window ... now+window. Every candidate is
    /// computed and compared with `Crypto.constantTimeEqual` (no early exit). Returns the
    /// matched step (the highest if several match) or nil. A code that is not exactly
    /// `parameters.digits` decimal digits (spaces removed) is rejected before any crypto.
    /// Steps before the epoch are skipped.
    public static func matchTOTP(code: String, secret: [UInt8], at unixTime: Int64, parameters: OTPParameters, window: Int) throws -> Int64? {
        var bytes = Array(code.utf8)
        defer { Crypto.wipe(&bytes) }
        return try matchTOTP(code: bytes, secret: secret, at: unixTime, parameters: parameters, window: window)
    }

    /// The same over the answer's bytes, so an answer never has to become a String.
    public static func matchTOTP(code: [UInt8], secret: [UInt8], at unixTime: Int64, parameters: OTPParameters, window: Int) throws -> Int64? {
        try checkComputable(parameters)
        guard window >= 0 else { throw OTPError.invalidWindow(window) }
        guard var given = normalizedCode(code, digits: parameters.digits) else { return nil }
        defer { Crypto.wipe(&given) }
        guard !secret.isEmpty else { throw OTPError.emptySecret }
        let now = parameters.step(at: unixTime)
        let w = Int64(window)
        // now ± w clamped to 0...Int64.max without overflowing: steps before the epoch are
        // skipped, and a clock at the far end of Int64 (period 1) must not trap or wrap.
        let first = now < w ? 0 : now - w
        let last = now > Int64.max - w ? Int64.max : now + w
        guard first <= last else { return nil }
        var matched: Int64? = nil
        for step in first...last {
            var candidate = Array(try hotp(secret: secret, counter: UInt64(step), digits: parameters.digits, algorithm: parameters.algorithm).utf8)
            defer { Crypto.wipe(&candidate) }
            if Crypto.constantTimeEqual(candidate, given) {
                matched = step  // steps ascend, so the last match is the highest
            }
        }
        return matched
    }
}
