// SPDX-License-Identifier: Apache-2.0
import Glibc
import TwoStepCore
import TwoStepCrypto

/// Every master key of a host, sealed under a passphrase, to give a new host of a fleet
/// the same keys (`twostep admin export-key` / `import-key`). Text, so it survives a
/// terminal or an e-mail:
///
///     twostep-key-bundle 1
///     kdf scrypt 65536 8 1
///     salt <base64 16 bytes>
///     sealed <base64: nonce (12) | tag (16) | ciphertext>
///
/// The key is scrypt(passphrase, salt); the cipher AES-256-GCM, with the first two lines
/// and the salt as associated data. The plaintext is `active=<id>` and one `<id>=<base64>`
/// line per key.
public enum KeyBundle {
    static let header = "twostep-key-bundle 1"
    static let defaultN: UInt64 = 1 << 16
    static let r: UInt64 = 8
    static let p: UInt64 = 1
    public static let minimumPassphrase = 10

    public struct Keys {
        public var active: String
        public var keys: [(id: String, bytes: [UInt8])]
    }

    static func derive(_ passphrase: [UInt8], salt: [UInt8], n: UInt64) throws -> [UInt8] {
        try Crypto.scrypt(passphrase: passphrase, salt: salt, n: n, r: r, p: p, count: AESGCM.keySize)
    }

    static func aad(kdf: String, salt: [UInt8]) -> [UInt8] {
        Array((header + "\n" + kdf + "\n").utf8) + salt
    }

    /// Seals every key in `ring`'s key_dir under `passphrase`.
    public static func export(_ ring: KeyRing, passphrase: [UInt8]) throws -> String {
        guard passphrase.count >= minimumPassphrase else {
            throw StoreError.badKey("the passphrase needs at least \(minimumPassphrase) characters")
        }
        let active = try ring.activeKey().id
        var plain = Array("active=\(active)\n".utf8)
        defer { Crypto.wipe(&plain) }
        for id in try ring.keyIDs() {
            let key = try ring.key(id: id)
            plain += Array("\(id)=".utf8) + key.secret.withBytes { Array(Base64.encode($0).utf8) } + [10]
        }
        let salt = try Crypto.randomBytes(16)
        let nonce = try Crypto.randomBytes(AESGCM.nonceSize)
        let kdf = "kdf scrypt \(defaultN) \(r) \(p)"
        var key = try derive(passphrase, salt: salt, n: defaultN)
        defer { Crypto.wipe(&key) }
        let sealed = try AESGCM.seal(key: key, nonce: nonce, plaintext: plain, aad: aad(kdf: kdf, salt: salt))
        return "\(header)\n\(kdf)\nsalt \(Base64.encode(salt))\nsealed \(Base64.encode(nonce + sealed.tag + sealed.ciphertext))\n"
    }

