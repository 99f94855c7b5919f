// SPDX-License-Identifier: Apache-2.0
import Foundation
import TwoStepCore
import TwoStepCrypto
import TwoStepProtocol
import TwoStepService
import TwoStepStore
import XCTest

/// Plays the user: answers prompts from a script and keeps every message.
final class ScriptedUser: Conversation {
    var answers: [String?]
    var prompts: [String] = []
    var infos: [String] = []
    var errors: [String] = []

    init(_ answers: [String?]) { self.answers = answers }

    func ask(_ prompt: String, echo: Bool) -> SecretBytes? {
        prompts.append(prompt)
        return answers.isEmpty ? nil : answers.removeFirst().map { SecretBytes(Array($0.utf8)) }
    }
    func info(_ text: String) { infos.append(text) }
    func error(_ text: String) { errors.append(text) }
}

/// A store, a user "alice" with the RFC 6238 SHA1 seed, and a clock the test moves.
final class Rig {
    let root = NSTemporaryDirectory() + "twostep-dialogue-\(UUID().uuidString)"
    var config: Config
    let store: FileUserStore
    let keys: KeyRing
    var clock: Int64 = 1_800_000_000  // the start of a 30 s step
    let secret = Array("12345678901234567890".utf8)
    var backupCodes: [String] = []
    lazy var auditPath = root + "/audit.jsonl"

    init(configure: (inout Config) -> Void = { _ in }) throws {
        config = Config(path: root + "/twostep.conf")
        config.stateDir = root + "/state"
        config.keyDir = root + "/keys"
        config.auditLog = root + "/audit.jsonl"
        configure(&config)
        try Files.makeDirectory(config.stateDir, mode: 0o700)
        keys = try KeyRing(keyDir: config.keyDir, environment: nil)
        try keys.createKey()
        store = FileUserStore(directory: config.stateDir, keys: keys)
        let record = UserRecord(secret: secret, parameters: .standard, created: clock, backupKey: [], backupHashes: [])
        backupCodes = try record.issueBackupCodes()
        try store.saveRecord(record, for: "alice")
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    /// Each login gets its own store, as each helper process does.
    func verifier() -> Verifier {
        Verifier(config: config, store: FileUserStore(directory: config.stateDir, keys: keys), audit: AuditLog(path: config.auditLog), now: { [unowned self] in self.clock })
    }

    func code(stepOffset: Int64 = 0) throws -> String {
        try OTP.totp(secret: secret, at: clock + stepOffset * 30, parameters: .standard)
    }

    func login(_ answer: String?, user: String = "alice", nullok: Bool = false) -> (Verdict, ScriptedUser) {
        let u = ScriptedUser([answer])
        let v = verifier().authenticate(LoginRequest(user: user, service: "test", nullok: nullok), conversation: u)
        return (v, u)
    }

    func audit() throws -> String { (try? String(contentsOfFile: auditPath)) ?? "" }
}

final class DialogueTests: XCTestCase {
    func testCurrentCodeIsAcceptedWithOnePrompt() throws {
        let rig = try Rig()
        let (v, u) = rig.login(try rig.code())
        XCTAssertEqual(v, .success)
        XCTAssertEqual(u.prompts, ["Verification code: "])
    }

    func testReplayedCodeIsRejected() throws {
        let rig = try Rig()
        let code = try rig.code()
        XCTAssertEqual(rig.login(code).0, .success)
        rig.clock += 10  // same step
        XCTAssertEqual(rig.login(code).0, .failure)
        XCTAssertTrue(try rig.audit().contains("code already used"))
    }

    func testEarlierStepAfterLaterOneIsRejected() throws {
        let rig = try Rig()
        XCTAssertEqual(rig.login(try rig.code(stepOffset: 1)).0, .success)
        // The current step is older than the accepted one: a replay window must not reopen.
        XCTAssertEqual(rig.login(try rig.code()).0, .failure)
        XCTAssertEqual(rig.login(try rig.code(stepOffset: -1)).0, .failure)
    }

    func testWindowEdges() throws {
        for offset: Int64 in [-1, 1] {
            let rig = try Rig()
            XCTAssertEqual(rig.login(try rig.code(stepOffset: offset)).0, .success, "offset \(offset)")
        }
        for offset: Int64 in [-3, -2, 2, 3] {
            let rig = try Rig()
            XCTAssertEqual(rig.login(try rig.code(stepOffset: offset)).0, .failure, "offset \(offset)")
        }
        let wide = try Rig { $0.window = 2 }
        XCTAssertEqual(wide.login(try wide.code(stepOffset: -2)).0, .success)
        let strict = try Rig { $0.window = 0 }
        XCTAssertEqual(strict.login(try strict.code(stepOffset: -1)).0, .failure)
        XCTAssertEqual(strict.login(try strict.code()).0, .success)
    }

