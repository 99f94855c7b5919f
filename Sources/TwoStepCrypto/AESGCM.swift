// SPDX-License-Identifier: Apache-2.0
// AES-256-GCM through EVP. Used to seal records at rest.
import COpenSSL

public enum AESGCMError: Error, Equatable, CustomStringConvertible {
    case authenticationFailed, badKeySize, badNonceSize, badTagSize

    public var description: String {
        switch self {
        case .authenticationFailed: return "AES-GCM: authentication failed (wrong key, or data, tag or associated data altered)"
        case .badKeySize: return "AES-GCM: key must be \(AESGCM.keySize) bytes"
        case .badNonceSize: return "AES-GCM: nonce must be \(AESGCM.nonceSize) bytes"
        case .badTagSize: return "AES-GCM: tag must be \(AESGCM.tagSize) bytes"
        }
    }
}

public enum AESGCM {
    public static let keySize = 32
    public static let nonceSize = 12
    public static let tagSize = 16

    private static func check(key: [UInt8], nonce: [UInt8]) throws {
        guard key.count == keySize else { throw AESGCMError.badKeySize }
        guard nonce.count == nonceSize else { throw AESGCMError.badNonceSize }
    }

    /// Feeds `data` through EncryptUpdate/DecryptUpdate; `out` nil means associated data.
    private static func update(_ ctx: CipherContext, encrypt: Bool, _ data: [UInt8], into out: inout [UInt8]?) throws {
        guard !data.isEmpty else { return }
        var written: Int32 = 0
        guard data.count <= Int(Int32.max) else { throw CryptoError(operation: "AES-GCM (input too large)", opensslError: 0) }
        let ok: Int32 = data.withUnsafeBufferPointer { input in
            if out == nil {
                return encrypt
                    ? EVP_EncryptUpdate(ctx.pointer, nil, &written, input.baseAddress, Int32(input.count))
                    : EVP_DecryptUpdate(ctx.pointer, nil, &written, input.baseAddress, Int32(input.count))
            }
            return out!.withUnsafeMutableBufferPointer { output in
                encrypt
                    ? EVP_EncryptUpdate(ctx.pointer, output.baseAddress, &written, input.baseAddress, Int32(input.count))
                    : EVP_DecryptUpdate(ctx.pointer, output.baseAddress, &written, input.baseAddress, Int32(input.count))
            }
        }
        guard ok == 1 else { throw CryptoError.fromQueue(encrypt ? "EVP_EncryptUpdate" : "EVP_DecryptUpdate") }
    }

    /// The built-in cipher (made once, on first use, safely from any thread: `admin list`
    /// decrypts on two; nil if libcrypto refused, then the provider's is used).
    nonisolated(unsafe) private static let builtInCipher: OpaquePointer? = twostep_aes_256_gcm_builtin()

    static func cipher(_ implementation: Crypto.Implementation) -> OpaquePointer? {
        guard implementation == .builtIn else { return EVP_aes_256_gcm() }
        return builtInCipher ?? EVP_aes_256_gcm()
    }

    private static func context(encrypt: Bool, key: [UInt8], nonce: [UInt8], _ implementation: Crypto.Implementation) throws -> CipherContext {
        let ctx = try CipherContext()
        let name = encrypt ? "EVP_EncryptInit_ex" : "EVP_DecryptInit_ex"
        let aes = cipher(implementation)
        let first = encrypt
            ? EVP_EncryptInit_ex(ctx.pointer, aes, nil, nil, nil)
            : EVP_DecryptInit_ex(ctx.pointer, aes, nil, nil, nil)
        guard first == 1 else { throw CryptoError.fromQueue(name) }
        guard EVP_CIPHER_CTX_ctrl(ctx.pointer, EVP_CTRL_GCM_SET_IVLEN, Int32(nonceSize), nil) == 1 else {
            throw CryptoError.fromQueue("EVP_CTRL_GCM_SET_IVLEN")
        }
        let second: Int32 = key.withUnsafeBufferPointer { k in
            nonce.withUnsafeBufferPointer { n in
                encrypt
                    ? EVP_EncryptInit_ex(ctx.pointer, nil, nil, k.baseAddress, n.baseAddress)
                    : EVP_DecryptInit_ex(ctx.pointer, nil, nil, k.baseAddress, n.baseAddress)
            }
        }
        guard second == 1 else { throw CryptoError.fromQueue(name) }
        return ctx
    }

