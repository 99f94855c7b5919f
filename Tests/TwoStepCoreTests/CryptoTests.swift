// SPDX-License-Identifier: Apache-2.0
import XCTest
@testable import TwoStepCrypto

final class CryptoTests: XCTestCase {
    // RFC 4231 test cases 1 and 2; RFC 2202 test case 1 for SHA-1.
    func testHMACKnownAnswersRFC4231() throws {
        let key1 = [UInt8](repeating: 0x0b, count: 20)
        XCTAssertEqual(hexString(try Crypto.hmac(.sha256, key: key1, message: ascii("Hi There"))),
                       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        XCTAssertEqual(hexString(try Crypto.hmac(.sha512, key: key1, message: ascii("Hi There"))),
                       "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854")
        XCTAssertEqual(hexString(try Crypto.hmac(.sha1, key: key1, message: ascii("Hi There"))),
                       "b617318655057264e28bc0b6fb378c8ef146be00")
        let key2 = ascii("Jefe"), message2 = ascii("what do ya want for nothing?")
        XCTAssertEqual(hexString(try Crypto.hmac(.sha256, key: key2, message: message2)),
                       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        XCTAssertEqual(hexString(try Crypto.hmac(.sha512, key: key2, message: message2)),
                       "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737")
    }

    func testHMACWithEmptyKeyAndMessageMatchesKnownValue() throws {
        // HMAC-SHA256("", "") is a well-known constant.
        XCTAssertEqual(hexString(try Crypto.hmac(.sha256, key: [], message: [])),
                       "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad")
    }

    func testSHA256KnownAnswers() throws {
        XCTAssertEqual(hexString(try Crypto.sha256(ascii("abc"))),
                       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(hexString(try Crypto.sha256([])),
                       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    func testRandomBytesHaveRequestedLengthAndDiffer() throws {
        let a = try Crypto.randomBytes(32), b = try Crypto.randomBytes(32)
        XCTAssertEqual(a.count, 32)
        XCTAssertNotEqual(a, b)
        XCTAssertEqual(try Crypto.randomBytes(0), [])
    }

    func testConstantTimeEqual() {
        XCTAssertTrue(Crypto.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        XCTAssertFalse(Crypto.constantTimeEqual([1, 2, 3], [1, 2, 4]))
        XCTAssertFalse(Crypto.constantTimeEqual([1, 2, 3], [1, 2]))
        XCTAssertFalse(Crypto.constantTimeEqual([], [0]))
        XCTAssertTrue(Crypto.constantTimeEqual([], []))
    }

    func testWipeZeroesAndKeepsCount() {
        var secret: [UInt8] = [1, 2, 3, 4]
        Crypto.wipe(&secret)
        XCTAssertEqual(secret, [0, 0, 0, 0])
        var empty: [UInt8] = []
        Crypto.wipe(&empty)
        XCTAssertEqual(empty, [])
    }

    func testSecretBytesHandsOutCopies() {
        let secret = SecretBytes([9, 8, 7])
        XCTAssertEqual(secret.count, 3)
        XCTAssertEqual(secret.bytes, [9, 8, 7])
        XCTAssertEqual(secret.withBytes { $0.reduce(0, +) }, 24)
        XCTAssertEqual(SecretBytes([]).count, 0)
    }

    func testHashAlgorithmNamesAreCaseInsensitive() {
        XCTAssertEqual(HashAlgorithm(name: "sha1"), .sha1)
        XCTAssertEqual(HashAlgorithm(name: "SHA-256"), .sha256)
        XCTAssertEqual(HashAlgorithm(name: "Sha512"), .sha512)
        XCTAssertNil(HashAlgorithm(name: "md5"))
        XCTAssertNil(HashAlgorithm(name: ""))
        XCTAssertEqual(HashAlgorithm.allCases.map(\.rawValue), ["SHA1", "SHA256", "SHA512"])
    }

    func testCryptoErrorDescriptionIncludesOpenSSLText() {
        // 0x1C8000D1-style codes are library/reason packed; any nonzero code gets "error:" text.
        let error = CryptoError(operation: "EVP_Test", opensslError: 0x0300_0086)
        XCTAssertTrue(error.description.contains("EVP_Test"))
        XCTAssertTrue(error.description.contains("error:"), error.description)
        XCTAssertTrue(CryptoError(operation: "X", opensslError: 0).description.contains("X"))
    }
}

final class AESGCMTests: XCTestCase {
    let key = [UInt8]((0..<32).map { UInt8($0) })
    let nonce = [UInt8]((100..<112).map { UInt8($0) })
    let plaintext = ascii("the secret seed of alice")
    let aad = ascii("user=alice;v=1")

    // McGrew & Viega GCM spec, test cases 13 and 14 (AES-256, zero key and IV).
    func testKnownAnswersFromGCMSpec() throws {
        let empty = try AESGCM.seal(key: [UInt8](repeating: 0, count: 32), nonce: [UInt8](repeating: 0, count: 12), plaintext: [], aad: [])
        XCTAssertEqual(empty.ciphertext, [])
        XCTAssertEqual(hexString(empty.tag), "530f8afbc74536b9a963b4f1c4cb738b")
        let block = try AESGCM.seal(key: [UInt8](repeating: 0, count: 32), nonce: [UInt8](repeating: 0, count: 12), plaintext: [UInt8](repeating: 0, count: 16), aad: [])
        XCTAssertEqual(hexString(block.ciphertext), "cea7403d4d606b6e074ec5d3baf39d18")
        XCTAssertEqual(hexString(block.tag), "d0d1c8a799996bf0265b98b5d48ab919")
    }

    func testRoundTrip() throws {
        let sealed = try AESGCM.seal(key: key, nonce: nonce, plaintext: plaintext, aad: aad)
        XCTAssertEqual(sealed.ciphertext.count, plaintext.count)
        XCTAssertEqual(sealed.tag.count, AESGCM.tagSize)
        XCTAssertNotEqual(sealed.ciphertext, plaintext)
        XCTAssertEqual(try AESGCM.open(key: key, nonce: nonce, ciphertext: sealed.ciphertext, tag: sealed.tag, aad: aad), plaintext)
        let empty = try AESGCM.seal(key: key, nonce: nonce, plaintext: [], aad: [])
        XCTAssertEqual(try AESGCM.open(key: key, nonce: nonce, ciphertext: [], tag: empty.tag, aad: []), [])
    }

    // Both of libcrypto's paths: the provider's (twostep-helper, the CLI) and the built-in
    // tables twostep-verify uses (Crypto.startForOneLogin).
    func testEveryFlippedByteIsRefused() throws {
        for implementation in [Crypto.Implementation.provider, .builtIn] {
            try assertEveryFlippedByteIsRefused(using: implementation)
        }
    }

    func assertEveryFlippedByteIsRefused(using implementation: Crypto.Implementation) throws {
        let sealed = try AESGCM.seal(key: key, nonce: nonce, plaintext: plaintext, aad: aad, using: implementation)
        func refused(_ k: [UInt8], _ n: [UInt8], _ c: [UInt8], _ t: [UInt8], _ a: [UInt8], _ what: String) {
            XCTAssertThrowsError(try AESGCM.open(key: k, nonce: n, ciphertext: c, tag: t, aad: a, using: implementation),
                                 "\(implementation) \(what)") { error in
                XCTAssertEqual(error as? AESGCMError, .authenticationFailed, "\(implementation) \(what)")
            }
        }
        for i in sealed.ciphertext.indices {
            var c = sealed.ciphertext; c[i] ^= 0x01
            refused(key, nonce, c, sealed.tag, aad, "ciphertext byte \(i)")
        }
        for i in sealed.tag.indices {
            var t = sealed.tag; t[i] ^= 0x80
            refused(key, nonce, sealed.ciphertext, t, aad, "tag byte \(i)")
        }
        for i in aad.indices {
            var a = aad; a[i] ^= 0x10
            refused(key, nonce, sealed.ciphertext, sealed.tag, a, "aad byte \(i)")
        }
        for i in nonce.indices {
            var n = nonce; n[i] ^= 0x04
            refused(key, n, sealed.ciphertext, sealed.tag, aad, "nonce byte \(i)")
        }
        refused(key, nonce, sealed.ciphertext, sealed.tag, [], "missing aad")
        refused(key, nonce, Array(sealed.ciphertext.dropLast()), sealed.tag, aad, "truncated ciphertext")
    }

    func testWrongKeyIsRefused() throws {
        let sealed = try AESGCM.seal(key: key, nonce: nonce, plaintext: plaintext, aad: aad)
        var other = key; other[31] ^= 1
        XCTAssertThrowsError(try AESGCM.open(key: other, nonce: nonce, ciphertext: sealed.ciphertext, tag: sealed.tag, aad: aad),
                             equals: AESGCMError.authenticationFailed)
    }

    func testBadSizesAreRejected() {
        XCTAssertThrowsError(try AESGCM.seal(key: [UInt8](repeating: 0, count: 16), nonce: nonce, plaintext: [], aad: []), equals: AESGCMError.badKeySize)
        XCTAssertThrowsError(try AESGCM.seal(key: key, nonce: [UInt8](repeating: 0, count: 16), plaintext: [], aad: []), equals: AESGCMError.badNonceSize)
        XCTAssertThrowsError(try AESGCM.open(key: key, nonce: nonce, ciphertext: [], tag: [1, 2, 3], aad: []), equals: AESGCMError.badTagSize)
    }
}

final class CryptoArgumentTests: XCTestCase {
    func testBadLengthsThrowInsteadOfTrapping() {
        XCTAssertThrowsError(try Crypto.randomBytes(-1))
    }
}