    func testExpiredCodeIsRejected() throws {
        let rig = try Rig()
        let old = try rig.code()
        rig.clock += 90
        XCTAssertEqual(rig.login(old).0, .failure)
    }

    func testWrongAndMalformedAnswersFail() throws {
        let rig = try Rig()
        let good = try rig.code()
        let wrong = String(good.dropLast()) + (good.last == "0" ? "1" : "0")
        for answer in [wrong, "", "12345", "1234567", "abcdef", String(repeating: "9", count: 400), "12345\u{0}6"] {
            XCTAssertEqual(rig.login(answer).0, .failure, answer)
            XCTAssertEqual(rig.verifier().lockoutMessage(try rig.store.loadState("alice")) == nil, true)
            try rig.store.saveState(UserState(), for: "alice")  // keep the limiter out of this test
        }
    }

    func testBackupCodeWorksOnce() throws {
        let rig = try Rig()
        let code = rig.backupCodes[3]
        let (v, u) = rig.login(code.uppercased().replacingOccurrences(of: "-", with: " "))
        XCTAssertEqual(v, .success)
        XCTAssertTrue(u.infos.joined().contains("9 left"), "\(u.infos)")
        XCTAssertEqual(rig.login(code).0, .failure)
        XCTAssertEqual(try rig.store.loadRecord("alice")?.backupHashes.count, 9)
        XCTAssertEqual(rig.login(rig.backupCodes[4]).0, .success)
        XCTAssertTrue(try rig.audit().contains("backup code, 8 left"))
    }

    func testOtherUsersCodeIsRejected() throws {
        let rig = try Rig()
        let bob = UserRecord(secret: Array("abcdefghijabcdefghij".utf8), parameters: .standard, created: rig.clock, backupKey: [], backupHashes: [])
        let bobCodes = try bob.issueBackupCodes()
        try rig.store.saveRecord(bob, for: "bob")
        let bobCode = try OTP.totp(secret: Array("abcdefghijabcdefghij".utf8), at: rig.clock, parameters: .standard)
        XCTAssertEqual(rig.login(bobCode).0, .failure)
        XCTAssertEqual(rig.login(bobCodes[0]).0, .failure)
        XCTAssertEqual(rig.login(bobCode, user: "bob").0, .success)
    }

    func testLimiterLocksOutAndSaysSoInPlainWords() throws {
        let rig = try Rig { $0.rateLimitFailures = 3; $0.rateLimitSeconds = 60; $0.lockout = 300 }
        XCTAssertEqual(rig.login("000000").0, .failure)
        rig.clock += 1
        XCTAssertEqual(rig.login("000001").0, .failure)
        rig.clock += 1
        let (third, u3) = rig.login("000002")
        XCTAssertEqual(third, .lockedOut)
        XCTAssertTrue(u3.errors.joined().contains("locked for 5 min"), "\(u3.errors)")
        // Now even the right code is refused, without a prompt, with the reason.
        rig.clock += 60
        let (v, u) = rig.login(try rig.code())
        XCTAssertEqual(v, .lockedOut)
        XCTAssertEqual(u.prompts, [])
        XCTAssertTrue(u.errors.joined().contains("locked for 4 min"), "\(u.errors)")
        XCTAssertTrue(try rig.audit().contains("\"event\":\"lockout\""))
        // After the lockout the right code works again.
        rig.clock += 241
        XCTAssertEqual(rig.login(try rig.code()).0, .success)
    }

