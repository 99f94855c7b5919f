// SPDX-License-Identifier: Apache-2.0
// The one place twostep talks to OpenSSL's libcrypto. Every EVP context is owned by a
// small class that frees it in deinit; every failure becomes a CryptoError carrying the
// first code from OpenSSL's error queue.
import COpenSSL
import Glibc

/// Hash functions used for HMAC (OTP) and plain digests.
public enum HashAlgorithm: String, CaseIterable, Sendable {
    case sha1 = "SHA1"
    case sha256 = "SHA256"
    case sha512 = "SHA512"

    /// Case-insensitive; a hyphen or underscore between letters and digits is accepted
    /// ("sha1", "SHA-256", "sha_512").
    public init?(name: String) {
        var folded = ""
        for scalar in name.unicodeScalars {
            switch scalar {
            case "-", "_": continue
            case "a"..."z": folded.unicodeScalars.append(Unicode.Scalar(scalar.value - 32)!)
            default: folded.unicodeScalars.append(scalar)
            }
        }
        guard let value = HashAlgorithm(rawValue: folded) else { return nil }
        self = value
    }

    /// Digest length in bytes.
    public var digestSize: Int {
        switch self {
        case .sha1: return 20
        case .sha256: return 32
        case .sha512: return 64
        }
    }

    /// OpenSSL's name for the digest (what EVP_MD_fetch and the MAC "digest" parameter take).
    var opensslName: String {
        switch self {
        case .sha1: return "SHA1"
        case .sha256: return "SHA2-256"
        case .sha512: return "SHA2-512"
        }
    }
}

/// A failed libcrypto call. `opensslError` is the first code from OpenSSL's error queue
/// (0 when OpenSSL recorded none); the queue is cleared when the error is made.
public struct CryptoError: Error, CustomStringConvertible {
    public let operation: String
    public let opensslError: UInt

    public init(operation: String, opensslError: UInt) {
        self.operation = operation
        self.opensslError = opensslError
    }

    /// Takes the earliest error from this thread's OpenSSL queue and clears the rest.
    static func fromQueue(_ operation: String) -> CryptoError {
        let code = ERR_get_error()
        ERR_clear_error()
        return CryptoError(operation: operation, opensslError: UInt(code))
    }

    public var description: String {
        guard opensslError != 0 else { return "\(operation) failed (no OpenSSL error recorded)" }
        var buffer = [CChar](repeating: 0, count: 256)
        buffer.withUnsafeMutableBufferPointer { ERR_error_string_n(CUnsignedLong(opensslError), $0.baseAddress, $0.count) }
        let text = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return "\(operation) failed: \(text)"
    }
}

/// Calls `body` with a pointer that is never nil, even for an empty array (OpenSSL treats a
/// NULL key as "keep the previous key", which is not what an empty key means).
@inline(__always)
func withNonNullPointer<R>(_ bytes: [UInt8], _ body: (UnsafePointer<UInt8>, Int) throws -> R) rethrows -> R {
    if bytes.isEmpty {
        var dummy: UInt8 = 0
        return try withUnsafePointer(to: &dummy) { try body($0, 0) }
    }
    return try bytes.withUnsafeBufferPointer { try body($0.baseAddress!, $0.count) }
}

/// OSSL_PARAM keeps the *pointer* to its key name, so the names must outlive every call
/// that reads the parameter array. Swift's temporary String-to-pointer bridging does not
/// guarantee that, so each name is copied once into storage that lives as long as the process.
enum ParamName {
    private static func permanent(_ name: String) -> UnsafeMutablePointer<CChar> {
        let utf8 = Array(name.utf8CString)
        let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: utf8.count)
        pointer.initialize(from: utf8, count: utf8.count)
        return pointer
    }
    static let digest = permanent(OSSL_MAC_PARAM_DIGEST)
}

// MARK: - Owned OpenSSL objects

final class MessageDigest {
    let pointer: OpaquePointer
    init(_ algorithm: HashAlgorithm) throws {
        guard let md = EVP_MD_fetch(nil, algorithm.opensslName, nil) else {
            throw CryptoError.fromQueue("EVP_MD_fetch(\(algorithm.opensslName))")
        }
        pointer = md
    }
    deinit { EVP_MD_free(pointer) }
}

