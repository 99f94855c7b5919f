// SPDX-License-Identifier: Apache-2.0
// The files of google-authenticator-libpam and pam_oath, read as their documentation
// describes them (FILEFORMAT; liboath's UsersFile).
import XCTest
@testable import TwoStepCore
import TwoStepCrypto

final class GoogleAuthenticatorFileTests: XCTestCase {
    /// A TOTP file as `google-authenticator -t -d -r 3 -R 30 -w 3 -e 5` writes it.
    let totpFile = """
    7TJVQQ3DE2K3OKFLPJZDMB55HM
    " RATE_LIMIT 3 30
    " WINDOW_SIZE 3
    " DISALLOW_REUSE
    " TOTP_AUTH
    25576066
    88032361
    30385374
    24055600
    18525601

    """

    func testTOTPFileAsTheToolWritesIt() throws {
        let f = try GoogleAuthenticatorFile.parse(ascii(totpFile))
        XCTAssertEqual(f.secret.bytes, try Base32.decode("7TJVQQ3DE2K3OKFLPJZDMB55HM"))
        XCTAssertEqual(f.mode, .totp(stepSize: 30))
        XCTAssertEqual(f.windowSize, 3)
        XCTAssertEqual(f.usedSteps, [])
        XCTAssertEqual(f.rateLimit?.attempts, 3)
        XCTAssertEqual(f.rateLimit?.seconds, 30)
        XCTAssertNil(f.timeSkew)
        XCTAssertFalse(f.otpDisabled)
        XCTAssertEqual(f.scratchCodes.map { String(decoding: $0.bytes, as: UTF8.self) },
                       ["25576066", "88032361", "30385374", "24055600", "18525601"])
        XCTAssertEqual(f.unknownOptions, [])
    }

    func testHOTPFileAsTheToolWritesIt() throws {
        let f = try GoogleAuthenticatorFile.parse(ascii("DMCB2WYL4RFL4OH4OQHREQZY2Y\n\" WINDOW_SIZE 5\n\" HOTP_COUNTER 1\n94995141\n"))
        XCTAssertEqual(f.mode, .hotp(nextCounter: 1))
        XCTAssertEqual(f.windowSize, 5)
        XCTAssertNil(f.usedSteps)
        XCTAssertEqual(f.scratchCodes.count, 1)
    }

    /// The state the module writes back after logins: used steps, a learned skew, the
    /// rate limiter's timestamps, an advanced counter.
    func testStateTheModuleWritesBack() throws {
        let text = """
        JBSWY3DPEHPK3PXP
        " RATE_LIMIT 3 30 1764400000 1764400010
        " DISALLOW_REUSE 58813333 58813334
        " TIME_SKEW -2
        " RESETTING_TIME_SKEW 58813330-2 58813331-2
        " STEP_SIZE 60
        " TOTP_AUTH
        """
        let f = try GoogleAuthenticatorFile.parse(ascii(text))
        XCTAssertEqual(f.mode, .totp(stepSize: 60))
        XCTAssertEqual(f.usedSteps, [58813333, 58813334])
        XCTAssertEqual(f.timeSkew, -2)
        XCTAssertEqual(f.rateLimit?.attempts, 3)
        XCTAssertEqual(f.scratchCodes.count, 0)
    }

    /// FILEFORMAT: HOTP_COUNTER wins over TOTP_AUTH; neither means no OTP mode.
    func testModeRules() throws {
        XCTAssertEqual(try GoogleAuthenticatorFile.parse(ascii("JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n\" HOTP_COUNTER 7\n")).mode,
                       .hotp(nextCounter: 7))
        XCTAssertNil(try GoogleAuthenticatorFile.parse(ascii("JBSWY3DPEHPK3PXP\n12345678\n")).mode)
        XCTAssertTrue(try GoogleAuthenticatorFile.parse(ascii("JBSWY3DPEHPK3PXP\n\" OTP_DISABLED\n\" TOTP_AUTH\n")).otpDisabled)
    }

