// SPDX-License-Identifier: Apache-2.0
import XCTest
import TwoStepCore

final class OTPAuthURITests: XCTestCase {
    let secret = ascii("12345678901234567890")

    func testBuildsGoogleKeyUriFormat() {
        let uri = OTPAuthURI(issuer: "Example", account: "alice@example.com", secret: secret)
        XCTAssertEqual(uri.uriString,
                       "otpauth://totp/Example:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Example&algorithm=SHA1&digits=6&period=30")
        let bare = OTPAuthURI(issuer: nil, account: "bob", secret: [0xff])
        XCTAssertEqual(bare.uriString, "otpauth://totp/bob?secret=74&algorithm=SHA1&digits=6&period=30")
    }

    func testSpecialCharactersArePercentEncoded() {
        let uri = OTPAuthURI(issuer: "ACME Co: R&D?", account: "a b:c&d?e%f", secret: secret)
        let s = uri.uriString
        XCTAssertTrue(s.hasPrefix("otpauth://totp/ACME%20Co%3A%20R%26D%3F:a%20b%3Ac%26d%3Fe%25f?"), s)
        XCTAssertTrue(s.contains("&issuer=ACME%20Co%3A%20R%26D%3F&"), s)
        XCTAssertEqual(OTPAuthURI(issuer: "Zürich", account: "josé", secret: secret).uriString.prefix(36),
                       "otpauth://totp/Z%C3%BCrich:jos%C3%A9")
    }

    func testRoundTripKeepsEverything() throws {
        let cases: [OTPAuthURI] = [
            OTPAuthURI(issuer: "Example", account: "alice", secret: secret),
            OTPAuthURI(issuer: "ACME Co: R&D?", account: "a b:c&d?e%f", secret: secret),
            OTPAuthURI(issuer: "Zürich 🏔", account: "josé+tag@example.org", secret: [1, 2, 3, 4, 5],
                       parameters: OTPParameters(algorithm: .sha512, digits: 8, period: 60)),
            OTPAuthURI(issuer: nil, account: "root@host", secret: secret, parameters: OTPParameters(algorithm: .sha256, digits: 8, period: 45)),
            OTPAuthURI(kind: .hotp, issuer: "H", account: "u", secret: secret, counter: 42),
        ]
        for original in cases {
            let parsed = try OTPAuthURI(parsing: original.uriString)
            XCTAssertEqual(parsed, original, original.uriString)
        }
    }

    func testParsesURIsFromOtherGenerators() throws {
        // Issuer only as a parameter; label with "%3A" separator and a space; '+' as space in the query.
        let a = try OTPAuthURI(parsing: "otpauth://totp/alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example")
        XCTAssertEqual(a.issuer, "Example")
        XCTAssertEqual(a.account, "alice@google.com")
        XCTAssertEqual(a.parameters, .standard)
        let b = try OTPAuthURI(parsing: "otpauth://totp/Big%20Corp%3A%20john.doe?secret=JBSWY3DPEHPK3PXP&issuer=Big+Corp&period=60&digits=8&algorithm=sha256")
        XCTAssertEqual(b.issuer, "Big Corp")
        XCTAssertEqual(b.account, "john.doe")
        XCTAssertEqual(b.parameters, OTPParameters(algorithm: .sha256, digits: 8, period: 60))
        let c = try OTPAuthURI(parsing: "OTPAUTH://TOTP/Issuer:%20user?SECRET=jbswy3dpehpk3pxp&image=https%3A%2F%2Fexample.com%2Fx.png")
        XCTAssertEqual(c.issuer, "Issuer")
        XCTAssertEqual(c.account, "user")
        XCTAssertEqual(c.secret, try Base32.decode("JBSWY3DPEHPK3PXP"))
        let d = try OTPAuthURI(parsing: "otpauth://hotp/Counter:me?secret=GEZDGNBV&counter=7")
        XCTAssertEqual(d.kind, .hotp)
        XCTAssertEqual(d.counter, 7)
    }