final class DigestContext {
    let pointer: OpaquePointer
    init() throws {
        guard let ctx = EVP_MD_CTX_new() else { throw CryptoError.fromQueue("EVP_MD_CTX_new") }
        pointer = ctx
    }
    deinit { EVP_MD_CTX_free(pointer) }
}

final class MACContext {
    let pointer: OpaquePointer
    init(algorithm name: String) throws {
        guard let mac = EVP_MAC_fetch(nil, name, nil) else { throw CryptoError.fromQueue("EVP_MAC_fetch(\(name))") }
        defer { EVP_MAC_free(mac) }  // the context holds its own reference
        guard let ctx = EVP_MAC_CTX_new(mac) else { throw CryptoError.fromQueue("EVP_MAC_CTX_new") }
        pointer = ctx
    }
    deinit { EVP_MAC_CTX_free(pointer) }
}

final class CipherContext {
    let pointer: OpaquePointer
    init() throws {
        guard let ctx = EVP_CIPHER_CTX_new() else { throw CryptoError.fromQueue("EVP_CIPHER_CTX_new") }
        pointer = ctx
    }
    deinit { EVP_CIPHER_CTX_free(pointer) }  // also cleanses the key schedule
}

// MARK: - Operations

public enum Crypto {
    /// Runs each primitive once so OpenSSL loads its providers and algorithm tables now.
    /// A long-lived server calls it before forking connections; results are discarded.
    public static func warmUp() {
        let key = [UInt8](repeating: 1, count: 32)
        for alg in HashAlgorithm.allCases { _ = try? hmac(alg, key: key, message: key) }
        _ = try? sha256(key)
        _ = try? randomBytes(16)
        _ = try? AESGCM.seal(key: key, nonce: [UInt8](repeating: 0, count: AESGCM.nonceSize), plaintext: key, aad: key)
    }

    /// Which of libcrypto's implementations the digests, HMAC and AES-GCM use.
    enum Implementation: Sendable {
        /// Fetched by name from a provider (the default one, or what openssl.cnf configures:
        /// FIPS, properties). OpenSSL 3.0's first fetch of a kind builds its name tables and
        /// constructs every algorithm of that kind: about 1.5 ms for a cipher, MAC and digest.
        case provider
        /// libcrypto's built-in EVP tables (see COpenSSL's shim.h): no fetch, no provider.
        case builtIn
    }

    /// `.builtIn` only after `startForOneLogin` (called before any other OpenSSL use, in a
    /// single-threaded process, and never changed afterwards).
    nonisolated(unsafe) static var implementation = Implementation.provider

    /// For a process that does one login and exits (twostep-verify), called before any other
    /// OpenSSL call. libcrypto starts without reading openssl.cnf (so a provider or property
    /// set there does not apply to this process), without filling its legacy name tables
    /// with every cipher and digest, without error strings, and without its exit-time
    /// cleanup; digests, HMAC and AES-GCM then use libcrypto's built-in tables instead of
    /// fetching from the default provider, once they give the known answers below. Returns
    /// false, changing nothing, when the kernel runs in FIPS mode (a FIPS provider is then
    /// configured in openssl.cnf and must be used), and false with the provider path kept
    /// when a known answer is wrong. twostep-helper and the CLI keep OpenSSL's defaults.
    @discardableResult
    public static func startForOneLogin() -> Bool {
        guard !kernelInFIPSMode() else { return false }
        _ = twostep_openssl_init_one_login()
        guard builtInGivesKnownAnswers() else { return false }
        implementation = .builtIn
        return true
    }

