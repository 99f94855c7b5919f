// SPDX-License-Identifier: Apache-2.0
import XCTest
import TwoStepCrypto

final class ScryptTests: XCTestCase {
    // RFC 7914 section 12, the second and first vectors.
    func testScryptKnownAnswersRFC7914() throws {
        XCTAssertEqual(hexString(try Crypto.scrypt(passphrase: ascii("password"), salt: ascii("NaCl"),
                                                   n: 1024, r: 8, p: 16, count: 64)),
                       "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162" +
                       "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640")
        XCTAssertEqual(hexString(try Crypto.scrypt(passphrase: [], salt: [], n: 16, r: 1, p: 1, count: 64)),
                       "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442" +
                       "fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906")
    }

    func testScryptRefusesImpossibleParameters() {
        // N must be a power of two greater than 1.
        XCTAssertThrowsError(try Crypto.scrypt(passphrase: ascii("x"), salt: ascii("y"), n: 3, r: 8, p: 1, count: 32))
    }
}
