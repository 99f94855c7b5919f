// SPDX-License-Identifier: Apache-2.0
import Foundation
import TwoStepCore
import TwoStepCrypto
import TwoStepProtocol
import TwoStepService
import TwoStepStore
import XCTest

/// Trusted SSH keys and the clock warning, with the clock the test moves.
final class TrustTests: XCTestCase {
    let keyA = "publickey ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL1QYjSktkLga5+GMc5CUz5NMaTopA3fKVQnVQKUkY+O"
    let fingerprintA = "SHA256:zfQbqTRAI0X/EaSEWhD/QKeXuHWPEjnLRTD7Ki5pUU4"

    func keyLine(_ n: Int) -> String {
        // A distinct well-formed blob per n (any bytes hash to a fingerprint).
        "publickey ssh-ed25519 " + Base64.encode(Array("test key number \(n)".utf8))
    }

    func login(_ rig: Rig, _ answers: [String?], authInfo: String, service: String = "sshd") -> (Verdict, ScriptedUser) {
        let u = ScriptedUser(answers)
        let v = rig.verifier().authenticate(LoginRequest(user: "alice", service: service, authInfo: authInfo), conversation: u)
        return (v, u)
    }

    func testCodeWithAKeyTrustsItAndTheNextLoginAsksNothing() throws {
        let rig = try Rig { $0.trustSSHKey = 30 * 86400 }
        var (v, u) = login(rig, [try rig.code()], authInfo: keyA)
        XCTAssertEqual(v, .success)
        XCTAssertEqual(u.infos, ["This SSH key (\(fingerprintA)) is trusted for 30 days."])
        rig.clock += 3600
        (v, u) = login(rig, [], authInfo: keyA)
        XCTAssertEqual(v, .success)
        XCTAssertEqual(u.prompts, [])
        let audit = try rig.audit()
        XCTAssertTrue(audit.contains("\"detail\":\"trusted ssh key \(fingerprintA)\""), audit)
    }

    func testOtherKeyExpiredTrustAndOtherServiceAskForACode() throws {
        let rig = try Rig { $0.trustSSHKey = 3600 }
        XCTAssertEqual(login(rig, [try rig.code()], authInfo: keyA).0, .success)
        // Another key: a prompt (and a wrong answer fails).
        var (v, u) = login(rig, ["000000"], authInfo: keyLine(1))
        XCTAssertEqual(v, .failure)
        XCTAssertEqual(u.prompts, [Verifier.prompt])
        // A service not in trust_services (default: sshd).
        (v, u) = login(rig, [nil], authInfo: keyA, service: "sudo")
        XCTAssertEqual(u.prompts, [Verifier.prompt])
        // Expired: one second past the hour.
        rig.clock += 3601
        (v, u) = login(rig, [nil], authInfo: keyA)
        XCTAssertEqual(u.prompts, [Verifier.prompt])
        XCTAssertNotEqual(v, .success)
    }

    func testTrustOffByDefaultRecordsNothing() throws {
        let rig = try Rig()
        let (v, u) = login(rig, [try rig.code()], authInfo: keyA)
        XCTAssertEqual(v, .success)
        XCTAssertEqual(u.infos, [])
        XCTAssertEqual(try rig.store.loadRecord("alice")?.trustedSSHKeys, [])
    }

    func testAtMostTwentyKeysOldestDropped() throws {
        let rig = try Rig { $0.trustSSHKey = 86400 }
        for n in 0..<22 {
            rig.clock += 30
            XCTAssertEqual(login(rig, [try rig.code()], authInfo: keyLine(n)).0, .success)
        }
        let keys = try XCTUnwrap(try rig.store.loadRecord("alice")).trustedSSHKeys
        XCTAssertEqual(keys.count, TrustedSSHKeys.maxPerUser)
        let first = SSHAuthInfo.publicKeyFingerprints(keyLine(0) + "\n" + keyLine(1))
        XCTAssertTrue(keys.allSatisfy { !first.contains($0.fingerprint) })
        // The newest still passes without a code; the dropped oldest asks.
        XCTAssertEqual(login(rig, [], authInfo: keyLine(21)).1.prompts, [])
        XCTAssertEqual(login(rig, [nil], authInfo: keyLine(0)).1.prompts, [Verifier.prompt])
    }

