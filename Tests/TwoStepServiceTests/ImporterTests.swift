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

    /// Bob's candidate from a google-authenticator file of the test secret plus `extra`.
    func bobsFile(_ extra: String, _ rig: Rig) throws -> ImportCandidate {
        try Migration.candidate(user: "bob", path: "p", file: try gaFile(extra), config: rig.config, now: rig.clock)
    }

    func gaFile(_ extra: String) throws -> GoogleAuthenticatorFile {
        try GoogleAuthenticatorFile.parse(Array((Base32.encode(secret) + "\n" + extra).utf8))
    }

    func testGoogleAuthenticatorFileBecomesARecordWithUsedStepsAndScratchCodes() throws {
        let rig = try Rig()
        let step = rig.clock / 30
        let file = try gaFile("\" DISALLOW_REUSE \(step - 1) \(step)\n\" TOTP_AUTH\n25576066\n88032361\n")
        let candidate = try Migration.candidate(user: "bob", path: "/home/bob/.google_authenticator", file: file, config: rig.config, now: rig.clock)
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
        let bob = try Migration.candidate(user: "bob", path: "p", file: file, config: rig.config, now: rig.clock)
        guard case .imported = importer(rig).run(bob, dryRun: true, replace: false) else { return XCTFail() }
        XCTAssertFalse(try rig.store.hasRecord("bob"))
        let other = try GoogleAuthenticatorFile.parse(Array("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n".utf8))
        let alice = try Migration.candidate(user: "alice", path: "p", file: other, config: rig.config, now: rig.clock)
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
        let c = try Migration.candidate(user: "bob", path: "p", file: file, config: rig.config, now: rig.clock)
        XCTAssertEqual(c.notes.count, 3)
        XCTAssertTrue(c.notes[0].hasPrefix("WINDOW_SIZE 17"))
        XCTAssertTrue(c.notes[1].hasPrefix("RATE_LIMIT 1 logins per 300 s is stricter"))
        XCTAssertEqual(c.notes[2], "options twostep does not know, ignored: AUTH_CACHE")
        // A looser one is not worth a word.
        let loose = try gaFile("\" RATE_LIMIT 3 30\n\" TOTP_AUTH\n")
        XCTAssertEqual(try Migration.candidate(user: "bob", path: "p", file: loose, config: rig.config, now: rig.clock).notes, [])
    }

    /// Files the module reads but twostep cannot take over are refused (their user would be
    /// left with no enrolment); only OTP_DISABLED, where the module asks for no code, is skipped.
    func testFilesTwostepCannotTakeAreRefusedWithTheReason() throws {
        let rig = try Rig()
        func reason(_ extra: String, secretText: String? = nil) throws -> ImportRefusal? {
            let f = try GoogleAuthenticatorFile.parse(Array(((secretText ?? Base32.encode(secret)) + "\n" + extra).utf8))
            do { _ = try Migration.candidate(user: "bob", path: "p", file: f, config: rig.config, now: rig.clock); return nil } catch { return error }
        }
        XCTAssertEqual(try reason("\" STEP_SIZE 5\n\" TOTP_AUTH\n"), .refuse("STEP_SIZE 5 s is outside twostep's 10 to 300 seconds"))
        XCTAssertEqual(try reason("12345678\n"), .refuse("neither TOTP_AUTH nor HOTP_COUNTER: the file only holds scratch codes"))
        XCTAssertEqual(try reason("\" OTP_DISABLED\n\" TOTP_AUTH\n"), .skip("OTP_DISABLED is set: the module asks this user for no code"))
        XCTAssertEqual(try reason("\" TOTP_AUTH\n", secretText: "JBSWY3DP"), .refuse("the secret has 40 bits; twostep needs at least 80"))
        // A clock offset beyond max_drift (held to it, neither the phone nor a phone set right
        // would reach a code).
        XCTAssertEqual(try reason("\" TIME_SKEW 960\n\" TOTP_AUTH\n"),
                       .refuse("TIME_SKEW 960 steps (480 min) is beyond twostep's reach (max_drift 3600 s, window 1): " +
                               "set the phone's clock right (or raise max_drift) and import again"))
        // Within max_drift and the window: taken (the window covers the step beyond).
        XCTAssertNil(try reason("\" TIME_SKEW 121\n\" TOTP_AUTH\n"))
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
        XCTAssertEqual(why, .refuse("line 5: has a PIN (twostep never stores passwords)"))
    }

    /// TIME_SKEW becomes the authenticator's clock offset; HOTP_COUNTER its next counter.
    func testTimeSkewBecomesDriftAndHOTPCounterGoesOn() throws {
        let rig = try Rig()
        let skewed = try bobsFile("\" TIME_SKEW 2\n\" TOTP_AUTH\n", rig)
        XCTAssertEqual(importer(rig).run(skewed, dryRun: false, replace: false), .imported("TOTP (SHA1, 6 digits, 30 s), clock +2 steps"))
        XCTAssertEqual(rig.login(try rig.code(), user: "bob").0, .failure)                 // two steps behind the phone
        XCTAssertEqual(rig.login(try rig.code(stepOffset: 2), user: "bob").0, .success)

        let counter = try Migration.candidate(user: "carol", path: "p", file: try gaFile("\" HOTP_COUNTER 3\n"), config: rig.config, now: rig.clock)
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

    /// The user goes on using the old module after the import: a rerun carries over what
    /// was spent there (a step, a scratch code), and no code spent on either side passes
    /// again, with or without --replace.
    func testARerunCarriesOverWhatTheSourceSpentSince() throws {
        let rig = try Rig()
        let step = rig.clock / 30
        let first = try bobsFile("\" DISALLOW_REUSE \(step - 1)\n\" TOTP_AUTH\n11111111\n22222222\n33333333\n", rig)
        guard case .imported = importer(rig).run(first, dryRun: false, replace: false) else { return XCTFail() }
        XCTAssertEqual(rig.login("11111111", user: "bob").0, .success)  // spent here
        // Meanwhile the old module accepted the next step's code and 22222222.
        let later = try bobsFile("\" DISALLOW_REUSE \(step - 1) \(step + 1)\n\" TOTP_AUTH\n11111111\n33333333\n", rig)
        guard case .updated = importer(rig).run(later, dryRun: true, replace: false) else { return XCTFail() }
        XCTAssertEqual(rig.login(try rig.code(stepOffset: 1), user: "bob").0, .success, "a dry run wrote nothing")
        XCTAssertEqual(importer(rig).run(later, dryRun: false, replace: true),
                       .updated("already imported; 1 backup code used there spent"), "that login here already raised the mark")
        XCTAssertEqual(rig.login("22222222", user: "bob").0, .failure)                  // spent there
        let again = try bobsFile("\" DISALLOW_REUSE \(step + 2)\n\" TOTP_AUTH\n11111111\n33333333\n", rig)
        XCTAssertEqual(importer(rig).run(again, dryRun: false, replace: false),
                       .updated("already imported; totp default: steps up to \(step + 2) used"))
        XCTAssertEqual(rig.login(try rig.code(stepOffset: 2), user: "bob").0, .failure)  // spent there
        XCTAssertEqual(rig.login("11111111", user: "bob").0, .failure)                  // spent here, still listed there
        XCTAssertEqual(importer(rig).run(again, dryRun: false, replace: true), .alreadyImported)
        XCTAssertEqual(rig.login("11111111", user: "bob").0, .failure, "--replace brings no code back")
        XCTAssertEqual(rig.login("33333333", user: "bob").0, .success)
    }

    /// When none of the record's backup codes is among the source's scratch codes (all used
    /// through the old module, or made anew here: the two cannot be told apart), none stays:
    /// a spent code must not pass. The run says so.
    func testBackupCodesTheSourceNoLongerListsAreAllSpent() throws {
        let rig = try Rig()
        let first = try bobsFile("\" TOTP_AUTH\n11111111\n22222222\n", rig)
        guard case .imported = importer(rig).run(first, dryRun: false, replace: false) else { return XCTFail() }
        // Every scratch code used through the old module: the file lists none.
        let used = try bobsFile("\" TOTP_AUTH\n", rig)
        XCTAssertEqual(importer(rig).run(used, dryRun: false, replace: false),
                       .updated("already imported; 2 backup codes used there spent; none of this user's 2 backup codes " +
                                "are among the source's 0 scratch codes: all taken as spent (codes made anew here are gone " +
                                "too: the user makes new ones with `twostep backup-codes`)"))
        XCTAssertEqual(rig.login("11111111", user: "bob").0, .failure)
        XCTAssertEqual(rig.login("22222222", user: "bob").0, .failure)
    }

    /// --replace over a record that holds one of the source's secrets (here the user added a
    /// second authenticator in twostep) keeps spent backup codes spent.
    func testReplacingARecordThatSharesASecretBringsNoCodeBack() throws {
        let rig = try Rig()
        let first = try bobsFile("\" TOTP_AUTH\n55555555\n66666666\n", rig)
        guard case .imported = importer(rig).run(first, dryRun: false, replace: false) else { return XCTFail() }
        XCTAssertEqual(rig.login("55555555", user: "bob").0, .success)
        let record = try XCTUnwrap(try rig.store.loadRecord("bob"))
        try record.add(Authenticator(name: "phone2", secret: Array("abcdefghijabcdefghij".utf8), parameters: .standard,
                                     added: rig.clock), replace: false)
        try rig.store.withLock("bob") { try rig.store.saveRecord(record, for: "bob") }
        guard case .imported = importer(rig).run(first, dryRun: false, replace: true) else { return XCTFail() }
        XCTAssertEqual(rig.login("55555555", user: "bob").0, .failure, "spent before the --replace")
        XCTAssertEqual(rig.login("66666666", user: "bob").0, .success)
    }

    /// The same secret with other parameters: a rerun says so; --replace takes the source's
    /// parameters, carries the replay mark and brings no spent backup code back.
    func testARerunWithOtherParametersNeedsReplace() throws {
        let rig = try Rig()
        let totp = try bobsFile("\" TOTP_AUTH\n11111111\n22222222\n", rig)
        guard case .imported = importer(rig).run(totp, dryRun: false, replace: false) else { return XCTFail() }
        XCTAssertEqual(rig.login("11111111", user: "bob").0, .success)
        let hotp = try bobsFile("\" HOTP_COUNTER 4\n11111111\n22222222\n", rig)
        XCTAssertEqual(importer(rig).run(hotp, dryRun: false, replace: false),
                       .skipped("already imported with these secrets, but the source now says HOTP (SHA1, 6 digits, next counter 4); " +
                                "2 scratch codes as backup codes: give --replace to take it as it is now"))
        guard case .imported = importer(rig).run(hotp, dryRun: false, replace: true) else { return XCTFail() }
        XCTAssertEqual(rig.login("11111111", user: "bob").0, .failure)
        XCTAssertEqual(rig.login(try OTP.hotp(secret: secret, counter: 4, digits: 6, algorithm: .sha1), user: "bob").0, .success)
        XCTAssertEqual(rig.login("22222222", user: "bob").0, .success)
    }

    /// DISALLOW_REUSE steps no code could have reached are ignored (kept, they would refuse
    /// every code until then).
    func testUsedStepsBeyondAnyCodesReachAreIgnored() throws {
        let rig = try Rig()
        let step = rig.clock / 30
        let c = try bobsFile("\" DISALLOW_REUSE \(step - 1) \(step + 5000) 9223372036854775807\n\" TOTP_AUTH\n", rig)
        XCTAssertEqual(c.authenticators[0].lastUsedStep, step - 1)
        XCTAssertEqual(c.notes, ["DISALLOW_REUSE steps beyond any code's reach, ignored: \(step + 5000) 9223372036854775807"])
        guard case .imported = importer(rig).run(c, dryRun: false, replace: false) else { return XCTFail() }
        XCTAssertEqual(rig.login(try rig.code(), user: "bob").0, .success)
    }

    /// pam_oath takes 6-, 7- and 8-digit codes whatever the line says: a last code of
    /// another length than the line's is refused, not guessed at; a line's time ahead of
    /// the clock marks steps up to now's only.
    func testOathLastCodeOfAnotherLengthAndATimeAhead() throws {
        let hexSecret = secret.map { String(format: "%02x", $0) }.joined()
        let now: Int64 = 1_800_000_000
        let eight = try OTP.hotp(secret: secret, counter: 3, digits: 8, algorithm: .sha1)
        let text = """
        HOTP erin - \(hexSecret) 3 \(eight) 2027-01-15T08:00:00L
        HOTP/T30 fred - \(hexSecret) 0 000000 2027-01-15T08:00:00L
        """
        let out = Migration.candidates(usersfile: "u", file: OathUsersFile.parse(Array(text.utf8)),
                                       localTime: { _ in now + 8 * 3600 }, now: now)
        guard case .failure(let why) = out[0].result else { return XCTFail() }
        XCTAssertEqual(why, .refuse("line 1: pam_oath's last accepted code has 8 digits, the line's type 6: " +
                                    "write the token's digit count in the type (such as HOTP/T30/8) and import again"))
        XCTAssertEqual(try out[1].result.get().authenticators[0].lastUsedStep, now / 30)
    }

    /// A new user's damaged state stops the import, and a dry run says so too (it said
    /// "imported" where the real run stopped).
    func testADamagedStateStopsTheImportAndItsDryRun() throws {
        let rig = try Rig()
        let path = rig.config.stateDir + "/bob.state"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data("TSS2 garbage".utf8),
                                                     attributes: [.posixPermissions: 0o600]))
        let bob = try bobsFile("\" TOTP_AUTH\n", rig)
        for dryRun in [true, false] {
            guard case .failed(let why) = importer(rig).run(bob, dryRun: dryRun, replace: false) else {
                return XCTFail("dry run \(dryRun): not refused")
            }
            XCTAssertTrue(why.contains("unlock"), why)
        }
        XCTAssertFalse(try rig.store.hasRecord("bob"))
    }
}
