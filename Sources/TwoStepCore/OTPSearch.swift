// SPDX-License-Identifier: Apache-2.0
// Searching a range of HOTP counters (RFC 4226 §7.4, resynchronisation) for a typed code.
// Pure, like OTP.swift: the counters and the clock come from the caller.
import TwoStepCrypto

extension OTP {
    /// Checks `code` against every counter in `counters`, each compared with
    /// `Crypto.constantTimeEqual` (no early exit). Returns the lowest matching counter, or
    /// nil. A code that is not exactly `digits` decimal digits is rejected before any crypto.
    /// HOTP look-ahead (RFC 4226 §7.4) and TOTP steps both go through here.
    public static func matchCounter(code: [UInt8], secret: [UInt8], counters: ClosedRange<UInt64>,
                                    digits: Int, algorithm: HashAlgorithm) throws -> UInt64? {
        guard computableDigits.contains(digits) else { throw OTPError.invalidDigits(digits) }
        guard var given = normalizedCode(code, digits: digits) else { return nil }
        defer { Crypto.wipe(&given) }
        guard !secret.isEmpty else { throw OTPError.emptySecret }
        var matched: UInt64? = nil
        for counter in counters {
            var candidate = Array(try hotp(secret: secret, counter: counter, digits: digits, algorithm: algorithm).utf8)
            defer { Crypto.wipe(&candidate) }
            if Crypto.constantTimeEqual(candidate, given), matched == nil {
                matched = counter
            }
        }
        return matched
    }

    /// Resynchronisation: the first counter c in `counters` whose code is `first` while the
    /// code of c + 1 is `second` (two codes the token showed one after the other), or nil.
    /// One code alone could match by chance (one in 10^digits per counter); two in a row
    /// across 1000 counters, about one in 10^9 for six digits.
    public static func findConsecutive(_ first: [UInt8], _ second: [UInt8], secret: [UInt8],
                                       counters: ClosedRange<UInt64>, digits: Int,
                                       algorithm: HashAlgorithm) throws -> UInt64? {
        guard computableDigits.contains(digits) else { throw OTPError.invalidDigits(digits) }
        guard var a = normalizedCode(first, digits: digits), var b = normalizedCode(second, digits: digits) else { return nil }
        defer { Crypto.wipe(&a); Crypto.wipe(&b) }
        guard !secret.isEmpty else { throw OTPError.emptySecret }
        guard counters.upperBound < UInt64.max else { return nil }
        var previousMatched = false
        var found: UInt64? = nil
        for counter in counters.lowerBound...(counters.upperBound + 1) {
            var candidate = Array(try hotp(secret: secret, counter: counter, digits: digits, algorithm: algorithm).utf8)
            defer { Crypto.wipe(&candidate) }
            if previousMatched, found == nil, Crypto.constantTimeEqual(candidate, b) { found = counter - 1 }
            previousMatched = counter <= counters.upperBound && Crypto.constantTimeEqual(candidate, a)
        }
        return found
    }
}
