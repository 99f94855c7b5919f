// SPDX-License-Identifier: Apache-2.0
import Glibc
import TwoStepCore
import TwoStepCrypto
import TwoStepSystem

/// A master key and its id (the first 8 bytes of its SHA-256, in hex). The id goes in
/// each sealed record's header, so old records still open after a new key becomes active.
public final class MasterKey {
    public let id: String
    let secret: SecretBytes

    public init(bytes: [UInt8]) throws {
        guard bytes.count == AESGCM.keySize else { throw StoreError.badKey("must be 32 bytes, got \(bytes.count)") }
        let digest = try Crypto.sha256(bytes)
        id = hex(Array(digest.prefix(8)))
        secret = SecretBytes(bytes)
    }
}

/// The master keys in `key_dir` (`<id>.key`, 32 raw bytes, 0400; `active` names the one
/// used for new writes), with `CONFIG_ENCRYPTION_KEY` (base64 of 32 bytes) as override.
public final class KeyRing {
    public static let environmentVariable = "CONFIG_ENCRYPTION_KEY"
    let keyDir: String
    let environmentKey: MasterKey?

    public init(keyDir: String, environment: String? = KeyRing.environmentValue()) throws {
        self.keyDir = keyDir
        if let text = environment {
            var raw: [UInt8]
            do { raw = try Base64.decode(text) } catch {
                throw StoreError.badKey("\(KeyRing.environmentVariable) is not valid base64")
            }
            defer { Crypto.wipe(&raw) }
            guard raw.count == AESGCM.keySize else {
                throw StoreError.badKey("\(KeyRing.environmentVariable) must be base64 of 32 bytes, got \(raw.count) bytes")
            }
            environmentKey = try MasterKey(bytes: raw)
        } else {
            environmentKey = nil
        }
    }

    public static func environmentValue() -> String? {
        guard let p = getenv(environmentVariable) else { return nil }
        let s = String(cString: p)
        return s.isEmpty ? nil : s
    }

    /// The key new records are sealed with.
    public func activeKey() throws -> MasterKey {
        if let k = environmentKey { return k }
        let dirfd = try Files.openPrivateDirectory(keyDir)
        defer { close(dirfd) }
        return try loadKey(id: try activeID(dirfd: dirfd), dirfd: dirfd)
    }

    /// The id the `active` file names (the environment key's when it is set), without
    /// loading the key: what `rotate-key --status` shows even when that key file is damaged.
    public func activeKeyID() throws -> String {
        if let k = environmentKey { return k.id }
        let dirfd = try Files.openPrivateDirectory(keyDir)
        defer { close(dirfd) }
        return try activeID(dirfd: dirfd)
    }

    func activeID(dirfd: Int32) throws -> String {
        guard let raw = try Files.readPrivate(dirfd: dirfd, dirPath: keyDir, name: "active", limit: 128) else {
            throw StoreError.badKey("no active key in \(keyDir): on a new host run `twostep admin init`; if keys were " +
                                    "lost, restore key_dir from its backup or `admin import-key` a bundle (init would " +
                                    "make a key that opens none of the existing records)")
        }
        return String(String(decoding: raw, as: UTF8.self).trimmingSpaces.filter { $0 != "\n" })
    }

    /// Whether `id` has the form of a key id: 16 lower- or upper-case hex digits.
    public static func isKeyID(_ id: String) -> Bool {
        id.utf8.count == 16 && id.utf8.allSatisfy({ isHexDigit($0) })
    }

    public func key(id: String) throws -> MasterKey {
        if let k = environmentKey, k.id == id { return k }
        let dirfd = try Files.openPrivateDirectory(keyDir)
        defer { close(dirfd) }
        return try loadKey(id: id, dirfd: dirfd)
    }

    func loadKey(id: String, dirfd: Int32) throws -> MasterKey {
        guard KeyRing.isKeyID(id) else {
            throw StoreError.badKey("bad key id \"\(id.prefix(32))\"")
        }
        guard var raw = try Files.readPrivate(dirfd: dirfd, dirPath: keyDir, name: "\(id).key", limit: 64) else {
            throw StoreError.keyMissing(id: id)
        }
        defer { Crypto.wipe(&raw) }
        let key = try MasterKey(bytes: raw)
        guard key.id == id else { throw StoreError.damaged(path: "\(keyDir)/\(id).key", reason: "key does not match its id") }
        return key
    }

    /// Creates a fresh random key, stores it 0400 and (unless `activate: false`, to hand it
    /// to every host of a fleet first) makes it active. Returns its id.
    @discardableResult
    public func createKey(activate: Bool = true) throws -> String {
        try Files.makeDirectory(keyDir, mode: 0o700)
        var raw = try Crypto.randomBytes(AESGCM.keySize)
        defer { Crypto.wipe(&raw) }
        let key = try MasterKey(bytes: raw)
        let dirfd = try Files.openPrivateDirectory(keyDir)
        defer { close(dirfd) }
        // A key writer that died mid-write left its key in a temporary file: gone now.
        Files.removeDeadTemporaries(dirfd: dirfd, dirPath: keyDir)
        try Files.writeAtomically(dirfd: dirfd, dirPath: keyDir, name: "\(key.id).key", bytes: raw, mode: 0o400)
        if activate { try self.activate(key.id) }
        return key.id
    }

    public func hasActiveKey() -> Bool { (try? activeKey()) != nil }

    /// Runs `body`, which takes a key of this ring and writes what it seals with it, while
    /// key_dir is locked shared (flock on the directory itself): `retiring` locks it
    /// exclusively while it looks for the records naming each key and deletes the keys none
    /// names, so a record sealed under a key is in place before that key can be judged
    /// unneeded. (An import sealing 256 users under the active key had them renamed into
    /// place after a concurrent `rotate-key --retire` had counted the records and deleted
    /// that key: those users were lost.) Nothing to lock for the environment's key, which
    /// is never retired here.
    public func sealing<T>(_ body: () throws -> T) throws -> T {
        try locked(LOCK_SH, body)
    }

    /// Runs `body` while no writer is between taking a key and writing what it sealed.
    public func retiring<T>(_ body: () throws -> T) throws -> T {
        try locked(LOCK_EX, body)
    }

    private func locked<T>(_ operation: Int32, _ body: () throws -> T) throws -> T {
        guard environmentKey == nil else { return try body() }
        let dirfd = try Files.openPrivateDirectory(keyDir)
        defer { close(dirfd) }   // releases the lock
        guard Sys.retry({ flock(dirfd, operation) }) == 0 else {
            throw StoreError.io(path: keyDir, operation: operation == LOCK_EX ? "lock (exclusive)" : "lock (shared)", errno: errno)
        }
        return try body()
    }
}

