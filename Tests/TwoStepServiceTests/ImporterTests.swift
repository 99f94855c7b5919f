// SPDX-License-Identifier: Apache-2.0
import Foundation
import TwoStepCore
import TwoStepCrypto
import TwoStepProtocol
import TwoStepService
import TwoStepStore
import XCTest

/// Imports through `Importer` into a real file store, then logins through the Verifier
/// with the rig's clock.
final class ImporterTests: XCTestCase {
    let secret = Array("12345678901234567890".utf8)

    func importer(_ rig: Rig) -> Importer {
        Importer(config: rig.config, store: rig.store, audit: AuditLog(path: rig.config.auditLog), actor: "root", now: { rig.clock })
    }

    func gaFile(_ extra: String) throws -> GoogleAuthenticatorFile {
        try GoogleAuthenticatorFile.parse(Array((Base32.encode(secret) + "\n" + extra).utf8))
    }

    func testGoogleAuthenticatorFileBecomesARecordWithUsedStepsAndScratchCodes() throws {
        let rig = try Rig()
        let step = rig.clock / 30
        let file = try gaFile("\" DISALLOW_REUSE \(step - 1) \(step)\n\" TOTP_AUTH\n25576066\n88032361\n")
        let candidate = try Migration.candidate(user: "bob", path: "/home/bob/.google_authenticator", file: file, config: rig.config)
        XCTAssertEqual(importer(rig).run(candidate, dryRun: false, replace: false),
                       .imported("TOTP (SHA1, 6 digits, 30 s), steps up to \(step) stay used; 2 scratch codes as backup codes"))
        let code = try rig.code()
        XCTAssertEqual(rig.login(code, user: "bob").0, .failure)  // used before the import
        XCTAssertEqual(rig.login("88032361", user: "bob").0, .success)
        XCTAssertEqual(rig.login("88032361", user: "bob").0, .failure)
        XCTAssertEqual(rig.login(try rig.code(stepOffset: 1), user: "bob").0, .success)
        // A second run finds the same secret and changes nothing.
        XCTAssertEqual(importer(rig).run(candidate, dryRun: false, replace: false), .alreadyImported)
        XCTAssertEqual(rig.login("25576066", user: "bob").0, .success)
    }

    func testDryRunWritesNothingAndEnrolledUsersAreSkipped() throws {
        let rig = try Rig()
        let file = try gaFile("\" TOTP_AUTH\n")
        let bob = try Migration.candidate(user: "bob", path: "p", file: file, config: rig.config)
        guard case .imported = importer(rig).run(bob, dryRun: true, replace: false) else { return XCTFail() }
        XCTAssertFalse(try rig.store.hasRecord("bob"))
        let other = try GoogleAuthenticatorFile.parse(Array("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n".utf8))
        let alice = try Migration.candidate(user: "alice", path: "p", file: other, config: rig.config)
        XCTAssertEqual(importer(rig).run(alice, dryRun: false, replace: false), .skipped("already enrolled (give --replace to overwrite)"))
        XCTAssertEqual(rig.login(try rig.code()).0, .success)  // alice's own enrolment is untouched
    }

    /// An 8-digit authenticator with imported 8-digit scratch codes: an 8-digit answer is
    /// tried as a code of the authenticator, then as a scratch code.
    func testEightDigitAuthenticatorAndEightDigitScratchCodes() throws {
        let rig = try Rig()
        let parameters = OTPParameters(algorithm: .sha1, digits: 8, period: 30)
        let candidate = ImportCandidate(user: "bob", source: "test",
                                        authenticators: [ForeignAuthenticator(kind: .totp(parameters), secret: SecretBytes(secret), origin: "test")],
                                        scratchCodes: [SecretBytes(Array("25576066".utf8))])
        guard case .imported = importer(rig).run(candidate, dryRun: false, replace: false) else { return XCTFail() }
        let code = try OTP.totp(secret: secret, at: rig.clock, parameters: parameters)
        XCTAssertEqual(code.count, 8)
        XCTAssertEqual(rig.login(code, user: "bob").0, .success)
        XCTAssertEqual(rig.login(code, user: "bob").0, .failure)  // replayed, not taken for a scratch code
        XCTAssertEqual(rig.login("25576066", user: "bob").0, .success)
        XCTAssertEqual(rig.login("25576066", user: "bob").0, .failure)
    }

    func testStricterRateLimitAndWiderWindowAreReported() throws {
        let rig = try Rig()
        let file = try gaFile("\" RATE_LIMIT 1 300\n\" WINDOW_SIZE 17\n\" TOTP_AUTH\n\" AUTH_CACHE 30\n")
        let c = try Migration.candidate(user: "bob", path: "p", file: file, config: rig.config)
        XCTAssertEqual(c.notes.count, 3)
        XCTAssertTrue(c.notes[0].hasPrefix("WINDOW_SIZE 17"))
        XCTAssertTrue(c.notes[1].hasPrefix("RATE_LIMIT 1 logins per 300 s is stricter"))
        XCTAssertEqual(c.notes[2], "options twostep does not know, ignored: AUTH_CACHE")
        // A looser one is not worth a word.
        let loose = try gaFile("\" RATE_LIMIT 3 30\n\" TOTP_AUTH\n")
        XCTAssertEqual(try Migration.candidate(user: "bob", path: "p", file: loose, config: rig.config).notes, [])
    }

