// SPDX-License-Identifier: Apache-2.0
import XCTest
import TwoStepCore

final class Base32Tests: XCTestCase {
    let rfc4648: [(String, String)] = [
        ("", ""), ("f", "MY======"), ("fo", "MZXQ===="), ("foo", "MZXW6==="),
        ("foob", "MZXW6YQ="), ("fooba", "MZXW6YTB"), ("foobar", "MZXW6YTBOI======"),
    ]

    func testRFC4648Section10Vectors() throws {
        for (plain, encoded) in rfc4648 {
            XCTAssertEqual(Base32.encode(ascii(plain), padding: true), encoded)
            XCTAssertEqual(Base32.encode(ascii(plain)), encoded.filter { $0 != "=" })
            if !plain.isEmpty {
                XCTAssertEqual(try Base32.decode(encoded), ascii(plain), encoded)
            }
        }
    }

    func testDecodeIsForgiving() throws {
        XCTAssertEqual(try Base32.decode("mzxw6ytboi"), ascii("foobar"))
        XCTAssertEqual(try Base32.decode("MZXW 6YTB OI"), ascii("foobar"))
        XCTAssertEqual(try Base32.decode("mzxw-6ytb-oi======"), ascii("foobar"))
        XCTAssertEqual(try Base32.decode("  MzXw6YtBoI  "), ascii("foobar"))
        XCTAssertEqual(try Base32.decode("JBSWY3DPEHPK3PXP"), ascii("Hello!\u{DE}\u{AD}\u{BE}\u{EF}").prefix(6) + [0xde, 0xad, 0xbe, 0xef])
    }

    func testDecodeNamesTheBadCharacterAndPosition() {
        XCTAssertThrowsError(try Base32.decode("ABC1"), equals: Base32Error.invalidCharacter("1", position: 4))
        XCTAssertThrowsError(try Base32.decode("A B!"), equals: Base32Error.invalidCharacter("!", position: 4))
        XCTAssertThrowsError(try Base32.decode("MZXW8"), equals: Base32Error.invalidCharacter("8", position: 5))
        XCTAssertThrowsError(try Base32.decode("MZ=XW"), equals: Base32Error.invalidCharacter("X", position: 4))
        XCTAssertThrowsError(try Base32.decode("MZé"), equals: Base32Error.invalidCharacter("é", position: 3))
        let description = String(describing: Base32Error.invalidCharacter("1", position: 4))
        XCTAssertTrue(description.contains("'1'") && description.contains("position 4"), description)
    }

    func testDecodeRejectsEmptyAndImpossibleLengths() {
        XCTAssertThrowsError(try Base32.decode(""), equals: Base32Error.empty)
        XCTAssertThrowsError(try Base32.decode(" - ="), equals: Base32Error.empty)
        XCTAssertThrowsError(try Base32.decode("M"), equals: Base32Error.invalidLength)
        XCTAssertThrowsError(try Base32.decode("MZX"), equals: Base32Error.invalidLength)
        XCTAssertThrowsError(try Base32.decode("MZXW6Y"), equals: Base32Error.invalidLength)
    }

    func testRoundTripOfRandomLengths() throws {
        for n in 1...41 {
            let bytes = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ n) }
            XCTAssertEqual(try Base32.decode(Base32.encode(bytes)), bytes)
            XCTAssertEqual(try Base32.decode(Base32.encode(bytes, padding: true)), bytes)
        }
    }
}

final class Base64Tests: XCTestCase {
    let rfc4648: [(String, String)] = [
        ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy"),
    ]

    func testRFC4648Section10Vectors() throws {
        for (plain, encoded) in rfc4648 {
            XCTAssertEqual(Base64.encode(ascii(plain)), encoded)
            XCTAssertEqual(try Base64.decode(encoded), ascii(plain))
        }
        XCTAssertEqual(Base64.encode([0xfb, 0xff, 0xbf]), "+/+/")
        XCTAssertEqual(try Base64.decode("+/+/"), [0xfb, 0xff, 0xbf])
    }

    func testDecodeIgnoresOnlyTrailingWhitespace() throws {
        XCTAssertEqual(try Base64.decode("Zm9vYmFy\n"), ascii("foobar"))
        XCTAssertEqual(try Base64.decode("Zm9vYg==\r\n"), ascii("foob"))
        XCTAssertThrowsError(try Base64.decode(" Zm9v"))
        XCTAssertThrowsError(try Base64.decode("Zm9v\nYmFy"))
    }

