// SPDX-License-Identifier: Apache-2.0
import Foundation
import TwoStepCore
import TwoStepCrypto
import TwoStepProtocol
import TwoStepService
import TwoStepStore
import XCTest

/// The verifier with several authenticators: any passes, replay per authenticator, HOTP
/// look-ahead, learned drift and resync.
final class DevicesTests: XCTestCase {
    let tablet = Array("abcdefghijabcdefghij".utf8)
    let token = Array("tokentokentokentoken".utf8)
    let sha256 = OTPParameters(algorithm: .sha256)

    /// alice: `default` (the rig's SHA1 secret), `tablet` (SHA256), `yubikey` (HOTP, counter 0).
    func rig(_ configure: (inout Config) -> Void = { _ in }) throws -> Rig {
        let rig = try Rig(configure: configure)
        let record = try XCTUnwrap(try rig.store.loadRecord("alice"))
        try record.add(Authenticator(name: "tablet", secret: tablet, parameters: sha256, added: rig.clock))
        try record.add(Authenticator(name: "yubikey", kind: .hotp, secret: token, parameters: .standard, added: rig.clock))
        try rig.store.saveRecord(record, for: "alice")
        return rig
    }

    func tabletCode(_ rig: Rig, steps: Int64 = 0) throws -> String {
        try OTP.totp(secret: tablet, at: rig.clock + steps * 30, parameters: sha256)
    }

    func hotp(_ counter: UInt64) throws -> String {
        try OTP.hotp(secret: token, counter: counter, digits: 6, algorithm: .sha1)
    }

    func testEachAuthenticatorPassesAndReplayIsPerAuthenticator() throws {
        let rig = try rig()
        XCTAssertEqual(rig.login(try rig.code()).0, .success)
        XCTAssertEqual(rig.login(try rig.code()).0, .failure)   // default's step is spent...
        XCTAssertEqual(rig.login(try tabletCode(rig)).0, .success)  // ...not tablet's
        XCTAssertEqual(rig.login(try tabletCode(rig)).0, .failure)
        let audit = try rig.audit()
        XCTAssertTrue(audit.contains("\"detail\":\"totp default\""), audit)
        XCTAssertTrue(audit.contains("\"detail\":\"totp tablet\""), audit)
        XCTAssertTrue(audit.contains("code already used"), audit)
    }

    func testHOTPLooksAheadAndNeverAcceptsACodeTwice() throws {
        let rig = try rig()
        XCTAssertEqual(rig.login(try hotp(3)).0, .success)       // 0...10 looked at
        XCTAssertEqual(try rig.store.loadState("alice").device("yubikey").counter, 4)
        XCTAssertEqual(rig.login(try hotp(3)).0, .failure)       // spent
        XCTAssertEqual(rig.login(try hotp(2)).0, .failure)       // skipped, so spent too
        XCTAssertEqual(rig.login(try hotp(4 + 11)).0, .failure)  // beyond hotp_window
        XCTAssertEqual(rig.login(try hotp(4 + 10)).0, .success)
        XCTAssertEqual(try rig.store.loadState("alice").device("yubikey").counter, 15)
        XCTAssertTrue(try rig.audit().contains("\"detail\":\"hotp yubikey\""))
    }

    func testRemovingAnAuthenticatorDropsItsCodesAndItsState() throws {
        let rig = try rig()
        XCTAssertEqual(rig.login(try tabletCode(rig)).0, .success)
        let record = try XCTUnwrap(try rig.store.loadRecord("alice"))
        try record.remove(named: "tablet")
        try rig.store.saveRecord(record, for: "alice")
        rig.clock += 30
        XCTAssertEqual(rig.login(try tabletCode(rig)).0, .failure)
        XCTAssertEqual(rig.login(try rig.code()).0, .success)
        XCTAssertNil(try rig.store.loadState("alice").devices["tablet"])
    }

    func testExcludedAuthenticatorDoesNotCount() throws {
        let rig = try rig()
        let u = ScriptedUser([try tabletCode(rig)])
        let v = rig.verifier().authenticate(LoginRequest(user: "alice", service: "t"), excluding: "tablet", conversation: u)
        XCTAssertEqual(v, .failure)
    }

    func testDriftIsLearnedOneStepPerLoginWithinMaxDrift() throws {
        let rig = try rig { $0.maxDrift = 120 }  // 4 steps of 30 s
        // The tablet runs ahead: window 1 reaches it at +1; each login moves the offset one step.
        for expectedDrift: Int64 in [1, 2, 3, 4, 4] {
            XCTAssertEqual(rig.login(try tabletCode(rig, steps: expectedDrift)).0, .success, "\(expectedDrift)")
            XCTAssertEqual(try rig.store.loadState("alice").device("tablet").drift, expectedDrift)
            rig.clock += 30
        }
        // Never beyond max_drift: +6 is out of reach (offset 4, window 1).
        XCTAssertEqual(rig.login(try tabletCode(rig, steps: 6)).0, .failure)
        // The other authenticators keep their own offset (none).
        XCTAssertEqual(rig.login(try rig.code()).0, .success)
        XCTAssertEqual(try rig.store.loadState("alice").device("default").drift, 0)
    }

    func testResyncFindsAHOTPTokenFarAhead() throws {
        let rig = try rig()
        XCTAssertEqual(rig.login(try hotp(500)).0, .failure)
        let (a, outcome) = try rig.verifier().resync(user: "alice", name: "yubikey",
                                                     first: Array(try hotp(500).utf8), second: Array(try hotp(501).utf8))
        XCTAssertEqual(a.name, "yubikey")
        XCTAssertEqual(outcome, .counter(502))
        XCTAssertEqual(rig.login(try hotp(501)).0, .failure)  // CODE2 itself never again
        XCTAssertEqual(rig.login(try hotp(502)).0, .success)
        // Not consecutive, or too far: nothing changes.
        XCTAssertThrowsError(try rig.verifier().resync(user: "alice", name: "yubikey",
                                                       first: Array(try hotp(600).utf8), second: Array(try hotp(602).utf8)))
        XCTAssertThrowsError(try rig.verifier().resync(user: "alice", name: "yubikey",
                                                       first: Array(try hotp(1600).utf8), second: Array(try hotp(1601).utf8)))
        XCTAssertThrowsError(try rig.verifier().resync(user: "alice", name: nil, first: [], second: []))  // which one?
    }

    func testResyncStoresATOTPOffset() throws {
        let rig = try rig()
        XCTAssertEqual(rig.login(try tabletCode(rig, steps: 6)).0, .failure)
        let (_, outcome) = try rig.verifier().resync(user: "alice", name: "tablet",
                                                     first: Array(try tabletCode(rig, steps: 5).utf8),
                                                     second: Array(try tabletCode(rig, steps: 6).utf8))
        XCTAssertEqual(outcome, .drift(steps: 6, period: 30))
        XCTAssertEqual(rig.login(try tabletCode(rig, steps: 6)).0, .failure)  // spent by the resync
        rig.clock += 30
        XCTAssertEqual(rig.login(try tabletCode(rig, steps: 6)).0, .success)
    }
}
