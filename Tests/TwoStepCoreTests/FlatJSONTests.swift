// SPDX-License-Identifier: Apache-2.0
import XCTest
@testable import TwoStepCore

/// The parser of `admin import --batch` lines (RFC 8259, flat objects only).
final class FlatJSONTests: XCTestCase {
    func parse(_ s: String) throws -> FlatJSON { try FlatJSON(parsing: Array(s.utf8)) }

    func testFieldsOfEveryKindAndEscapes() throws {
        let o = try parse(#" { "user" : "al\"ice\u00e9\ud83d\ude00", "digits": 8, "ok": true, "no": false, "n": null } "#)
        XCTAssertEqual(o.text("user"), "al\"iceé😀")
        guard case .number("8")? = o["digits"], case .bool(true)? = o["ok"], case .bool(false)? = o["no"], case .null? = o["n"] else {
            return XCTFail("\(o.keys)")
        }
        XCTAssertEqual(o.keys, ["user", "digits", "ok", "no", "n"])
        XCTAssertEqual(try parse("{}").keys, [])
    }

    func testMalformedLinesAreRefusedWithAPosition() {
        for bad in ["", "[]", "{", #"{"a":}"#, #"{"a":1,}"#, #"{"a":1} x"#, #"{"a":{"b":1}}"#, #"{"a":[1]}"#,
                    #"{"a":"x","a":"y"}"#, #"{"a":"\q"}"#, #"{"a":"\ud800"}"#, "{\"a\":\"\u{1}\"}", #"{a:1}"#] {
            XCTAssertThrowsError(try parse(bad), bad) { e in
                XCTAssertTrue("\(e)".contains("at byte "), "\(e)")
            }
        }
    }

    func testBase32FromBytesMatchesTheStringDecoder() throws {
        for text in ["JBSWY3DPEHPK3PXP", "jbsw y3dp-ehpk 3pxp", "MZXW6YTBOI======"] {
            XCTAssertEqual(try Base32.decode(bytes: Array(text.utf8)), try Base32.decode(text))
        }
        XCTAssertThrowsError(try Base32.decode(bytes: Array("JBSWY3DP1HPK3PXP".utf8))) { e in
            XCTAssertEqual(e as? Base32Error, .invalidCharacter("1", position: 9))
        }
    }
}