    func testSecretIsReadLikeTheModule() throws {
        // Lower case, spaces and CRLF line ends.
        let f = try GoogleAuthenticatorFile.parse(ascii("jbsw y3dp ehpk 3pxp\r\n\" TOTP_AUTH\r\n"))
        XCTAssertEqual(f.secret.bytes, ascii("Hello!") + [0xde, 0xad, 0xbe, 0xef])
        XCTAssertEqual(f.mode, .totp(stepSize: 30))
        // The module reads 0, 1 and 8 as O, L and B, and takes any length, dropping the
        // bits of a last partial byte (checked against pam_google_authenticator: both log in).
        let typo = try GoogleAuthenticatorFile.parse(ascii("JBSWY3DPEHPK3PX0\n\" TOTP_AUTH\n"))
        XCTAssertEqual(typo.secret.bytes, try GoogleAuthenticatorFile.parse(ascii("JBSWY3DPEHPK3PXO\n\" TOTP_AUTH\n")).secret.bytes)
        let long = try GoogleAuthenticatorFile.parse(ascii("JBSWY3DPEHPK3PXPA\n\" TOTP_AUTH\n"))
        XCTAssertEqual(long.secret.bytes, ascii("Hello!") + [0xde, 0xad, 0xbe, 0xef])  // 85 bits: the last 5 dropped
    }

    func testUnknownOptionsAreKeptForTheReport() throws {
        let f = try GoogleAuthenticatorFile.parse(ascii("JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n\" AUTH_CACHE 1\n"))
        XCTAssertEqual(f.unknownOptions, ["AUTH_CACHE"])
    }

    func testDamagedFilesAreRefused() {
        XCTAssertThrowsError(try GoogleAuthenticatorFile.parse([]), equals: GoogleAuthenticatorFileError.empty)
        XCTAssertThrowsError(try GoogleAuthenticatorFile.parse(ascii("JBSWY3DP\0EHPK3PXP\n")), equals: GoogleAuthenticatorFileError.nulByte)
        XCTAssertThrowsError(try GoogleAuthenticatorFile.parse(ascii("not base32!\n\" TOTP_AUTH\n")), equals: GoogleAuthenticatorFileError.badSecret)
        XCTAssertThrowsError(try GoogleAuthenticatorFile.parse(ascii("\n\" TOTP_AUTH\n")), equals: GoogleAuthenticatorFileError.badSecret)
        XCTAssertThrowsError(try GoogleAuthenticatorFile.parse(ascii("JBSWY3DPEHPK3PXP\n\" STEP_SIZE 0\n\" TOTP_AUTH\n")),
                             equals: GoogleAuthenticatorFileError.badOption(line: 2, name: "STEP_SIZE"))
        XCTAssertThrowsError(try GoogleAuthenticatorFile.parse(ascii("JBSWY3DPEHPK3PXP\n\" WINDOW_SIZE 101\n")),
                             equals: GoogleAuthenticatorFileError.badOption(line: 2, name: "WINDOW_SIZE"))
        XCTAssertThrowsError(try GoogleAuthenticatorFile.parse(ascii("JBSWY3DPEHPK3PXP\n\" HOTP_COUNTER 0\n")),
                             equals: GoogleAuthenticatorFileError.badOption(line: 2, name: "HOTP_COUNTER"))
        XCTAssertThrowsError(try GoogleAuthenticatorFile.parse(ascii("JBSWY3DPEHPK3PXP\n\" DISALLOW_REUSE 12 x\n")),
                             equals: GoogleAuthenticatorFileError.badOption(line: 2, name: "DISALLOW_REUSE"))
        XCTAssertThrowsError(try GoogleAuthenticatorFile.parse(ascii("JBSWY3DPEHPK3PXP\n\" RATE_LIMIT 3\n")),
                             equals: GoogleAuthenticatorFileError.badOption(line: 2, name: "RATE_LIMIT"))
        // Option names are upper case: an escape sequence never reaches the admin's terminal.
        XCTAssertThrowsError(try GoogleAuthenticatorFile.parse(ascii("JBSWY3DPEHPK3PXP\n\" \u{1b}]0;pwned\u{07}\n")),
                             equals: GoogleAuthenticatorFileError.badLine(2))
        // Scratch codes are 8 digits from 10000000 up.
        for bad in ["1234567", "123456789", "01234567", "1234567a"] {
            XCTAssertThrowsError(try GoogleAuthenticatorFile.parse(ascii("JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n\(bad)\n")),
                                 equals: GoogleAuthenticatorFileError.badLine(3))
        }
    }
}