    func testDecodeIsStrict() {
        XCTAssertThrowsError(try Base64.decode("Zm9"), equals: Base64Error.invalidLength)
        XCTAssertThrowsError(try Base64.decode("Zm9vYg"), equals: Base64Error.invalidLength)
        XCTAssertThrowsError(try Base64.decode("Zm=v"), equals: Base64Error.invalidPadding)
        XCTAssertThrowsError(try Base64.decode("Zg==Zm9v"), equals: Base64Error.invalidPadding)
        XCTAssertThrowsError(try Base64.decode("Z==="), equals: Base64Error.invalidPadding)
        XCTAssertThrowsError(try Base64.decode("Zh=="), equals: Base64Error.invalidPadding)  // stray bits
        XCTAssertThrowsError(try Base64.decode("Zm9-"), equals: Base64Error.invalidCharacter(position: 4))
        XCTAssertThrowsError(try Base64.decode("Zm9_YmFy"), equals: Base64Error.invalidCharacter(position: 4))
    }

    func testRoundTripOfAllByteValues() throws {
        let bytes = (0...255).map { UInt8($0) }
        for n in [0, 1, 2, 3, 100, 256] {
            XCTAssertEqual(try Base64.decode(Base64.encode(Array(bytes.prefix(n)))), Array(bytes.prefix(n)))
        }
    }
}

final class DecimalTests: XCTestCase {
    func testDecimalIntegerReadsWhatSwiftsInitializerReads() {
        // The state file's numbers are read from bytes; the answers must be the standard
        // library's for the same text, sign, bounds and junk included.
        let texts = ["0", "7", "+5", "-0", "-1", "-", "+", "", "007", " 1", "1 ", "+-1", "1-", "1e3", "0x10", "٣",
                     "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
                     "18446744073709551615", "18446744073709551616", "99999999999999999999999", "1000", "-1000"]
        for t in texts {
            XCTAssertEqual(decimalInteger(Array(t.utf8), as: Int64.self), Int64(t), t)
            XCTAssertEqual(decimalInteger(Array(t.utf8), as: UInt64.self), UInt64(t), t)
            XCTAssertEqual(decimalInteger(Array(t.utf8)[...], as: Int.self), Int(t), t)
            XCTAssertEqual(decimalInteger(Array(t.utf8), as: Int8.self), Int8(t), t)
        }
        for n in stride(from: Int64.min, to: Int64.max - Int64.max / 997, by: Int(Int64.max / 997)) {
            XCTAssertEqual(decimalInteger(Array(String(n).utf8), as: Int64.self), n)
        }
    }

    func testURICounterDigitsTakeNoSignAndAtMostTwentyDigits() throws {
        // otpauth's counter= reads through decimalInteger but keeps its own rule.
        func uri(_ c: String) -> String { "otpauth://hotp/a?secret=GEZDGNBV&counter=" + c }
        for (text, value) in [("0", 0), ("007", 7), ("18446744073709551615", UInt64.max)] as [(String, UInt64)] {
            XCTAssertEqual(try OTPAuthURI(parsing: uri(text)).counter, value, text)
        }
        for text in ["-0", "-1", "1e3", "18446744073709551616", "000000000000000000001"] {
            XCTAssertThrowsError(try OTPAuthURI(parsing: uri(text)), equals: OTPAuthURIError.invalidCounter(text))
        }
        XCTAssertThrowsError(try OTPAuthURI(parsing: uri("%2B5")), equals: OTPAuthURIError.invalidCounter("+5"))
    }
}

final class PercentDecodingTests: XCTestCase {
    private func decoded(_ text: String, plus: Bool = false, _ malformed: MalformedEscape) -> String? {
        percentDecoded(Array(text.utf8), plusIsSpace: plus, malformed: malformed).map { String(decoding: $0, as: UTF8.self) }
    }

    func testEscapesInEitherCaseAndPlus() {
        XCTAssertEqual(decoded("a%2fb%2Fc%41", .refuse), "a/b/cA")
        XCTAssertEqual(decoded("a+b", plus: true, .refuse), "a b")
        XCTAssertEqual(decoded("a+b", .refuse), "a+b")
        XCTAssertEqual(decoded("", .refuse), "")
    }

    func testMalformedEscapesAreRefusedOrKept() {
        for text in ["%", "%4", "ab%", "%zz", "%4g", "x%%41"] {
            XCTAssertNil(decoded(text, .refuse), text)
        }
        XCTAssertEqual(decoded("%", .keep), "%")
        XCTAssertEqual(decoded("ab%4", .keep), "ab%4")
        XCTAssertEqual(decoded("%zz%70", .keep), "%zzp")
        XCTAssertEqual(decoded("x%%41", .keep), "x%A")
    }
}