    func testParseErrorsAreSpecific() {
        XCTAssertThrowsError(try OTPAuthURI(parsing: "https://totp/a?secret=GEZDGNBV"), equals: OTPAuthURIError.wrongScheme("https"))
        XCTAssertThrowsError(try OTPAuthURI(parsing: "otpauth://motp/a?secret=GEZDGNBV"), equals: OTPAuthURIError.unsupportedType("motp"))
        XCTAssertThrowsError(try OTPAuthURI(parsing: "otpauth://totp/?secret=GEZDGNBV"), equals: OTPAuthURIError.missingLabel)
        XCTAssertThrowsError(try OTPAuthURI(parsing: "otpauth://totp/Issuer:?secret=GEZDGNBV"), equals: OTPAuthURIError.emptyAccount)
        XCTAssertThrowsError(try OTPAuthURI(parsing: "otpauth://totp/a"), equals: OTPAuthURIError.missingSecret)
        XCTAssertThrowsError(try OTPAuthURI(parsing: "otpauth://totp/a?issuer=x"), equals: OTPAuthURIError.missingSecret)
        XCTAssertThrowsError(try OTPAuthURI(parsing: "otpauth://totp/a?secret="), equals: OTPAuthURIError.missingSecret)
        XCTAssertThrowsError(try OTPAuthURI(parsing: "otpauth://totp/a?secret=GEZ1"),
                             equals: OTPAuthURIError.invalidSecret(.invalidCharacter("1", position: 4)))
        XCTAssertThrowsError(try OTPAuthURI(parsing: "otpauth://totp/a?secret=GEZDGNBV&digits=5"), equals: OTPAuthURIError.invalidDigits("5"))
        XCTAssertThrowsError(try OTPAuthURI(parsing: "otpauth://totp/a?secret=GEZDGNBV&digits=six"), equals: OTPAuthURIError.invalidDigits("six"))
        XCTAssertThrowsError(try OTPAuthURI(parsing: "otpauth://totp/a?secret=GEZDGNBV&digits=-6"), equals: OTPAuthURIError.invalidDigits("-6"))
        XCTAssertThrowsError(try OTPAuthURI(parsing: "otpauth://totp/a?secret=GEZDGNBV&period=0"), equals: OTPAuthURIError.invalidPeriod("0"))
        XCTAssertThrowsError(try OTPAuthURI(parsing: "otpauth://totp/a?secret=GEZDGNBV&algorithm=MD5"), equals: OTPAuthURIError.unsupportedAlgorithm("MD5"))
        XCTAssertThrowsError(try OTPAuthURI(parsing: "otpauth://hotp/a?secret=GEZDGNBV"), equals: OTPAuthURIError.missingCounter)
        XCTAssertThrowsError(try OTPAuthURI(parsing: "otpauth://hotp/a?secret=GEZDGNBV&counter=x"), equals: OTPAuthURIError.invalidCounter("x"))
        XCTAssertThrowsError(try OTPAuthURI(parsing: "otpauth://totp/a%2?secret=GEZDGNBV"), equals: OTPAuthURIError.invalidPercentEncoding("a%2"))
        XCTAssertThrowsError(try OTPAuthURI(parsing: "otpauth://totp/a%FF?secret=GEZDGNBV"), equals: OTPAuthURIError.invalidUTF8("a%FF"))
        XCTAssertThrowsError(try OTPAuthURI(parsing: "otpauth://totp/a?secret=GEZDGNBV&secret=GEZDGNBV"), equals: OTPAuthURIError.duplicateParameter("secret"))
        XCTAssertThrowsError(try OTPAuthURI(parsing: "otpauth://totp/One:a?secret=GEZDGNBV&issuer=Two"),
                             equals: OTPAuthURIError.issuerMismatch(label: "One", parameter: "Two"))
        XCTAssertTrue(OTPAuthURIError.missingSecret.description.contains("secret"))
        XCTAssertTrue(OTPAuthURIError.wrongScheme("https").description.contains("otpauth://"))
    }
}