final class OathUsersFileTests: XCTestCase {
    func testTypesOfTheUsersFileFormat() {
        XCTAssertEqual(OathUsersFile.parseKind("HOTP"), .hotp(digits: 6))
        XCTAssertEqual(OathUsersFile.parseKind("HOTP/E"), .hotp(digits: 6))
        XCTAssertEqual(OathUsersFile.parseKind("HOTP/E/8"), .hotp(digits: 8))
        XCTAssertEqual(OathUsersFile.parseKind("HOTP/E/7"), .hotp(digits: 7))
        XCTAssertEqual(OathUsersFile.parseKind("HOTP/T30"), .totp(period: 30, digits: 6))
        XCTAssertEqual(OathUsersFile.parseKind("HOTP/T30/8"), .totp(period: 30, digits: 8))
        XCTAssertEqual(OathUsersFile.parseKind("HOTP/T60"), .totp(period: 60, digits: 6))
        XCTAssertEqual(OathUsersFile.parseKind("HOTP/T60/6"), .totp(period: 60, digits: 6))
        for bad in ["TOTP", "HOTP/T45", "HOTP/E/9", "HOTP/E/5", "hotp", "HOTP/", "HOTP/E/6/1", "HOTP/T30/"] {
            XCTAssertNil(OathUsersFile.parseKind(bad), bad)
        }
    }

    func testLinesWithEveryOptionalField() {
        let text = """
        # a comment
        HOTP\talice\t-\t3132333435363738393031323334353637383930
        HOTP/T30 alice - 3132333435363738393031323334353637383930 0 755224 2026-11-29T13:05:09L

        HOTP/E/8 bob + 3132333435363738393031323334353637383930 12 87654321
        HOTP/T60 carol s3cret 3132333435363738393031323334353637383930
        """
        let f = OathUsersFile.parse(ascii(text))
        XCTAssertEqual(f.problems, [])
        XCTAssertEqual(f.entries.map(\.user), ["alice", "alice", "bob", "carol"])
        XCTAssertEqual(f.entries.map(\.line), [2, 3, 5, 6])
        XCTAssertEqual(f.entries[0].kind, .hotp(digits: 6))
        XCTAssertEqual(f.entries[0].secret.bytes, ascii("12345678901234567890"))
        XCTAssertNil(f.entries[0].counter)
        XCTAssertEqual(f.entries[1].kind, .totp(period: 30, digits: 6))
        XCTAssertEqual(f.entries[1].lastOTP, ascii("755224"))
        XCTAssertEqual(f.entries[1].time, OathUsersFile.Timestamp(year: 2026, month: 11, day: 29, hour: 13, minute: 5, second: 9))
        XCTAssertEqual(f.entries[2].pin, .external)
        XCTAssertEqual(f.entries[2].counter, 12)
        XCTAssertEqual(f.entries[3].pin, .password)
        XCTAssertEqual(f.entries[0].pin, OathUsersFile.PIN.none)
    }

    func testUpperCaseHexIsASecretToo() {
        let f = OathUsersFile.parse(ascii("HOTP alice - 3132333435363738393031323334353637383930\nHOTP bob - DEADBEEFdeadbeef00112233\n"))
        XCTAssertEqual(f.entries.count, 2)
        XCTAssertEqual(f.entries[1].secret.bytes, [0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef, 0, 0x11, 0x22, 0x33])
    }

    func testBadLinesAreProblemsNamingTheirUser() {
        let text = """
        HOTP/X alice - 00
        HOTP bob - xyz
        HOTP carol -
        HOTP dave - 3132333435363738393031323334353637383930 twelve
        HOTP/T30 erin - 3132333435363738393031323334353637383930 0 12345 yesterday
        HOTP frank - \(String(repeating: "ab", count: 33))
        """
        let f = OathUsersFile.parse(ascii(text))
        XCTAssertEqual(f.entries.count, 0)
        XCTAssertEqual(f.problems.map(\.line), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(f.problems.map(\.user), ["alice", "bob", "carol", "dave", "erin", "frank"])
    }
}

final class ScratchCodeTests: XCTestCase {
    /// Imported google-authenticator scratch codes are 8 digits, matched as typed.
    func testEightDigitScratchCodesNormalize() throws {
        XCTAssertEqual(BackupCodes.normalize("12345678"), "12345678")
        XCTAssertEqual(BackupCodes.normalize("1234 5678"), "12345678")
        XCTAssertNil(BackupCodes.normalize("1234567"))
        XCTAssertNil(BackupCodes.normalize("123456789"))
        XCTAssertNil(BackupCodes.normalize("123456"))
        let key = try Crypto.randomBytes(32)
        let hashes = [try BackupCodes.hash("25576066", key: key), try BackupCodes.hash("88032361", key: key)]
        XCTAssertEqual(try BackupCodes.match("88032361", hashes: hashes, key: key), 1)
        XCTAssertNil(try BackupCodes.match("88032362", hashes: hashes, key: key))
    }
}
