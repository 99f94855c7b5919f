// SPDX-License-Identifier: Apache-2.0
import Foundation
import TwoStepCore
import TwoStepCrypto
import TwoStepStore
import XCTest

/// A scratch store in a private temp directory, with its own master key.
final class Scratch {
    let root: String
    let config: Config
    let keys: KeyRing
    let store: FileUserStore

    init() throws {
        root = NSTemporaryDirectory() + "twostep-store-\(UUID().uuidString)"
        var c = Config(path: root + "/twostep.conf")
        c.stateDir = root + "/state"
        c.keyDir = root + "/keys"
        config = c
        try Files.makeDirectory(c.stateDir, mode: 0o700)
        keys = try KeyRing(keyDir: c.keyDir, environment: nil)
        try keys.createKey()
        store = FileUserStore(directory: c.stateDir, keys: keys)
    }

    func record() throws -> UserRecord {
        UserRecord(secret: Array("12345678901234567890".utf8), parameters: .standard, created: 1_700_000_000,
                   backupKey: try Crypto.randomBytes(32), backupHashes: [])
    }

    var recordPath: String { config.stateDir + "/alice.record" }

    deinit { try? FileManager.default.removeItem(atPath: root) }
}

final class SealedRecordTests: XCTestCase {
    func testRecordRoundTripsThroughTheStore() throws {
        let s = try Scratch()
        let r = try s.record()
        let codes = try r.issueBackupCodes()
        try s.store.saveRecord(r, for: "alice")
        let back = try XCTUnwrap(try s.store.loadRecord("alice"))
        XCTAssertEqual(back.secret.bytes, Array("12345678901234567890".utf8))
        XCTAssertEqual(back.parameters, .standard)
        XCTAssertEqual(back.backupHashes.count, 10)
        XCTAssertEqual(codes.count, 10)
        XCTAssertNil(try s.store.loadRecord("bob"))
    }

    func testSecretIsNotStoredInClear() throws {
        let s = try Scratch()
        try s.store.saveRecord(try s.record(), for: "alice")
        let raw = try Data(contentsOf: URL(fileURLWithPath: s.recordPath))
        XCTAssertNil(raw.range(of: Data("12345678901234567890".utf8)))
        XCTAssertNil(raw.range(of: Data(Base32.encode(Array("12345678901234567890".utf8)).utf8)))
        XCTAssertNil(raw.range(of: Data("secret=".utf8)))
    }

    func testEveryTamperedByteIsRefused() throws {
        let s = try Scratch()
        try s.store.saveRecord(try s.record(), for: "alice")
        let original = try Data(contentsOf: URL(fileURLWithPath: s.recordPath))
        for i in 0..<original.count {
            var bad = original
            bad[i] ^= 0x01
            try bad.write(to: URL(fileURLWithPath: s.recordPath))
            XCTAssertThrowsError(try s.store.loadRecord("alice"), "byte \(i) flipped but the record opened")
        }
        // Truncation at every length is refused too.
        for n in 0..<original.count {
            try original.prefix(n).write(to: URL(fileURLWithPath: s.recordPath))
            XCTAssertThrowsError(try s.store.loadRecord("alice"), "truncated to \(n) bytes but opened")
        }
    }

    func testRecordMovedToAnotherUserIsRefused() throws {
        let s = try Scratch()
        try s.store.saveRecord(try s.record(), for: "alice")
        try FileManager.default.copyItem(atPath: s.recordPath, toPath: s.config.stateDir + "/mallory.record")
        XCTAssertThrowsError(try s.store.loadRecord("mallory")) { error in
            XCTAssertTrue("\(error)".contains("does not authenticate"), "\(error)")
        }
        XCTAssertNotNil(try s.store.loadRecord("alice"))
    }

    func testWrongKeyIsRefused() throws {
        let s = try Scratch()
        try s.store.saveRecord(try s.record(), for: "alice")
        // Same key id, other bytes: replace the key file's content behind the id.
        let other = try Scratch()
        let ring = try KeyRing(keyDir: other.config.keyDir, environment: nil)
        let store = FileUserStore(directory: s.config.stateDir, keys: ring)
        XCTAssertThrowsError(try store.loadRecord("alice")) { error in
            guard case StoreError.keyMissing = error else { return XCTFail("\(error)") }
        }
        // An environment key that does not match the header's id is not used.
        let env = Base64.encode(try Crypto.randomBytes(32))
        let envRing = try KeyRing(keyDir: other.config.keyDir, environment: env)
        XCTAssertThrowsError(try FileUserStore(directory: s.config.stateDir, keys: envRing).loadRecord("alice"))
    }