    /// /proc/sys/crypto/fips_enabled is "1" (FIPS distributions set it, with a FIPS provider
    /// in openssl.cnf).
    static func kernelInFIPSMode() -> Bool {
        let fd = open("/proc/sys/crypto/fips_enabled", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var c: UInt8 = 0
        return read(fd, &c, 1) == 1 && c == UInt8(ascii: "1")
    }

    /// RFC 2202/4231 (HMAC-SHA-1, -256, -512 case 1), FIPS 180 ("abc"), GCM spec case 14.
    /// Plain calls, no closures or tuples: generic metadata costs a one-login process more
    /// than the checks themselves.
    static func builtInGivesKnownAnswers() -> Bool {
        let key = [UInt8](repeating: 0x0b, count: 20), hiThere: [UInt8] = Array("Hi There".utf8)
        let zero = [UInt8](repeating: 0, count: 32)
        let gcm = try? AESGCM.seal(key: zero, nonce: Array(zero[..<12]), plaintext: Array(zero[..<16]), aad: [], using: .builtIn)
        return matches(try? hmac(.sha1, key: key, message: hiThere, using: .builtIn),
                       "b617318655057264e28bc0b6fb378c8ef146be00")
            && matches(try? hmac(.sha256, key: key, message: hiThere, using: .builtIn),
                       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
            && matches(try? hmac(.sha512, key: key, message: hiThere, using: .builtIn),
                       "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854")
            && matches(try? digest(.sha256, Array("abc".utf8), using: .builtIn),
                       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
            && matches(gcm.map { $0.ciphertext + $0.tag }, "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919")
    }

    private static func matches(_ bytes: [UInt8]?, _ hex: StaticString) -> Bool {
        guard let bytes, bytes.count * 2 == hex.utf8CodeUnitCount else { return false }
        let digits = hex.utf8Start
        func nibble(_ c: UInt8) -> UInt8 { c <= 0x39 ? c - 0x30 : c - 0x61 + 10 }
        for (i, b) in bytes.enumerated() where nibble(digits[2 * i]) << 4 | nibble(digits[2 * i + 1]) != b {
            return false
        }
        return true
    }

    /// The built-in digest for `algorithm` (made once; nil if libcrypto refused).
    static let builtInSHA1 = twostep_md_builtin(1)
    static let builtInSHA256 = twostep_md_builtin(256)
    static let builtInSHA512 = twostep_md_builtin(512)

    static func builtInDigest(_ algorithm: HashAlgorithm) -> OpaquePointer? {
        switch algorithm {
        case .sha1: return builtInSHA1
        case .sha256: return builtInSHA256
        case .sha512: return builtInSHA512
        }
    }

    /// HMAC (RFC 2104) through EVP_MAC.
    public static func hmac(_ algorithm: HashAlgorithm, key: [UInt8], message: [UInt8]) throws -> [UInt8] {
        try hmac(algorithm, key: key, message: message, using: implementation)
    }

    static func hmac(_ algorithm: HashAlgorithm, key: [UInt8], message: [UInt8],
                     using implementation: Implementation) throws -> [UInt8] {
        if implementation == .builtIn, let md = builtInDigest(algorithm) {
            guard key.count <= Int(Int32.max) else { throw CryptoError(operation: "HMAC (key too large)", opensslError: 0) }
            var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
            var length: CUnsignedInt = 0
            let ok = withNonNullPointer(key) { keyPointer, keyCount in
                withNonNullPointer(message) { messagePointer, messageCount in
                    out.withUnsafeMutableBufferPointer {
                        twostep_hmac_builtin(md, keyPointer, Int32(keyCount), messagePointer, messageCount, $0.baseAddress, &length)
                    }
                }
            }
            guard ok == 1 else { throw CryptoError.fromQueue("HMAC(\(algorithm.rawValue))") }
            out.removeSubrange(Int(length)...)
            return out
        }
        let ctx = try MACContext(algorithm: "HMAC")
        try algorithm.opensslName.withCString { digestName in
            var params = [
                OSSL_PARAM_construct_utf8_string(ParamName.digest, UnsafeMutablePointer(mutating: digestName), 0),
                OSSL_PARAM_construct_end(),
            ]
            let ok = withNonNullPointer(key) { keyPointer, keyCount in
                EVP_MAC_init(ctx.pointer, keyPointer, keyCount, &params)
            }
            guard ok == 1 else { throw CryptoError.fromQueue("EVP_MAC_init(HMAC-\(algorithm.rawValue))") }
        }
        if !message.isEmpty {
            let ok = message.withUnsafeBufferPointer { EVP_MAC_update(ctx.pointer, $0.baseAddress, $0.count) }
            guard ok == 1 else { throw CryptoError.fromQueue("EVP_MAC_update") }
        }
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length = 0
        let ok = out.withUnsafeMutableBufferPointer { EVP_MAC_final(ctx.pointer, $0.baseAddress, &length, $0.count) }
        guard ok == 1 else { throw CryptoError.fromQueue("EVP_MAC_final") }
        out.removeSubrange(length...)
        return out
    }

    /// Plain digest of `data`.
    public static func digest(_ algorithm: HashAlgorithm, _ data: [UInt8]) throws -> [UInt8] {
        try digest(algorithm, data, using: implementation)
    }

    static func digest(_ algorithm: HashAlgorithm, _ data: [UInt8], using implementation: Implementation) throws -> [UInt8] {
        let builtIn = implementation == .builtIn ? builtInDigest(algorithm) : nil
        let fetched = builtIn == nil ? try MessageDigest(algorithm) : nil
        let ctx = try DigestContext()
        let initialised = withExtendedLifetime(fetched) { EVP_DigestInit_ex(ctx.pointer, builtIn ?? fetched!.pointer, nil) }
        guard initialised == 1 else { throw CryptoError.fromQueue("EVP_DigestInit_ex") }
        if !data.isEmpty {
            let ok = data.withUnsafeBufferPointer { EVP_DigestUpdate(ctx.pointer, $0.baseAddress, $0.count) }
            guard ok == 1 else { throw CryptoError.fromQueue("EVP_DigestUpdate") }
        }
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: CUnsignedInt = 0
        let ok = out.withUnsafeMutableBufferPointer { EVP_DigestFinal_ex(ctx.pointer, $0.baseAddress, &length) }
        guard ok == 1 else { throw CryptoError.fromQueue("EVP_DigestFinal_ex") }
        out.removeSubrange(Int(length)...)
        return out
    }

    public static func sha256(_ data: [UInt8]) throws -> [UInt8] {
        try digest(.sha256, data)
    }

    /// Bytes from OpenSSL's CSPRNG (RAND_bytes).
    public static func randomBytes(_ count: Int) throws -> [UInt8] {
        guard count >= 0 else { throw CryptoError(operation: "RAND_bytes(\(count))", opensslError: 0) }
        guard count > 0 else { return [] }
        guard count <= Int(Int32.max) else { throw CryptoError(operation: "RAND_bytes(\(count))", opensslError: 0) }
        var out = [UInt8](repeating: 0, count: count)
        let ok = out.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32($0.count)) }
        guard ok == 1 else { throw CryptoError.fromQueue("RAND_bytes") }
        return out
    }

    /// Compares contents in time independent of where they differ (CRYPTO_memcmp).
    /// Arrays of different lengths are unequal; the length itself is not treated as secret.
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        guard !a.isEmpty else { return true }
        return a.withUnsafeBytes { pa in
            b.withUnsafeBytes { pb in CRYPTO_memcmp(pa.baseAddress, pb.baseAddress, pa.count) == 0 }
        }
    }