    /// Opens a bundle; a wrong passphrase or any changed byte is refused.
    public static func open(_ text: String, passphrase: [UInt8]) throws -> Keys {
        func bad(_ why: String) -> StoreError { .badKey("key bundle: \(why)") }
        let lines = text.split(separator: "\n").map { String($0.trimmingSpaces) }
        guard lines.count == 4, lines[0] == header else { throw bad("not a twostep key bundle") }
        let kdf = lines[1].split(separator: " ")
        guard kdf.count == 5, kdf[0] == "kdf", kdf[1] == "scrypt", let n = UInt64(kdf[2]), kdf[3] == "\(r)",
              kdf[4] == "\(p)", n >= 1 << 14, n <= 1 << 20 else { throw bad("unsupported key derivation") }
        guard lines[2].hasPrefix("salt "), let salt = try? Base64.decode(String(lines[2].dropFirst(5))), salt.count == 16,
              lines[3].hasPrefix("sealed "), let blob = try? Base64.decode(String(lines[3].dropFirst(7))),
              blob.count > AESGCM.nonceSize + AESGCM.tagSize else { throw bad("damaged") }
        var key = try derive(passphrase, salt: salt, n: n)
        defer { Crypto.wipe(&key) }
        let nonce = Array(blob[0..<AESGCM.nonceSize])
        let tag = Array(blob[AESGCM.nonceSize..<(AESGCM.nonceSize + AESGCM.tagSize)])
        var plain: [UInt8]
        do {
            plain = try AESGCM.open(key: key, nonce: nonce, ciphertext: Array(blob[(AESGCM.nonceSize + AESGCM.tagSize)...]),
                                    tag: tag, aad: aad(kdf: lines[1], salt: salt))
        } catch {
            throw bad("wrong passphrase, or the bundle was changed")
        }
        defer { Crypto.wipe(&plain) }
        var result = Keys(active: "", keys: [])
        for line in plain.split(separator: 10) {
            guard let eq = line.firstIndex(of: UInt8(ascii: "=")) else { throw bad("damaged contents") }
            let name = String(decoding: line[line.startIndex..<eq], as: UTF8.self)
            let value = String(decoding: line[(eq + 1)...], as: UTF8.self)
            if name == "active" { result.active = value; continue }
            guard var bytes = try? Base64.decode(value) else { throw bad("damaged key \(name)") }
            defer { Crypto.wipe(&bytes) }
            guard try MasterKey(bytes: bytes).id == name else { throw bad("key \(name) does not match its id") }
            result.keys.append((name, bytes))
        }
        guard result.keys.contains(where: { $0.id == result.active }) else { throw bad("the active key is missing") }
        return result
    }
}

extension KeyRing {
    /// The id of `CONFIG_ENCRYPTION_KEY` when it is set and `key_dir` has no file of it:
    /// what is sealed with it then opens only where the variable is set.
    public func environmentKeyOutsideKeyDir() throws -> String? {
        guard let k = environmentKey else { return nil }
        return try keyIDs().contains(k.id) ? nil : k.id
    }

    /// The ids of the key files in key_dir: `<id>.key` where `<id>` is a key id (so a
    /// hidden `.<id>.key` an admin set aside, or any other file, is none).
    public func keyIDs() throws -> [String] {
        let dirfd = try Files.openPrivateDirectory(keyDir)
        defer { close(dirfd) }
        return try Files.names(dirfd: dirfd, dirPath: keyDir)
            .filter { $0.hasSuffix(".key") }.map { String($0.dropLast(4)) }.filter(KeyRing.isKeyID).sorted()
    }

    /// Which of the key files `ids` (from `keyIDs`) cannot be used (wrong size, not matching its id,
    /// unreadable), with what is wrong: not only the active key, since a damaged older key
    /// (or one from `--prepare`) shows otherwise only when a record sealed with it is
    /// opened, or at `--use`.
    public func damagedKeyFiles(_ ids: [String]) -> [String: String] {
        var damaged: [String: String] = [:]
        for id in ids {
            do { _ = try key(id: id) } catch { damaged[id] = "\(error)" }
        }
        return damaged
    }

    /// Writes the keys of an opened bundle (0400, those missing only) and makes its active
    /// key active here. Returns the ids that were added.
    @discardableResult
    public func install(_ bundle: KeyBundle.Keys) throws -> [String] {
        try Files.makeDirectory(keyDir, mode: 0o700)
        let have = Set(try keyIDs())
        let dirfd = try Files.openPrivateDirectory(keyDir)
        defer { close(dirfd) }
        Files.removeDeadTemporaries(dirfd: dirfd, dirPath: keyDir)
        var added: [String] = []
        for (id, bytes) in bundle.keys where !have.contains(id) {
            try Files.writeAtomically(dirfd: dirfd, dirPath: keyDir, name: "\(id).key", bytes: bytes, mode: 0o400)
            added.append(id)
        }
        try activate(bundle.active)
        return added
    }

    /// Makes key `id` (which must be in key_dir) the one new records are sealed with.
    public func activate(_ id: String) throws {
        let dirfd = try Files.openPrivateDirectory(keyDir)
        defer { close(dirfd) }
        _ = try loadKey(id: id, dirfd: dirfd)
        try Files.writeAtomically(dirfd: dirfd, dirPath: keyDir, name: "active", bytes: Array((id + "\n").utf8))
    }
}
