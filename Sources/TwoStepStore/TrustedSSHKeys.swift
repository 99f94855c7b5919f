// SPDX-License-Identifier: Apache-2.0
import TwoStepCore

/// One SSH key a user proved a code with, trusted until `expires` (`trust_ssh_key`).
public struct TrustedSSHKey: Equatable {
    /// `SHA256:...`, as `ssh-keygen -lf` prints it.
    public var fingerprint: String
    public var added: Int64
    public var expires: Int64

    public init(fingerprint: String, added: Int64, expires: Int64) {
        self.fingerprint = fingerprint; self.added = added; self.expires = expires
    }
}

/// The trusted keys of one record: sealed with it (never in the plain state file), bounded,
/// kept as one optional record extension line `trusted_ssh_keys=` (`<fingerprint>@<added>@<expires>`,
/// comma-separated), so a record without trust reads exactly as before.
public enum TrustedSSHKeys {
    /// The most keys one user keeps trusted; the oldest go first.
    public static let maxPerUser = 20
    static let field = "trusted_ssh_keys"

    /// The extension's value, or nil when there is nothing to write.
    static func value(_ keys: [TrustedSSHKey]) -> String? {
        guard !keys.isEmpty else { return nil }
        return keys.map { "\($0.fingerprint)@\($0.added)@\($0.expires)" }.joined(separator: ",")
    }

    /// The keys of an extension's value; nil when it is damaged.
    static func parse(_ value: String) -> [TrustedSSHKey]? {
        var keys: [TrustedSSHKey] = []
        for item in value.split(separator: ",") {
            let parts = item.split(separator: "@", omittingEmptySubsequences: false)
            guard parts.count == 3, SSHAuthInfo.isFingerprint(String(parts[0])),
                  let added = Int64(parts[1]), let expires = Int64(parts[2]) else { return nil }
            keys.append(TrustedSSHKey(fingerprint: String(parts[0]), added: added, expires: expires))
        }
        guard keys.count <= maxPerUser else { return nil }
        return keys
    }
}

extension UserRecord {
    /// The SSH keys trusted after a code. A damaged line trusts nothing (every login asks
    /// for a code) and is replaced at the next trust; a new record trusts none.
    public var trustedSSHKeys: [TrustedSSHKey] {
        get { extensions.first { $0.key == TrustedSSHKeys.field }.flatMap { TrustedSSHKeys.parse($0.value) } ?? [] }
        set {
            extensions.removeAll { $0.key == TrustedSSHKeys.field }
            if let v = TrustedSSHKeys.value(newValue) { extensions.append((TrustedSSHKeys.field, v)) }
        }
    }

    /// The trusted keys as logins apply them: each until its own expiry or `lasting` seconds
    /// (`trust_ssh_key` as it is now) after it was trusted, whichever comes first, so that
    /// lowering `trust_ssh_key` shortens the trusts given before. Expired ones included.
    public func trustedSSHKeys(lasting: Int) -> [TrustedSSHKey] {
        trustedSSHKeys.map { k in
            let (limit, overflow) = k.added.addingReportingOverflow(Int64(lasting))
            return TrustedSSHKey(fingerprint: k.fingerprint, added: k.added, expires: overflow ? k.expires : min(k.expires, limit))
        }
    }

    /// The first of `fingerprints` trusted at `now` (`trustedSSHKeys(lasting:)`), if any.
    public func trustedKey(among fingerprints: [String], at now: Int64, lasting: Int) -> TrustedSSHKey? {
        trustedSSHKeys(lasting: lasting).first { fingerprints.contains($0.fingerprint) && $0.expires > now }
    }

    /// Trusts `fingerprints` until now + seconds: expired entries go, a key trusted again
    /// gets a fresh expiry, and past `maxPerUser` the oldest are dropped.
    public func trust(_ fingerprints: [String], seconds: Int, at now: Int64) {
        var keys = trustedSSHKeys.filter { $0.expires > now && !fingerprints.contains($0.fingerprint) }
        for f in fingerprints { keys.append(TrustedSSHKey(fingerprint: f, added: now, expires: now + Int64(seconds))) }
        keys.sort { $0.added < $1.added }
        if keys.count > TrustedSSHKeys.maxPerUser { keys.removeFirst(keys.count - TrustedSSHKeys.maxPerUser) }
        trustedSSHKeys = keys
    }

    /// Ends the trust of one key (or, with nil, of all). Returns how many were removed.
    @discardableResult
    public func forget(_ fingerprint: String?) -> Int {
        let before = trustedSSHKeys.count
        trustedSSHKeys.removeAll { fingerprint == nil || $0.fingerprint == fingerprint }
        return before - trustedSSHKeys.count
    }
}
