// SPDX-License-Identifier: Apache-2.0
import XCTest
import TwoStepCore
import TwoStepCrypto

final class OTPTests: XCTestCase {
    let rfcSecret = ascii("12345678901234567890")

    func testRFC4226AppendixDVectors() throws {
        let expected = ["755224", "287082", "359152", "969429", "338314",
                        "254676", "287922", "162583", "399871", "520489"]
        for (counter, code) in expected.enumerated() {
            XCTAssertEqual(try OTP.hotp(secret: rfcSecret, counter: UInt64(counter), digits: 6, algorithm: .sha1), code, "counter \(counter)")
        }
    }

    func testRFC6238AppendixBVectors() throws {
        let seeds: [HashAlgorithm: [UInt8]] = [
            .sha1: ascii("12345678901234567890"),
            .sha256: ascii("12345678901234567890123456789012"),
            .sha512: ascii("1234567890123456789012345678901234567890123456789012345678901234"),
        ]
        let table: [(Int64, HashAlgorithm, String)] = [
            (59, .sha1, "94287082"), (59, .sha256, "46119246"), (59, .sha512, "90693936"),
            (1111111109, .sha1, "07081804"), (1111111109, .sha256, "68084774"), (1111111109, .sha512, "25091201"),
            (1111111111, .sha1, "14050471"), (1111111111, .sha256, "67062674"), (1111111111, .sha512, "99943326"),
            (1234567890, .sha1, "89005924"), (1234567890, .sha256, "91819424"), (1234567890, .sha512, "93441116"),
            (2000000000, .sha1, "69279037"), (2000000000, .sha256, "90698825"), (2000000000, .sha512, "38618901"),
            (20000000000, .sha1, "65353130"), (20000000000, .sha256, "77737706"), (20000000000, .sha512, "47863826"),
        ]
        XCTAssertEqual(table.count, 18)
        for (time, algorithm, code) in table {
            let parameters = OTPParameters(algorithm: algorithm, digits: 8, period: 30)
            XCTAssertEqual(try OTP.totp(secret: seeds[algorithm]!, at: time, parameters: parameters), code, "\(algorithm) at \(time)")
        }
    }

    func testTimeStepIsFloorDivision() {
        XCTAssertEqual(OTP.timeStep(at: 0, period: 30), 0)
        XCTAssertEqual(OTP.timeStep(at: 29, period: 30), 0)
        XCTAssertEqual(OTP.timeStep(at: 30, period: 30), 1)
        XCTAssertEqual(OTP.timeStep(at: 59, period: 30), 1)
        XCTAssertEqual(OTP.timeStep(at: 1111111109, period: 30), 0x23523EC)
        XCTAssertEqual(OTP.timeStep(at: 20000000000, period: 30), 0x27BC86AA)
        XCTAssertEqual(OTP.timeStep(at: -1, period: 30), -1)
        XCTAssertEqual(OTP.timeStep(at: -30, period: 30), -1)
        XCTAssertEqual(OTP.timeStep(at: -31, period: 30), -2)
        XCTAssertEqual(OTP.timeStep(at: 119, period: 60), 1)
    }

    func testCodesAreZeroPadded() throws {
        // RFC 6238 at 1111111109 (SHA1, 8 digits) starts with a zero.
        XCTAssertEqual(try OTP.totp(secret: rfcSecret, at: 1111111109, parameters: OTPParameters(digits: 8)), "07081804")
        XCTAssertEqual(try OTP.totp(secret: rfcSecret, at: 1111111109, parameters: .standard).count, 6)
    }

    func testInvalidParametersThrow() {
        XCTAssertThrowsError(try OTP.hotp(secret: rfcSecret, counter: 0, digits: 5, algorithm: .sha1), equals: OTPError.invalidDigits(5))
        XCTAssertThrowsError(try OTP.hotp(secret: [], counter: 0, digits: 6, algorithm: .sha1), equals: OTPError.emptySecret)
        XCTAssertThrowsError(try OTP.totp(secret: rfcSecret, at: 0, parameters: OTPParameters(period: 0)), equals: OTPError.invalidPeriod(0))
        XCTAssertThrowsError(try OTP.totp(secret: rfcSecret, at: -5, parameters: .standard), equals: OTPError.timeBeforeEpoch(-5))
        XCTAssertThrowsError(try OTP.matchTOTP(code: "123456", secret: rfcSecret, at: 0, parameters: .standard, window: -1), equals: OTPError.invalidWindow(-1))
    }