    func testEnvironmentKeyOverridesKeyFile() throws {
        let s = try Scratch()
        let env = Base64.encode(try Crypto.randomBytes(32))
        let ring = try KeyRing(keyDir: s.config.keyDir + "-absent", environment: env)
        let store = FileUserStore(directory: s.config.stateDir, keys: ring)
        try store.saveRecord(try s.record(), for: "alice")
        XCTAssertNotNil(try store.loadRecord("alice"))
        // The key files alone cannot open it.
        XCTAssertThrowsError(try s.store.loadRecord("alice"))
        XCTAssertThrowsError(try KeyRing(keyDir: "/nonexistent", environment: "not base64!"))
        XCTAssertThrowsError(try KeyRing(keyDir: "/nonexistent", environment: Base64.encode([1, 2, 3])))
    }

    func testUnsafeModesAreRefused() throws {
        let s = try Scratch()
        try s.store.saveRecord(try s.record(), for: "alice")
        chmod(s.recordPath, 0o644)
        XCTAssertThrowsError(try s.store.loadRecord("alice")) { XCTAssertTrue("\($0)".contains("unsafe"), "\($0)") }
        chmod(s.recordPath, 0o600)
        chmod(s.config.stateDir, 0o755)
        XCTAssertThrowsError(try s.store.loadRecord("alice")) { XCTAssertTrue("\($0)".contains("unsafe"), "\($0)") }
        chmod(s.config.stateDir, 0o700)
        XCTAssertNotNil(try s.store.loadRecord("alice"))
        chmod(s.config.keyDir + "/" + (try String(contentsOfFile: s.config.keyDir + "/active").trimmingCharacters(in: .whitespacesAndNewlines)) + ".key", 0o444)
        XCTAssertThrowsError(try s.store.loadRecord("alice")) { XCTAssertTrue("\($0)".contains("unsafe"), "\($0)") }
    }

    func testForeignOwnerIsRefused() throws {
        try XCTSkipUnless(geteuid() == 0, "needs root to chown")
        let s = try Scratch()
        try s.store.saveRecord(try s.record(), for: "alice")
        chown(s.recordPath, 65534, 65534)
        XCTAssertThrowsError(try s.store.loadRecord("alice")) { XCTAssertTrue("\($0)".contains("owned by uid 65534"), "\($0)") }
    }

    func testSymlinksAreNotFollowed() throws {
        let s = try Scratch()
        try s.store.saveRecord(try s.record(), for: "alice")
        try FileManager.default.createSymbolicLink(atPath: s.config.stateDir + "/bob.record", withDestinationPath: s.recordPath)
        XCTAssertThrowsError(try s.store.loadRecord("bob")) { XCTAssertTrue("\($0)".contains("symbolic link"), "\($0)") }
        try FileManager.default.createSymbolicLink(atPath: s.config.stateDir + "/bob.state", withDestinationPath: "/etc/passwd")
        XCTAssertThrowsError(try s.store.loadState("bob"))
    }

    func testBadUserNamesNeverReachAPath() throws {
        let s = try Scratch()
        for name in ["", "x\u{0}y", "a\nb", "tab\there", String(repeating: "a", count: 257)] {
            XCTAssertThrowsError(try s.store.loadRecord(name)) { guard case StoreError.invalidUser = $0 else { return XCTFail("\($0)") } }
        }
    }

    /// Directory users (SSSD, winbind) and every other name NSS may return get a file
    /// name of their own that is never a path, "." or "..", and maps back to the name;
    /// the names earlier versions accepted keep their file names.
    func testEveryUserNameMapsToOneSafeReversibleFileName() throws {
        let s = try Scratch()
        XCTAssertEqual(try UserFileName.encode("alice"), "alice")
        XCTAssertEqual(try UserFileName.encode("a.b_c-d"), "a.b_c-d")
        XCTAssertEqual(try UserFileName.encode("alice@corp.example.com"), "%alice%40corp.example.com")
        let names = ["../alice", "a/b", ".", "..", ".hidden", "-rf", "ä", "CORP\\alice", "alice@corp.example.com",
                     "%alice", "%%", String(repeating: "a", count: 33), String(repeating: "b", count: 256),
                     String(repeating: "/", count: 200)]
        for name in names {
            let file = try UserFileName.encode(name)
            XCTAssertFalse(file.contains("/") || file == "." || file == ".." || file.isEmpty, name)
            XCTAssertLessThanOrEqual(file.utf8.count + ".record".count + ".tmp.4194304".count + 1, 255, name)
            if file.hasPrefix("%~") { continue }  // long names are hashed
            XCTAssertEqual(UserFileName.decode(file), name)
            try s.store.saveRecord(try s.record(), for: name)
            XCTAssertNotNil(try s.store.loadRecord(name), name)
        }
        XCTAssertNil(try s.store.loadRecord("%2E%2E"))
        let listed = try s.store.enrolledUsers()
        XCTAssertEqual(Set(listed), Set(names.filter { (try? UserFileName.encode($0).hasPrefix("%~")) == false }))
    }

