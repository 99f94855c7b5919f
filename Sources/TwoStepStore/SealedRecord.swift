// SPDX-License-Identifier: Apache-2.0
import TwoStepCrypto
import TwoStepCore

/// The on-disk envelope of a user's record (docs/ARCHITECTURE.md, "Sealed record"):
///
///     "TSR" | version (2) | key id length (1) | key id (ASCII hex) | generation (8, big-endian)
///           | nonce (12) | tag (16) | ciphertext
///
/// AES-256-GCM with a fresh random nonce per write. The associated data binds the
/// ciphertext to the format version, the user name, the key id and the generation, so a
/// record copied to another user's file, relabelled with another key id, or restored
/// from an older copy (its generation is below the one in the user's state) is refused.
/// Version 1 (no generation field; generation 0) still opens and is rewritten as 2.
public enum SealedRecord {
    public static let magic: [UInt8] = Array("TSR".utf8)
    public static let version: UInt8 = 2
    static let versionWithoutGeneration: UInt8 = 1

    static func associatedData(user: String, keyID: String, version: UInt8, generation: UInt64) -> [UInt8] {
        var aad = Array("twostep-record".utf8)
        aad.append(0); aad.append(version); aad.append(0)
        aad.append(contentsOf: user.utf8); aad.append(0)
        aad.append(contentsOf: keyID.utf8)
        if version >= 2 {
            aad.append(0)
            aad.append(contentsOf: bigEndian(generation))
        }
        return aad
    }

    static func bigEndian(_ v: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: v >> (56 - 8 * UInt64($0))) }
    }

    public static func seal(_ plaintext: [UInt8], user: String, key: MasterKey, generation: UInt64 = 0) throws -> [UInt8] {
        let nonce = try Crypto.randomBytes(AESGCM.nonceSize)
        let sealed = try key.secret.withBytes { k in
            try AESGCM.seal(key: k, nonce: nonce, plaintext: plaintext,
                            aad: associatedData(user: user, keyID: key.id, version: version, generation: generation))
        }
        var out = magic
        out.append(version)
        out.append(UInt8(key.id.utf8.count))
        out.append(contentsOf: key.id.utf8)
        out.append(contentsOf: bigEndian(generation))
        out.append(contentsOf: nonce)
        out.append(contentsOf: sealed.tag)
        out.append(contentsOf: sealed.ciphertext)
        return out
    }

    /// The key id named in the header, without opening anything.
    public static func keyID(of bytes: [UInt8], path: String) throws -> String {
        guard bytes.count >= 5, Array(bytes[0..<3]) == magic else {
            throw StoreError.damaged(path: path, reason: "not a twostep record")
        }
        guard bytes[3] == version || bytes[3] == versionWithoutGeneration else {
            throw StoreError.damaged(path: path, reason: "unsupported record version \(bytes[3])")
        }
        let idLen = Int(bytes[4])
        let generationSize = bytes[3] >= 2 ? 8 : 0
        guard idLen > 0, idLen <= 64,
              bytes.count >= 5 + idLen + generationSize + AESGCM.nonceSize + AESGCM.tagSize else {
            throw StoreError.damaged(path: path, reason: "truncated header")
        }
        let id = String(decoding: bytes[5..<(5 + idLen)], as: UTF8.self)
        guard id.utf8.allSatisfy(isHexDigit) else { throw StoreError.damaged(path: path, reason: "bad key id") }
        return id
    }

    /// The generation `bytes` were sealed with, when they open for `user` under `keys`
    /// (authenticated, unlike the header alone); nil for a record that does not open.
    public static func openedGeneration(of bytes: [UInt8], user: String, keys: KeyRing) -> UInt64? {
        guard var opened = try? openWithGeneration(bytes, user: user, keys: keys, path: user) else { return nil }
        Crypto.wipe(&opened.plaintext)
        return opened.generation
    }

    /// The generation after `generation`; a record at the last one (a crafted or damaged
    /// state or header: no store writes 2^64 records) cannot be written again.
    public static func next(after generation: UInt64, path: String) throws -> UInt64 {
        guard generation < UInt64.max else {
            throw StoreError.damaged(path: path, reason: "record generation at its maximum")
        }
        return generation + 1
    }

    /// The plaintext.
    public static func open(_ bytes: [UInt8], user: String, keys: KeyRing, path: String) throws -> [UInt8] {
        try openWithGeneration(bytes, user: user, keys: keys, path: path).plaintext
    }

    /// The plaintext and the generation it was sealed with (0 for version 1).
    public static func openWithGeneration(_ bytes: [UInt8], user: String, keys: KeyRing, path: String) throws
        -> (plaintext: [UInt8], generation: UInt64) {
        try openWithGeneration(bytes, user: user, path: path, key: keys.key(id:))
    }

    /// The same with the key for an id from `key` (a cache, for work on many records).
    public static func openWithGeneration(_ bytes: [UInt8], user: String, path: String,
                                          key lookup: (String) throws -> MasterKey) throws
        -> (plaintext: [UInt8], generation: UInt64) {
        let id = try keyID(of: bytes, path: path)
        let key = try lookup(id)
        let v = bytes[3]
        var p = 5 + id.utf8.count
        var generation: UInt64 = 0
        if v >= 2 {
            for b in bytes[p..<(p + 8)] { generation = generation << 8 | UInt64(b) }
            p += 8
        }
        let nonce = Array(bytes[p..<(p + AESGCM.nonceSize)]); p += AESGCM.nonceSize
        let tag = Array(bytes[p..<(p + AESGCM.tagSize)]); p += AESGCM.tagSize
        let ciphertext = Array(bytes[p...])
        do {
            let plain = try key.secret.withBytes { k in
                try AESGCM.open(key: k, nonce: nonce, ciphertext: ciphertext, tag: tag,
                                aad: associatedData(user: user, keyID: id, version: v, generation: generation))
            }
            return (plain, generation)
        } catch {
            throw StoreError.damaged(path: path, reason: "does not authenticate (tampered, another user's, or wrong key)")
        }
    }
}