    /// Encrypts and authenticates `plaintext`, and authenticates `aad`. Never reuse a nonce with the same key.
    public static func seal(key: [UInt8], nonce: [UInt8], plaintext: [UInt8], aad: [UInt8]) throws -> (ciphertext: [UInt8], tag: [UInt8]) {
        try seal(key: key, nonce: nonce, plaintext: plaintext, aad: aad, using: Crypto.implementation)
    }

    static func seal(key: [UInt8], nonce: [UInt8], plaintext: [UInt8], aad: [UInt8],
                     using implementation: Crypto.Implementation) throws -> (ciphertext: [UInt8], tag: [UInt8]) {
        try check(key: key, nonce: nonce)
        let ctx = try context(encrypt: true, key: key, nonce: nonce, implementation)
        var none: [UInt8]? = nil
        try update(ctx, encrypt: true, aad, into: &none)
        var out: [UInt8]? = [UInt8](repeating: 0, count: plaintext.count)
        try update(ctx, encrypt: true, plaintext, into: &out)
        var scratch = [UInt8](repeating: 0, count: 16)
        var written: Int32 = 0
        let ok = scratch.withUnsafeMutableBufferPointer { EVP_EncryptFinal_ex(ctx.pointer, $0.baseAddress, &written) }
        guard ok == 1 else { throw CryptoError.fromQueue("EVP_EncryptFinal_ex") }
        var tag = [UInt8](repeating: 0, count: tagSize)
        let tagOK = tag.withUnsafeMutableBytes {
            EVP_CIPHER_CTX_ctrl(ctx.pointer, EVP_CTRL_GCM_GET_TAG, Int32(tagSize), $0.baseAddress)
        }
        guard tagOK == 1 else { throw CryptoError.fromQueue("EVP_CTRL_GCM_GET_TAG") }
        return (out!, tag)
    }

    /// Verifies and decrypts. Any mismatch (key, nonce, ciphertext, tag, aad) throws
    /// `AESGCMError.authenticationFailed`; no plaintext is returned unless the tag verifies.
    public static func open(key: [UInt8], nonce: [UInt8], ciphertext: [UInt8], tag: [UInt8], aad: [UInt8]) throws -> [UInt8] {
        try open(key: key, nonce: nonce, ciphertext: ciphertext, tag: tag, aad: aad, using: Crypto.implementation)
    }

    static func open(key: [UInt8], nonce: [UInt8], ciphertext: [UInt8], tag: [UInt8], aad: [UInt8],
                     using implementation: Crypto.Implementation) throws -> [UInt8] {
        try check(key: key, nonce: nonce)
        guard tag.count == tagSize else { throw AESGCMError.badTagSize }
        let ctx = try context(encrypt: false, key: key, nonce: nonce, implementation)
        var none: [UInt8]? = nil
        try update(ctx, encrypt: false, aad, into: &none)
        var out: [UInt8]? = [UInt8](repeating: 0, count: ciphertext.count)
        try update(ctx, encrypt: false, ciphertext, into: &out)
        var tagCopy = tag
        let tagOK = tagCopy.withUnsafeMutableBytes {
            EVP_CIPHER_CTX_ctrl(ctx.pointer, EVP_CTRL_GCM_SET_TAG, Int32(tagSize), $0.baseAddress)
        }
        guard tagOK == 1 else { throw CryptoError.fromQueue("EVP_CTRL_GCM_SET_TAG") }
        var scratch = [UInt8](repeating: 0, count: 16)
        var written: Int32 = 0
        let ok = scratch.withUnsafeMutableBufferPointer { EVP_DecryptFinal_ex(ctx.pointer, $0.baseAddress, &written) }
        guard ok == 1 else {
            ERR_clear_error()
            var discard = out!
            out = nil
            Crypto.wipe(&discard)
            throw AESGCMError.authenticationFailed
        }
        return out!
    }
}