    /// Overwrites the array's storage with zeros (OPENSSL_cleanse, which the optimiser cannot
    /// drop). The count is kept. Copies of the array made earlier share storage only until one
    /// of them is written to; wipe the last owner.
    public static func wipe(_ bytes: inout [UInt8]) {
        guard !bytes.isEmpty else { return }
        bytes.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) }
    }

}

/// Secret bytes that are wiped (OPENSSL_cleanse) when the last reference goes away.
/// The bytes live in memory this class allocates itself, so no array copy-on-write can
/// leave an unwiped duplicate behind; `bytes` and `withBytes` hand out copies.
public final class SecretBytes {
    private let storage: UnsafeMutableBufferPointer<UInt8>

    public init(_ bytes: [UInt8]) {
        storage = .allocate(capacity: bytes.count)
        _ = storage.initialize(from: bytes)
    }

    deinit {
        if storage.count > 0 { OPENSSL_cleanse(storage.baseAddress, storage.count) }
        storage.deallocate()
    }

    /// A copy of the secret; the caller owns it (and should `Crypto.wipe` it).
    public var bytes: [UInt8] { Array(storage) }

    public var count: Int { storage.count }

    /// Whether `other` holds the same bytes, compared in constant time (CRYPTO_memcmp).
    public func sameBytes(as other: SecretBytes) -> Bool {
        withBytes { a in other.withBytes { b in Crypto.constantTimeEqual(a, b) } }
    }

    /// Calls `body` with a temporary copy that is wiped afterwards (unless `body` kept a reference to it).
    public func withBytes<R>(_ body: ([UInt8]) throws -> R) rethrows -> R {
        var copy = Array(storage)
        defer { Crypto.wipe(&copy) }
        return try body(copy)
    }
}

extension SecretBytes: @unchecked Sendable {}  // immutable after init
