// SPDX-License-Identifier: Apache-2.0
import Foundation
import TwoStepCore
import TwoStepCrypto
import TwoStepStore
import XCTest

/// What the PostgreSQL store relies on without a server: its config keys, the key bundle
/// that carries master keys to a new host, and the byte-for-byte copy between stores.
final class DatabaseConfigTests: XCTestCase {
    func parse(_ text: String) throws -> Config { try Config.parse(text, path: "t.conf") }

    func testPostgresqlNeedsADatabase() throws {
        XCTAssertThrowsError(try parse("store = postgresql\n")) { error in
            XCTAssertTrue("\(error)".contains("needs `database = URI`"), "\(error)")
        }
        let c = try parse("store = postgresql\ndatabase = postgresql://twostep@db.example.org/twostep?sslmode=verify-full\n" +
                          "database_password_file = /etc/twostep/db.password\n")
        XCTAssertEqual(c.store, .postgresql)
        XCTAssertEqual(c.databasePasswordFile, "/etc/twostep/db.password")
        XCTAssertEqual(try parse("").store, .files)
        XCTAssertThrowsError(try parse("store = mysql\n"))
    }

    func testPasswordInTheConnectionStringIsRefused() {
        for uri in ["postgresql://twostep:hunter2@db/twostep", "postgres://u:p@db:5432/x",
                    "postgresql://twostep@db/twostep?password=x", "host=db user=twostep password = x",
                    // libpq decodes %XX in a URI's parameter names as well as in values
                    "postgresql://twostep@db/twostep?sslmode=verify-full&%70assword=x",
                    "postgresql://twostep@db/twostep?%50ASSWORD=x", "postgresql://twostep@db/twostep?pass%77ord%3Dx"] {
            XCTAssertThrowsError(try parse("database = \(uri)\n"), uri) { error in
                XCTAssertTrue("\(error)".contains("must not hold a password"), "\(error)")
                XCTAssertFalse("\(error)".contains("hunter2"))
            }
        }
        XCTAssertNoThrow(try parse("database = host=db user=twostep dbname=twostep sslmode=verify-full\n"))
        XCTAssertNoThrow(try parse("database = postgresql://twostep@db/two%20step?sslmode=verify-full\n"))
    }

    /// A duration past the limit says so, not that it is no duration.
    func testADurationTooLongNamesTheLimit() throws {
        XCTAssertEqual(try parse("trust_ssh_key = 366d\n").trustSSHKey, 366 * 86400)
        for text in ["trust_ssh_key = 400d\n", "lockout = 9000h\n"] {
            XCTAssertThrowsError(try parse(text), text) { XCTAssertTrue("\($0)".contains("at most"), "\($0)") }
        }
        XCTAssertThrowsError(try parse("lockout = soon\n")) { XCTAssertTrue("\($0)".contains("expected a duration"), "\($0)") }
    }
}

final class KeyBundleTests: XCTestCase {
    func testBundleCarriesEveryKeyAndTheActiveOne() throws {
        let a = try Scratch()
        let old = try a.keys.activeKey().id
        let new = try a.keys.createKey()
        let passphrase = Array("correct horse battery".utf8)
        let text = try KeyBundle.export(a.keys, passphrase: passphrase)
        let opened = try KeyBundle.open(text, passphrase: passphrase)
        XCTAssertEqual(opened.active, new)
        XCTAssertEqual(Set(opened.keys.map(\.id)), [old, new])

        let b = try Scratch()
        try b.keys.install(opened)
        XCTAssertEqual(try b.keys.activeKey().id, new)
        // A record sealed on A opens on B.
        try a.store.saveRecord(try a.record(), for: "alice")
        let sealed = try a.store.sealedRecord("alice")!
        try b.store.storeSealedRecord(sealed, for: "alice")
        XCTAssertNotNil(try b.store.loadRecord("alice"))
    }

    func testWrongPassphraseOrChangedBundleIsRefused() throws {
        let a = try Scratch()
        let text = try KeyBundle.export(a.keys, passphrase: Array("correct horse battery".utf8))
        XCTAssertThrowsError(try KeyBundle.open(text, passphrase: Array("correct horse batterz".utf8)))
        // The salt line is authenticated too.
        var lines = text.split(separator: "\n").map(String.init)
        lines[2] = "salt " + Base64.encode([UInt8](repeating: 7, count: 16))
        XCTAssertThrowsError(try KeyBundle.open(lines.joined(separator: "\n"), passphrase: Array("correct horse battery".utf8)))
        XCTAssertThrowsError(try KeyBundle.export(a.keys, passphrase: Array("short".utf8)))
    }
}

final class StoreCopyTests: XCTestCase {
    func testCopyIsByteForByteAndASecondRunChangesNothing() throws {
        let a = try Scratch()
        let copy = Scratch.sharing(a)
        for user in ["alice", "bob"] {
            try a.store.saveRecord(try a.record(), for: user)
            try a.store.saveState(UserState(lastStep: 42, failures: [1], lockedUntil: 0), for: user)
        }
        let first = try StoreCopy.copy(from: a.store, to: copy, keys: a.keys)
        XCTAssertEqual(first.copied, ["alice", "bob"])
        XCTAssertEqual(try copy.sealedRecord("bob"), try a.store.sealedRecord("bob"))
        XCTAssertEqual(try copy.loadState("bob").lastStep, 42)
        let second = try StoreCopy.copy(from: a.store, to: copy, keys: a.keys)
        XCTAssertEqual(second.copied, [])
        XCTAssertEqual(second.unchanged, ["alice", "bob"])
    }

    func testARecordThatDoesNotOpenIsNotCopied() throws {
        let a = try Scratch()
        let copy = Scratch.sharing(a)
        try a.store.saveRecord(try a.record(), for: "alice")
        try a.store.saveRecord(try a.record(), for: "bob")
        // bob's file now holds alice's sealed bytes: it does not open as bob's.
        try a.store.storeSealedRecord(try a.store.sealedRecord("alice")!, for: "bob")
        let report = try StoreCopy.copy(from: a.store, to: copy, keys: a.keys)
        XCTAssertEqual(report.copied, ["alice"])
        XCTAssertEqual(report.failed.map(\.user), ["bob"])
        XCTAssertNil(try copy.sealedRecord("bob"))
    }
}

extension Scratch {
    /// Another state directory under the same keys (a second store of one fleet).
    static func sharing(_ other: Scratch) -> FileUserStore {
        let dir = other.root + "/state-copy"
        try? Files.makeDirectory(dir, mode: 0o700)
        return FileUserStore(directory: dir, keys: other.keys)
    }
}
