// SPDX-License-Identifier: Apache-2.0
import XCTest
import TwoStepCore

final class BackupCodesTests: XCTestCase {
    let key = [UInt8](repeating: 0x42, count: 32)

    func testGeneratesTenDistinctWellFormedCodes() throws {
        let codes = try BackupCodes.generate()
        XCTAssertEqual(codes.count, 10)
        XCTAssertEqual(Set(codes).count, 10)
        let alphabet = Set("0123456789abcdefghjkmnpqrstvwxyz")
        for code in codes {
            XCTAssertEqual(code.count, 11, code)
            XCTAssertEqual(Array(code)[5], "-", code)
            XCTAssertTrue(code.replacingOccurrences(of: "-", with: "").allSatisfy(alphabet.contains), code)
            XCTAssertEqual(BackupCodes.normalize(code), code.replacingOccurrences(of: "-", with: ""))
        }
        XCTAssertNotEqual(try BackupCodes.generate(), codes)
    }

    func testGeneratedCharactersAreSpreadOverTheWholeAlphabet() throws {
        var seen = Set<Character>()
        for _ in 0..<20 { for code in try BackupCodes.generate() { seen.formUnion(code.filter { $0 != "-" }) } }
        XCTAssertEqual(seen.count, 32)  // 2000 draws from 32 symbols: all appear unless badly biased
    }

    func testNormalizeFoldsCaseSpacesAndLookalikes() {
        XCTAssertEqual(BackupCodes.normalize("abcde-fghjk"), "abcdefghjk")
        XCTAssertEqual(BackupCodes.normalize("ABCDE FGHJK"), "abcdefghjk")
        XCTAssertEqual(BackupCodes.normalize(" ab cd e-fg hj k "), "abcdefghjk")
        XCTAssertEqual(BackupCodes.normalize("oOiIlL0123"), "0011110123")
        XCTAssertNil(BackupCodes.normalize("abcde-fghj"))        // 9 characters
        XCTAssertNil(BackupCodes.normalize("abcde-fghjkm"))      // 11 characters
        XCTAssertNil(BackupCodes.normalize("abcde-fghju"))       // u is not in the alphabet
        XCTAssertNil(BackupCodes.normalize("abcde_fghjk"))
        XCTAssertNil(BackupCodes.normalize(""))
        XCTAssertNil(BackupCodes.normalize("123456"))
        XCTAssertTrue(BackupCodes.looksLikeBackupCode("ABCDE-FGHJK"))
        XCTAssertFalse(BackupCodes.looksLikeBackupCode("123456"))
    }

    func testHashIsKeyedHMACSHA256() throws {
        let h = try BackupCodes.hash("abcdefghjk", key: key)
        XCTAssertEqual(h.count, 32)
        XCTAssertEqual(h, try BackupCodes.hash("abcdefghjk", key: key))
        XCTAssertNotEqual(h, try BackupCodes.hash("abcdefghjk", key: [UInt8](repeating: 0x43, count: 32)))
        XCTAssertNotEqual(h, try BackupCodes.hash("abcdefghjm", key: key))
    }

    func testMatchReturnsTheRightIndex() throws {
        let codes = try BackupCodes.generate()
        let hashes = try codes.map { try BackupCodes.hash(BackupCodes.normalize($0)!, key: key) }
        for (i, code) in codes.enumerated() {
            XCTAssertEqual(try BackupCodes.match(code, hashes: hashes, key: key), i)
            XCTAssertEqual(try BackupCodes.match(code.uppercased().replacingOccurrences(of: "-", with: " "), hashes: hashes, key: key), i)
        }
    }

    func testMatchRefusesUnknownMalformedAndWrongKey() throws {
        let codes = try BackupCodes.generate()
        let hashes = try codes.map { try BackupCodes.hash(BackupCodes.normalize($0)!, key: key) }
        var other = Array(codes[0].filter { $0 != "-" })
        other[0] = other[0] == "a" ? "b" : "a"
        let unknown = String(other)
        if !codes.map({ $0.replacingOccurrences(of: "-", with: "") }).contains(unknown) {
            XCTAssertNil(try BackupCodes.match(unknown, hashes: hashes, key: key))
        }
        XCTAssertNil(try BackupCodes.match("not a code", hashes: hashes, key: key))
        XCTAssertNil(try BackupCodes.match(codes[3], hashes: hashes, key: [UInt8](repeating: 0, count: 32)))
        XCTAssertNil(try BackupCodes.match(codes[3], hashes: [], key: key))
    }

    func testLookalikeLettersMatchTheDigitsTheyStandFor() throws {
        let hashes = [try BackupCodes.hash("0011abcdef", key: key)]
        XCTAssertEqual(try BackupCodes.match("OOIL-ABCDEF", hashes: hashes, key: key), 0)
    }
}

final class SecretGeneratorTests: XCTestCase {
    func testNewSecretsAreAtLeast160Bits() throws {
        XCTAssertEqual(SecretGenerator.defaultBytes, 20)
        XCTAssertEqual(try SecretGenerator.newSecret().count, 20)
        XCTAssertEqual(try SecretGenerator.newSecret(bytes: 32).count, 32)
        XCTAssertNotEqual(try SecretGenerator.newSecret(), try SecretGenerator.newSecret())
        XCTAssertThrowsError(try SecretGenerator.newSecret(bytes: 10), equals: SecretGeneratorError.tooShort(10))
    }
}
