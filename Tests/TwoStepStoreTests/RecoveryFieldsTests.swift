// SPDX-License-Identifier: Apache-2.0
import XCTest
import TwoStepCore
import TwoStepCrypto
@testable import TwoStepStore

final class RecoveryFieldsTests: XCTestCase {
    func record() -> UserRecord {
        UserRecord(secret: Array(repeating: 7, count: 20), parameters: OTPParameters(algorithm: .sha1, digits: 6, period: 30),
                   created: 1, backupKey: Array(repeating: 1, count: 32), backupHashes: [])
    }

    func testARecordWithoutRecoveryLinesReadsAsBeforeAndWritesNoneOfThem() throws {
        let r = record()
        let text = String(decoding: r.serialized(), as: UTF8.self)
        XCTAssertFalse(text.contains("email"))
        let back = try UserRecord.parse(r.serialized(), path: "t")
        XCTAssertNil(back.recovery.email)
        XCTAssertFalse(back.recovery.hasInvitation)
    }

    func testEveryFieldSurvivesTheRecordAndCodesAreStoredOnlyAsHashes() throws {
        let r = record()
        r.recovery.email = "alice@example.org"
        r.recovery.emailPending = "new@example.org"
        let (login, hashed) = try r.recovery.newCode(.login, expires: 500)
        r.recovery.loginCode = hashed
        let (support, rh) = try r.recovery.newCode(.recovery, expires: 900)
        r.recovery.recoveryCode = rh
        r.recovery.mailTimes = [10, 20]
        r.recovery.bypassUntil = 1000
        r.recovery.bypassNote = "by bob: holiday\nnext line"
        r.recovery.invitationUntil = 2000
        r.recovery.invitedSecret = SecretBytes(Array(repeating: 9, count: 20))
        let bytes = r.serialized()
        let text = String(decoding: bytes, as: UTF8.self)
        XCTAssertFalse(text.contains(login) || text.contains(support))
        XCTAssertEqual(text.split(separator: "\n").count, text.components(separatedBy: "\n").count - 1)  // no stray line breaks
        var back = try UserRecord.parse(bytes, path: "t").recovery
        XCTAssertEqual(back.email, "alice@example.org")
        XCTAssertEqual(back.emailPending, "new@example.org")
        XCTAssertEqual(back.mailTimes, [10, 20])
        XCTAssertEqual(back.bypassUntil, 1000)
        XCTAssertEqual(back.bypassNote, "by bob: holiday\nnext line")
        XCTAssertEqual(back.invitationUntil, 2000)
        XCTAssertEqual(back.invitedSecret?.withBytes { $0 }, Array(repeating: 9, count: 20))
        XCTAssertTrue(try back.matches(Array(login.uppercased().utf8), back.loginCode, .login, now: 499))
        XCTAssertFalse(try back.matches(Array(login.utf8), back.loginCode, .login, now: 500), "expired")
        XCTAssertFalse(try back.matches(Array(login.utf8), back.recoveryCode, .recovery, now: 1), "another code")
        XCTAssertFalse(try back.matches(Array(support.utf8), back.recoveryCode, .login, now: 1), "another purpose")
        XCTAssertTrue(try back.matches(Array(support.utf8), back.recoveryCode, .recovery, now: 899))
    }

    func testDamagedRecoveryLinesAreAFaultOfThatRecord() {
        for line in ["email=a b@x", "login_code=zz:1", "bypass_until=soon", "mail_times=1,x", "invited_secret=!!"] {
            let bytes = record().serialized() + Array((line + "\n").utf8)
            XCTAssertThrowsError(try UserRecord.parse(bytes, path: "t"), line)
        }
    }

    func testShortCodesAreEightCharactersOfTheBackupAlphabet() throws {
        for _ in 0..<200 {
            let code = try BackupCodes.randomCode(length: BackupCodes.shortLength)
            XCTAssertEqual(code.count, 9)
            XCTAssertEqual(Array(code)[4], "-")
            XCTAssertTrue(code.replacingOccurrences(of: "-", with: "").allSatisfy { BackupCodes.alphabet.contains($0) })
        }
        XCTAssertEqual(try BackupCodes.generate().first?.count, 11)
    }
}