    func testABackupCodeTrustsNoKey() throws {
        let rig = try Rig { $0.trustSSHKey = 30 * 86400 }
        var (v, u) = login(rig, [rig.backupCodes[0]], authInfo: keyA)
        XCTAssertEqual(v, .success)
        XCTAssertFalse(u.infos.contains { $0.contains("is trusted") }, "\(u.infos)")
        XCTAssertEqual(try rig.store.loadRecord("alice")?.trustedSSHKeys, [])
        rig.clock += 60
        (v, u) = login(rig, [nil], authInfo: keyA)
        XCTAssertEqual(u.prompts, [Verifier.prompt])
    }

    /// forward_pass: the password is checked after the module, so `email` there must not mail
    /// anyone (the mail command here would leave a file if it ran).
    func testEmailAtAForwardPassPromptMailsNothing() throws {
        let mailed = NSTemporaryDirectory() + "twostep-mailed-\(UUID().uuidString)"
        let rig = try Rig {
            $0.emailFallback = true
            $0.mailCommand = ["/usr/bin/tee", mailed]
        }
        defer { try? FileManager.default.removeItem(atPath: mailed) }
        let record = try XCTUnwrap(try rig.store.loadRecord("alice"))
        record.recovery.email = "alice@example.org"
        try rig.store.saveRecord(record, for: "alice")
        let u = ScriptedUser(["email", "123456"])
        var request = LoginRequest(user: "alice", service: "sshd")
        request.forwardPass = true
        let v = rig.verifier().authenticate(request, conversation: u)
        XCTAssertEqual(v, .failure)
        XCTAssertEqual(u.errors, ["Codes by email are not sent at this prompt; log in with the app's code or a backup code."])
        XCTAssertFalse(FileManager.default.fileExists(atPath: mailed))
        XCTAssertTrue(try rig.audit().contains("code by email asked at a forward_pass prompt"))
        XCTAssertEqual(try rig.store.loadRecord("alice")?.recovery.mailTimes, [])
    }

    func testForgetEndsTrustAndTheRecordRoundTrips() throws {
        let rig = try Rig { $0.trustSSHKey = 3600 }
        XCTAssertEqual(login(rig, [try rig.code()], authInfo: keyA).0, .success)
        XCTAssertEqual(try SelfService.forgetTrust("alice", fingerprint: "SHA256:" + String(repeating: "A", count: 43), store: rig.store), 0)
        XCTAssertEqual(try SelfService.forgetTrust("alice", fingerprint: fingerprintA, store: rig.store), 1)
        XCTAssertEqual(login(rig, [nil], authInfo: keyA).1.prompts, [Verifier.prompt])
    }

    func testRecordWithoutTrustLineStillParsesAndDamagedLineTrustsNothing() throws {
        let record = UserRecord(secret: rig_secret, parameters: .standard, created: 1, backupKey: [1, 2], backupHashes: [])
        var plain = record.serialized()
        XCTAssertFalse(String(decoding: plain, as: UTF8.self).contains("trusted_ssh_keys"))
        XCTAssertEqual(try UserRecord.parse(plain, path: "x").trustedSSHKeys, [])
        record.trust([fingerprintA], seconds: 60, at: 100)
        plain = record.serialized()
        XCTAssertEqual(try UserRecord.parse(plain, path: "x").trustedSSHKeys,
                       [TrustedSSHKey(fingerprint: fingerprintA, added: 100, expires: 160)])
        // A damaged line trusts nothing (the code is asked) and does not cost the record.
        let damaged = UserRecord(secret: rig_secret, parameters: .standard, created: 1, backupKey: [1, 2], backupHashes: [])
        damaged.extensions = [("trusted_ssh_keys", "SHA256:bad@1@2")]
        XCTAssertEqual(try UserRecord.parse(damaged.serialized(), path: "x").trustedSSHKeys, [])
    }

    let rig_secret = Array("12345678901234567890".utf8)

    func testClockWarningAtMostOnceAnHour() throws {
        let rig = try Rig()
        let audit = AuditLog(path: rig.config.auditLog)
        func events() throws -> Int { try rig.audit().components(separatedBy: "clock_unsynchronised").count - 1 }
        ClockWarning.note(.synchronised, config: rig.config, audit: audit, service: "sshd", now: 1000)
        XCTAssertEqual(try events(), 0)
        ClockWarning.note(.unsynchronised, config: rig.config, audit: audit, service: "sshd", now: 1000)
        ClockWarning.note(.unsynchronised, config: rig.config, audit: audit, service: "sshd", now: 1000 + 3599)
        XCTAssertEqual(try events(), 1)
        ClockWarning.note(.tooFarOff(seconds: 40), config: rig.config, audit: audit, service: "sshd", now: 1000 + 3600)
        XCTAssertEqual(try events(), 2)
        XCTAssertTrue(try rig.audit().contains("\"result\":\"warning\""))
    }
}
