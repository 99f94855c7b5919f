// SPDX-License-Identifier: Apache-2.0
import TwoStepCore
import TwoStepProtocol
import TwoStepStore

/// `twostep devices forget` and what `status` tells about trusted SSH keys.
extension SelfService {
    /// Ends the trust of one key (`SHA256:...`) or of all (`all`); the caller has
    /// confirmed password and code.
    func forget(_ user: String, fingerprint: String, service: String, emit: (ServiceData) -> Void,
                conversation: Conversation) -> Verdict {
        let which: String? = fingerprint == "all" ? nil : fingerprint
        if let which, !SSHAuthInfo.isFingerprint(which) {
            conversation.error("\(which) is not an SSH key fingerprint (SHA256:...; see `twostep devices`).")
            return .denied
        }
        let removed: Int
        do {
            removed = try Self.forgetTrust(user, fingerprint: which, store: store)
        } catch {
            conversation.error("Could not forget the key: \(error)")
            return .systemError
        }
        if let which, removed == 0 {
            conversation.error("\(which) is not a trusted key of \(user); nothing was changed.")
            return .denied
        }
        audit.record(AuditEvent(event: SelfServiceCommand.forget.auditEvent, user: user, service: service, result: "success",
                                detail: "\(which ?? "all trusted ssh keys"): \(removed) forgotten"))
        emit(ServiceData([(.user, user), (.forgotten, String(removed))]))
        conversation.info(which == nil ? "\(removed) trusted SSH key(s) of \(user) forgotten; every SSH login asks for a code again."
                                       : "\(which!) is no longer trusted; its next login asks for a code.")
        return .success
    }

    /// Removes trust from USER's record under the lock (self-service forget, `admin forget`).
    /// Returns how many keys were forgotten; writes nothing when none was.
    public static func forgetTrust(_ user: String, fingerprint: String?, store: UserStore) throws -> Int {
        try store.withLock(user) {
            guard let record = try store.loadRecord(user) else { throw StoreError.notEnrolled(user) }
            let removed = record.forget(fingerprint)
            if removed > 0 { try store.saveRecord(record, for: user) }
            return removed
        }
    }

    /// The trusted keys still valid at `now`, as the `trusted_ssh_keys` data field; nil if none.
    /// Each until what a login applies (`UserRecord.trustedSSHKeys(lasting:)`, `lasting` being
    /// `trust_ssh_key`); none while `trust_ssh_key` is off.
    static func trustedKeysField(_ record: UserRecord, now: Int64, lasting: Int?) -> String? {
        guard let lasting else { return nil }
        let keys = record.trustedSSHKeys(lasting: lasting).filter { $0.expires > now }
        guard !keys.isEmpty else { return nil }
        return keys.map { "\($0.fingerprint)@\($0.added)@\($0.expires)" }.joined(separator: ",")
    }
}