    func testStandardParameters() {
        XCTAssertEqual(OTPParameters.standard, OTPParameters(algorithm: .sha1, digits: 6, period: 30))
    }

    // MARK: matchTOTP

    let now: Int64 = 1_700_000_015  // inside step 56666667
    func code(at step: Int64, _ parameters: OTPParameters = .standard) throws -> String {
        try OTP.hotp(secret: rfcSecret, counter: UInt64(step), digits: parameters.digits, algorithm: parameters.algorithm)
    }

    func testMatchTOTPAcceptsWindowEdges() throws {
        let step = OTP.timeStep(at: now, period: 30)
        for window in [0, 1, 2] {
            for offset in -window...window {
                let s = step + Int64(offset)
                XCTAssertEqual(try OTP.matchTOTP(code: try code(at: s), secret: rfcSecret, at: now, parameters: .standard, window: window), s,
                               "window \(window) offset \(offset)")
            }
        }
    }

    func testMatchTOTPRejectsJustOutsideWindow() throws {
        let step = OTP.timeStep(at: now, period: 30)
        for window in [0, 1, 2] {
            for s in [step - Int64(window) - 1, step + Int64(window) + 1] {
                let c = try code(at: s)
                // Make sure the outside code does not coincide with an inside one.
                let inside = try (step - Int64(window)...step + Int64(window)).map { try code(at: $0) }
                guard !inside.contains(c) else { continue }
                XCTAssertNil(try OTP.matchTOTP(code: c, secret: rfcSecret, at: now, parameters: .standard, window: window), "window \(window) step \(s)")
            }
        }
    }

    func testMatchTOTPRejectsMalformedCodes() throws {
        let good = try code(at: OTP.timeStep(at: now, period: 30))
        let p = OTPParameters.standard
        XCTAssertNotNil(try OTP.matchTOTP(code: good, secret: rfcSecret, at: now, parameters: p, window: 1))
        XCTAssertNotNil(try OTP.matchTOTP(code: String(good.prefix(3)) + " " + String(good.suffix(3)), secret: rfcSecret, at: now, parameters: p, window: 1))
        XCTAssertNil(try OTP.matchTOTP(code: String(good.dropLast()), secret: rfcSecret, at: now, parameters: p, window: 1))
        XCTAssertNil(try OTP.matchTOTP(code: good + "0", secret: rfcSecret, at: now, parameters: p, window: 1))
        XCTAssertNil(try OTP.matchTOTP(code: "", secret: rfcSecret, at: now, parameters: p, window: 1))
        XCTAssertNil(try OTP.matchTOTP(code: "12a456", secret: rfcSecret, at: now, parameters: p, window: 1))
        XCTAssertNil(try OTP.matchTOTP(code: "١٢٣٤٥٦", secret: rfcSecret, at: now, parameters: p, window: 1))  // Arabic-Indic digits
        XCTAssertNil(try OTP.matchTOTP(code: "+12345", secret: rfcSecret, at: now, parameters: p, window: 1))
        // Malformed codes are rejected before any crypto, so even an empty secret is no error.
        XCTAssertNil(try OTP.matchTOTP(code: "12345", secret: [], at: now, parameters: p, window: 1))
    }

    func testMatchTOTPWithEightDigitsAndSHA512() throws {
        let p = OTPParameters(algorithm: .sha512, digits: 8, period: 60)
        let step = OTP.timeStep(at: now, period: 60)
        let c = try code(at: step - 1, p)
        XCTAssertEqual(try OTP.matchTOTP(code: c, secret: rfcSecret, at: now, parameters: p, window: 1), step - 1)
        XCTAssertNil(try OTP.matchTOTP(code: String(c.prefix(6)), secret: rfcSecret, at: now, parameters: p, window: 1))
    }

    func testMatchTOTPSkipsStepsBeforeEpoch() throws {
        let c = try code(at: 0)
        XCTAssertEqual(try OTP.matchTOTP(code: c, secret: rfcSecret, at: 5, parameters: .standard, window: 3), 0)
    }
}
