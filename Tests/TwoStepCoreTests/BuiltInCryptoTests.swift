// SPDX-License-Identifier: Apache-2.0
import XCTest
import COpenSSL
@testable import TwoStepCrypto

/// twostep-verify's libcrypto path (Crypto.startForOneLogin: built-in EVP tables, no
/// provider fetch) must give exactly what the provider path gives: records sealed by the
/// CLI or twostep-helper open in twostep-verify and the other way round. (AESGCMTests'
/// flipped-byte test runs on both paths.)
final class BuiltInCryptoTests: XCTestCase {
    func testStartUpChecksPass() {
        // The built-in objects exist (else `.builtIn` would quietly be the provider path
        // and the comparisons below would prove nothing).
        for alg in HashAlgorithm.allCases { XCTAssertNotNil(Crypto.builtInDigest(alg), "\(alg)") }
        XCTAssertNotNil(AESGCM.cipher(.builtIn))
        XCTAssertNotEqual(AESGCM.cipher(.builtIn), EVP_aes_256_gcm())
        XCTAssertTrue(Crypto.builtInGivesKnownAnswers())
    }

    func testHMACAndDigestsMatchTheProvider() throws {
        let keys: [[UInt8]] = [[], ascii("Jefe"), [UInt8](repeating: 0x0b, count: 20), [UInt8](repeating: 0xaa, count: 131)]
        let messages: [[UInt8]] = [[], ascii("what do ya want for nothing?"), [UInt8](repeating: 0xdd, count: 300)]
        for alg in HashAlgorithm.allCases {
            for key in keys {
                for message in messages {
                    XCTAssertEqual(try Crypto.hmac(alg, key: key, message: message, using: .builtIn),
                                   try Crypto.hmac(alg, key: key, message: message, using: .provider), "\(alg) \(key.count) \(message.count)")
                }
            }
            for message in messages {
                XCTAssertEqual(try Crypto.digest(alg, message, using: .builtIn), try Crypto.digest(alg, message, using: .provider))
            }
        }
        // RFC 4231 test case 6: a key longer than the block is hashed first.
        XCTAssertEqual(hexString(try Crypto.hmac(.sha256, key: [UInt8](repeating: 0xaa, count: 131),
                                                 message: ascii("Test Using Larger Than Block-Size Key - Hash Key First"), using: .builtIn)),
                       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }

    func testAESGCMInteroperatesWithTheProvider() throws {
        let key = [UInt8]((0..<32).map { UInt8($0) }), nonce = [UInt8]((100..<112).map { UInt8($0) })
        for size in [0, 1, 15, 16, 17, 245, 4096] {
            let plaintext = [UInt8]((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7) }), aad = ascii("user=alice;v=\(size)")
            let a = try AESGCM.seal(key: key, nonce: nonce, plaintext: plaintext, aad: aad, using: .builtIn)
            let b = try AESGCM.seal(key: key, nonce: nonce, plaintext: plaintext, aad: aad, using: .provider)
            XCTAssertEqual(a.ciphertext, b.ciphertext)
            XCTAssertEqual(a.tag, b.tag)
            XCTAssertEqual(try AESGCM.open(key: key, nonce: nonce, ciphertext: b.ciphertext, tag: b.tag, aad: aad, using: .builtIn), plaintext)
            XCTAssertEqual(try AESGCM.open(key: key, nonce: nonce, ciphertext: a.ciphertext, tag: a.tag, aad: aad, using: .provider), plaintext)
        }
    }
}