    /// An answer no code could have (a password typed at the prompt, or sent there by a
    /// client that answers every hidden prompt with it) fails without counting; a wrong
    /// answer of any code's shape counts, whatever kind of code it looks like.
    func testOnlyAnswersShapedLikeACodeCountAgainstTheLimiter() throws {
        let rig = try Rig { $0.rateLimitFailures = 3; $0.rateLimitSeconds = 600; $0.lockout = 300 }
        for answer in ["CorrectHorse9", "hunter2", "", "1234567", "123456789", "12345-678x", "abcdefghjkm", "ABC"] {
            XCTAssertEqual(rig.login(answer).0, .failure, answer)
            XCTAssertEqual(try rig.store.loadState("alice").failures.count, 0, answer)
            rig.clock += 1
        }
        XCTAssertTrue(try rig.audit().contains("not a code (not counted)"))
        // Each of these could be a code: a TOTP code, an imported scratch code, a backup code
        // (any case, dashes and spaces as typed), a support person's recovery code.
        let shaped = [["000000", "12345678", "ABCDE-FGHJK"], ["abcde fghjk", "ABCD-EFGH", " 0 0 0 0 0 1 "]]
        for (round, answers) in shaped.enumerated() {
            for (i, answer) in answers.enumerated() {
                let (verdict, _) = rig.login(answer)
                XCTAssertEqual(verdict, i == 2 ? .lockedOut : .failure, answer)
                rig.clock += 1
            }
            XCTAssertGreaterThan(try rig.store.loadState("alice").lockedUntil, 0, "round \(round)")
            rig.clock += 600
        }
        XCTAssertEqual(rig.login(try rig.code()).0, .success)
    }

    func testLimiterCountsOnlyFailuresWithinItsWindow() throws {
        let rig = try Rig { $0.rateLimitFailures = 3; $0.rateLimitSeconds = 60 }
        XCTAssertEqual(rig.login("000000").0, .failure)
        rig.clock += 1
        XCTAssertEqual(rig.login("000001").0, .failure)
        rig.clock += 61  // both have aged out
        XCTAssertEqual(rig.login("000002").0, .failure)
        XCTAssertEqual(try rig.store.loadState("alice").lockedUntil, 0)
        // Successes do not count toward the limit.
        for _ in 0..<5 {
            rig.clock += 30
            XCTAssertEqual(rig.login(try rig.code()).0, .success)
        }
    }

    func testUnenrolledUserWithAndWithoutNullok() throws {
        let rig = try Rig()
        let (ignored, u) = rig.login("123456", user: "carol", nullok: true)
        XCTAssertEqual(ignored, .ignore)
        XCTAssertEqual(u.prompts, [])
        // carol is no account (NSS does not know her): without nullok she is asked like
        // anyone else and fails like a wrong code, so names cannot be enumerated.
        let (refused, asked) = rig.login("123456", user: "carol")
        XCTAssertEqual(refused, .failure)
        XCTAssertEqual(asked.prompts.count, 1)
        // root is an account that is not enrolled: notEnrolled, as before.
        XCTAssertEqual(rig.login("123456", user: "root").0, .notEnrolled)
    }

    func testDamagedRecordFailsClosedForThatUserOnly() throws {
        let rig = try Rig()
        let bob = UserRecord(secret: rig.secret, parameters: .standard, created: rig.clock, backupKey: [], backupHashes: [])
        try rig.store.saveRecord(bob, for: "bob")
        try Data("junk".utf8).write(to: URL(fileURLWithPath: rig.config.stateDir + "/alice.record"))
        XCTAssertEqual(rig.login(try rig.code(), nullok: true).0, .systemError)
        XCTAssertEqual(rig.login(try rig.code(), user: "bob").0, .success)
    }

    func testConversationFailureIsNotSuccess() throws {
        let rig = try Rig()
        XCTAssertEqual(rig.login(nil).0, .conversationError)
    }

    func testAuditNeverHoldsTheCode() throws {
        let rig = try Rig()
        let code = try rig.code()
        _ = rig.login(code)
        _ = rig.login(code)
        _ = rig.login(rig.backupCodes[0])
        let log = try rig.audit()
        XCTAssertFalse(log.contains(code))
        XCTAssertFalse(log.contains(rig.backupCodes[0]))
        for line in log.split(separator: "\n") {
            let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            for key in ["time", "event", "user", "service", "result", "severity"] {
                XCTAssertNotNil(obj?[key], "\(key) missing in \(line)")
            }
        }
    }

    func testParallelLoginsWithOneCodeSpendItOnce() throws {
        let rig = try Rig()
        let code = try rig.code()
        let results = ThreadSafeList()
        DispatchQueue.concurrentPerform(iterations: 16) { _ in
            results.append(rig.login(code).0)
        }
        XCTAssertEqual(results.items.filter { $0 == .success }.count, 1)
        // The rest are refused as replays; past rate_limit the limiter locks the user.
        XCTAssertEqual(results.items.filter { $0 == .failure || $0 == .lockedOut }.count, 15, "\(results.items)")
    }
}

final class ThreadSafeList: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var items: [Verdict] = []
    func append(_ v: Verdict) { lock.lock(); items.append(v); lock.unlock() }
}