    func testFilesTwostepCannotTakeAreSkippedWithTheReason() throws {
        let rig = try Rig()
        func reason(_ extra: String, secretText: String? = nil) throws -> ImportRefusal? {
            let f = try GoogleAuthenticatorFile.parse(Array(((secretText ?? Base32.encode(secret)) + "\n" + extra).utf8))
            do { _ = try Migration.candidate(user: "bob", path: "p", file: f, config: rig.config); return nil } catch { return error }
        }
        XCTAssertEqual(try reason("\" STEP_SIZE 5\n\" TOTP_AUTH\n"), .skip("STEP_SIZE 5 s is outside twostep's 10 to 300 seconds"))
        XCTAssertEqual(try reason("12345678\n"), .skip("neither TOTP_AUTH nor HOTP_COUNTER: the file only holds scratch codes"))
        XCTAssertEqual(try reason("\" OTP_DISABLED\n\" TOTP_AUTH\n"), .skip("OTP_DISABLED is set: the module asks this user for no code"))
        XCTAssertEqual(try reason("\" TOTP_AUTH\n", secretText: "JBSWY3DP"), .skip("the secret has 40 bits; twostep needs at least 80"))
    }

    func testOathLinesGroupedByUserWithCountersAndLastCodes() throws {
        let hexSecret = secret.map { String(format: "%02x", $0) }.joined()
        let totpLast = try OTP.totp(secret: secret, at: 1_800_000_000, parameters: .standard)
        let text = """
        HOTP alice - \(hexSecret) 4 \(try OTP.hotp(secret: secret, counter: 4, digits: 6, algorithm: .sha1)) 2027-01-15T08:00:00L
        HOTP/T30 alice - \(hexSecret) 0 \(totpLast) 2027-01-15T08:00:00L
        HOTP bob - \(hexSecret) 9
        HOTP carol - \(hexSecret)
        HOTP carol pin \(hexSecret)
        """
        let file = OathUsersFile.parse(Array(text.utf8))
        let out = Migration.candidates(usersfile: "users.oath", file: file, localTime: { _ in 1_800_000_000 }, now: 1_900_000_000)
        XCTAssertEqual(out.map(\.user), ["alice", "bob", "carol"])
        let alice = try out[0].result.get()
        XCTAssertEqual(alice.authenticators.map(\.kind), [.hotp(algorithm: .sha1, digits: 6, nextCounter: 5), .totp(.standard)])
        XCTAssertEqual(alice.authenticators[1].lastUsedStep, 1_800_000_000 / 30)
        // Without a last code the counter is the first one still good.
        XCTAssertEqual(try out[1].result.get().authenticators.map(\.kind), [.hotp(algorithm: .sha1, digits: 6, nextCounter: 9)])
        guard case .failure(let why) = out[2].result else { return XCTFail() }
        XCTAssertEqual(why, .skip("line 5: has a PIN (twostep never stores passwords)"))
    }

    /// TIME_SKEW becomes the authenticator's clock offset; HOTP_COUNTER its next counter.
    func testTimeSkewBecomesDriftAndHOTPCounterGoesOn() throws {
        let rig = try Rig()
        let skewed = try Migration.candidate(user: "bob", path: "p", file: try gaFile("\" TIME_SKEW 2\n\" TOTP_AUTH\n"), config: rig.config)
        XCTAssertEqual(importer(rig).run(skewed, dryRun: false, replace: false), .imported("TOTP (SHA1, 6 digits, 30 s), clock +2 steps"))
        XCTAssertEqual(rig.login(try rig.code(), user: "bob").0, .failure)                 // two steps behind the phone
        XCTAssertEqual(rig.login(try rig.code(stepOffset: 2), user: "bob").0, .success)

        let counter = try Migration.candidate(user: "carol", path: "p", file: try gaFile("\" HOTP_COUNTER 3\n"), config: rig.config)
        XCTAssertEqual(importer(rig).run(counter, dryRun: false, replace: false), .imported("HOTP (SHA1, 6 digits, next counter 3)"))
        func hotp(_ c: UInt64) throws -> String { try OTP.hotp(secret: secret, counter: c, digits: 6, algorithm: .sha1) }
        XCTAssertEqual(rig.login(try hotp(2), user: "carol").0, .failure)
        XCTAssertEqual(rig.login(try hotp(3), user: "carol").0, .success)
        XCTAssertEqual(rig.login(try hotp(3), user: "carol").0, .failure)
    }

    /// Several usersfile lines: one record with an authenticator each; a rerun sees them all.
    func testOathUserWithTwoTokensIsOneRecord() throws {
        let rig = try Rig()
        let other = Array("abcdefghijabcdefghij".utf8)
        func hx(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }
        let file = OathUsersFile.parse(Array("HOTP/E/8 dave - \(hx(secret)) 0\nHOTP/T60 dave + \(hx(other))\n".utf8))
        let out = Migration.candidates(usersfile: "u", file: file, localTime: { _ in nil }, now: rig.clock)
        let dave = try out[0].result.get()
        XCTAssertEqual(importer(rig).run(dave, dryRun: false, replace: false),
                       .imported("HOTP (SHA1, 8 digits, next counter 0); TOTP (SHA1, 6 digits, 60 s)"))
        let record = try XCTUnwrap(try rig.store.loadRecord("dave"))
        XCTAssertEqual(record.authenticators.map(\.name), ["default", "oath-2"])
        XCTAssertEqual(rig.login(try OTP.hotp(secret: secret, counter: 0, digits: 8, algorithm: .sha1), user: "dave").0, .success)
        XCTAssertEqual(rig.login(try OTP.totp(secret: other, at: rig.clock, parameters: OTPParameters(period: 60)), user: "dave").0, .success)
        XCTAssertEqual(importer(rig).run(dave, dryRun: false, replace: false), .alreadyImported)
    }
}