    /// A copy of a record taken before a backup code was spent, put back later, would
    /// revive that code: the state names the newest generation, an older record is refused.
    func testRestoredOlderRecordIsRefused() throws {
        let s = try Scratch()
        let r = try s.record()
        _ = try r.issueBackupCodes()
        try s.store.saveRecord(r, for: "alice")
        let old = try Data(contentsOf: URL(fileURLWithPath: s.recordPath))
        r.backupHashes.removeFirst()
        try s.store.saveRecord(r, for: "alice")
        XCTAssertEqual(try s.store.loadRecord("alice")?.backupHashes.count, 9)
        try old.write(to: URL(fileURLWithPath: s.recordPath))
        chmod(s.recordPath, 0o600)
        let fresh = FileUserStore(directory: s.config.stateDir, keys: s.keys)
        XCTAssertThrowsError(try fresh.loadRecord("alice")) { XCTAssertTrue("\($0)".contains("older than its state"), "\($0)") }
        // A state write by an older store object never lowers the generation.
        try fresh.saveState(UserState(), for: "alice")
        XCTAssertThrowsError(try FileUserStore(directory: s.config.stateDir, keys: s.keys).loadRecord("alice"))
    }

    func testDamagedFileAffectsOnlyItsUser() throws {
        let s = try Scratch()
        try s.store.saveRecord(try s.record(), for: "alice")
        try s.store.saveRecord(try s.record(), for: "bob")
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: s.recordPath))
        try Data("v=1\nlast_step=oops\n".utf8).write(to: URL(fileURLWithPath: s.config.stateDir + "/alice.state"))
        XCTAssertThrowsError(try s.store.loadRecord("alice"))
        XCTAssertThrowsError(try s.store.loadState("alice"))
        XCTAssertNotNil(try s.store.loadRecord("bob"))
        XCTAssertEqual(try s.store.loadState("bob"), UserState(recordGeneration: 1))  // one record write
        XCTAssertEqual(try s.store.enrolledUsers(), ["alice", "bob"])
    }

    func testStateRoundTripsAndWritesLeaveNoTemporaryFiles() throws {
        let s = try Scratch()
        let st = UserState(lastStep: 12345, failures: [1, 2, 3], lockedUntil: 99)
        try s.store.saveState(st, for: "alice")
        XCTAssertEqual(try s.store.loadState("alice"), st)
        let files = try FileManager.default.contentsOfDirectory(atPath: s.config.stateDir)
        XCTAssertEqual(files.filter { $0.contains(".tmp") }, [])
    }

    func testRemoveUserDeletesRecordAndLeavesOnlyATombstone() throws {
        let s = try Scratch()
        try s.store.saveRecord(try s.record(), for: "alice")
        let old = try XCTUnwrap(try s.store.sealedRecord("alice"))
        try s.store.saveState(UserState(lastStep: 5, failures: [1]), for: "alice")
        try s.store.removeUser("alice")
        XCTAssertNil(try s.store.loadRecord("alice"))
        XCTAssertEqual(try s.store.loadState("alice"), UserState.tombstone(after: 1))
        XCTAssertEqual(try s.store.enrolledUsers(), [])
        // The record of before, put back, is refused; the next enrolment is sealed later.
        try s.store.storeSealedRecord(old, for: "alice")
        XCTAssertThrowsError(try s.store.loadRecord("alice"))
        try s.store.removeUser("alice")
        try s.store.saveRecord(try s.record(), for: "alice")
        XCTAssertNotNil(try s.store.loadRecord("alice"))
        XCTAssertEqual(try s.store.loadState("alice").recordGeneration, 4)
        // A user never given a record leaves no file.
        try s.store.saveState(UserState(lastStep: 5), for: "bob")
        try s.store.removeUser("bob")
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.config.stateDir + "/bob.state"))
    }
}

