// SPDX-License-Identifier: Apache-2.0
import TwoStepCrypto

/// A store whose sealed records can be read and written as bytes, without opening them:
/// `twostep admin migrate` copies records between backends bit for bit, so a copy needs
/// no re-sealing and running it twice changes nothing.
public protocol SealedRecordAccess: UserStore {
    func sealedRecord(_ user: String) throws -> [UInt8]?
    func storeSealedRecord(_ sealed: [UInt8], for user: String) throws
    /// Records `enrolledUsers` cannot name, by the key id their header names ("unreadable"
    /// when it cannot be read), as identifiers an admin can find them by.
    func unnamedRecordKeys() throws -> [String: [String]]
}

extension SealedRecordAccess {
    /// A store keyed by user name (PostgreSQL) names every record.
    public func unnamedRecordKeys() throws -> [String: [String]] { [:] }
}

extension FileUserStore: SealedRecordAccess {
    public func sealedRecord(_ user: String) throws -> [UInt8]? {
        let name = try checked(user) + ".record"
        return try withDirectory { fd in try Files.readPrivate(dirfd: fd, dirPath: directory, name: name) }
    }

    public func unnamedRecordKeys() throws -> [String: [String]] {
        var byKey: [String: [String]] = [:]
        for base in try recordFiles().unnamed {
            let name = base + ".record"
            let id = try? withDirectory { fd in
                try Files.readPrivate(dirfd: fd, dirPath: directory, name: name)
                    .map { try SealedRecord.keyID(of: $0, path: directory + "/" + name) }
            }
            byKey[(id ?? nil) ?? KeyRotation.unreadable, default: []].append(directory + "/" + name)
        }
        return byKey
    }

    public func storeSealedRecord(_ sealed: [UInt8], for user: String) throws {
        let name = try checked(user) + ".record"
        _ = try SealedRecord.keyID(of: sealed, path: directory + "/" + name)
        try withDirectory { fd in
            try nameHashedUser(user, dirfd: fd)
            try Files.writeAtomically(dirfd: fd, dirPath: directory, name: name, bytes: sealed,
                                      temporary: Files.lockedTemporary(of: name))
        }
    }
}

/// What a copy between stores did, user by user.
public struct StoreCopyReport {
    public var copied: [String] = []
    public var unchanged: [String] = []
    public var failed: [(user: String, reason: String)] = []
}

public enum StoreCopy {
    /// Copies every enrolled user's sealed record and state from `source` to `destination`,
    /// each under both users' locks (source first), and opens every copied record with
    /// `keys` (and the user's name) before counting it. A user already identical in the
    /// destination is left alone.
    public static func copy(from source: SealedRecordAccess, to destination: SealedRecordAccess,
                            keys: KeyRing, progress: (String, String) -> Void = { _, _ in }) throws -> StoreCopyReport {
        var report = StoreCopyReport()
        for user in try source.enrolledUsers() {
            do {
                let changed: Bool = try source.withLock(user) {
                    guard let sealed = try source.sealedRecord(user) else { throw StoreError.notEnrolled(user) }
                    let state = try source.loadState(user)
                    try verify(sealed, user: user, keys: keys, label: "source")
                    return try destination.withLock(user) {
                        if try destination.sealedRecord(user) == sealed, try destination.loadState(user) == state {
                            return false
                        }
                        try destination.storeSealedRecord(sealed, for: user)
                        try destination.saveState(state, for: user)
                        guard let back = try destination.sealedRecord(user), back == sealed else {
                            throw StoreError.damaged(path: user, reason: "destination does not hold what was written")
                        }
                        try verify(back, user: user, keys: keys, label: "destination")
                        return true
                    }
                }
                if changed { report.copied.append(user) } else { report.unchanged.append(user) }
                progress(user, changed ? "copied" : "unchanged")
            } catch {
                report.failed.append((user, "\(error)"))
                progress(user, "failed: \(error)")
            }
        }
        return report
    }

    /// Opens and parses a sealed record: it authenticates for this user under a known key.
    static func verify(_ sealed: [UInt8], user: String, keys: KeyRing, label: String) throws {
        var plain = try SealedRecord.open(sealed, user: user, keys: keys, path: "\(label) record of \(user)")
        defer { Crypto.wipe(&plain) }
        _ = try UserRecord.parse(plain, path: "\(label) record of \(user)")
    }
}