final class ConfigTests: XCTestCase {
    func testDefaultsAndAllKeys() throws {
        let c = try Config.parse("""
        # comment
        state_dir = /var/lib/x/   # trailing comment
        key_dir=/etc/x/keys
        audit_log = /var/log/x.jsonl
        window = 2
        digits = 8
        period = 60
        algorithm = sha256
        issuer = Example Corp
        rate_limit = 3/60
        lockout = 15m
        socket = /run/x.sock
        """, path: "t.conf")
        XCTAssertEqual(c.stateDir, "/var/lib/x")
        XCTAssertEqual(c.keyDir, "/etc/x/keys")
        XCTAssertEqual(c.auditLog, "/var/log/x.jsonl")
        XCTAssertEqual(c.window, 2)
        XCTAssertEqual(c.digits, 8)
        XCTAssertEqual(c.period, 60)
        XCTAssertEqual(c.algorithm, .sha256)
        XCTAssertEqual(c.issuer, "Example Corp")
        XCTAssertEqual(c.rateLimitFailures, 3)
        XCTAssertEqual(c.rateLimitSeconds, 60)
        XCTAssertEqual(c.lockout, 900)
        XCTAssertEqual(c.socket, "/run/x.sock")
        let d = try Config.parse("", path: "t.conf")
        XCTAssertEqual(d.window, 1)
        XCTAssertEqual(d.rateLimitFailures, 5)
        XCTAssertEqual(d.rateLimitSeconds, 300)
        XCTAssertEqual(d.stateDir, "/var/lib/twostep")
    }

    func testWindowsLineEndingsAreRead() throws {
        // What a reviewer wrote and had refused: spaces around rate_limit's slash, 0s as no drift.
        let spaced = try Config.parse("rate_limit = 5 / 5m\nmax_drift = 0s\n", path: "t.conf")
        XCTAssertEqual(spaced.rateLimitFailures, 5)
        XCTAssertEqual(spaced.rateLimitSeconds, 300)
        XCTAssertEqual(spaced.maxDrift, 0)
        // lockout_max shorter than lockout: the longer holds (a typo never shortens a lockout).
        let raised = try Config.parse("lockout = 1h\nlockout_max = 5m\n", path: "t.conf")
        XCTAssertEqual(raised.lockoutMax, 3600)
        XCTAssertTrue(raised.lockoutMaxRaised)
        let c = try Config.parse("window = 2\r\ndigits = 8\r\n", path: "t.conf")
        XCTAssertEqual(c.window, 2)
        XCTAssertEqual(c.digits, 8)
    }

    func testErrorsNameTheLine() {
        let cases: [(String, String)] = [
            ("window = 1\nwindwo = 2", "t.conf:2: unknown key \"windwo\""),
            ("digits = 7", "t.conf:1: digits"),
            ("state_dir = relative/path", "t.conf:1: state_dir: must be an absolute path"),
            ("rate_limit = 5", "t.conf:1: rate_limit"),
            ("window = 1\nwindow = 2", "t.conf:2: window: given twice"),
            ("just words", "t.conf:1: expected `key = value`"),
            ("algorithm = MD5", "t.conf:1: algorithm"),
            ("lockout = -5", "t.conf:1: lockout"),
            ("state_dir = /var/../tmp/x", "t.conf:1: state_dir: must not contain `..`"),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try Config.parse(text, path: "t.conf")) { error in
                XCTAssertTrue("\(error)".hasPrefix(expected), "\(text) gave \(error)")
            }
        }
    }
}

final class RequirePolicyTests: XCTestCase {
    /// When NSS cannot say which groups a user is in, `require = GROUPS` must not treat
    /// the user as outside them (that would skip 2FA): it fails closed.
    func testGroupRequirementFailsClosedWhenNSSCannotAnswer() throws {
        var c = Config(path: "/dev/null")
        c.require = .groups(["wheel"])
        XCTAssertEqual(c.requires("no-such-user-\(getpid())"), true)
        XCTAssertEqual(c.requires("root"), false)  // root: known, and not in wheel here
        XCTAssertNil(groupNames(of: "no-such-user-\(getpid())"))
        XCTAssertEqual(groupNames(of: "root")?.contains("root"), true)
    }
}
