// SPDX-License-Identifier: Apache-2.0
import TwoStepCore
import TwoStepProtocol
import TwoStepStore

/// Trusted SSH keys (`trust_ssh_key`): the Verifier's side. The module relays sshd's
/// SSH_AUTH_INFO_0 (public keys only) for every service; which services may use it is
/// decided here, from the config the module cannot read.
extension Verifier {
    /// The fingerprints of the keys this login proved, when trust applies to it at all:
    /// `trust_ssh_key` set and the service listed in `trust_services`; else none.
    func trustCandidates(_ request: LoginRequest) -> [String] {
        guard config.trustSSHKey != nil, config.trustServices.contains(request.service),
              !request.authInfo.isEmpty else { return [] }
        return SSHAuthInfo.publicKeyFingerprints(request.authInfo)
    }

    /// The trusted key that lets this login pass without a code, if any.
    func trustedKey(_ keys: [String], record: UserRecord) -> TrustedSSHKey? {
        guard let seconds = config.trustSSHKey, !keys.isEmpty else { return nil }
        return record.trustedKey(among: keys, at: now(), lasting: seconds)
    }

    /// After a correct code: trusts the login's keys in `record` and returns what to tell
    /// the user, or nil when nothing is trusted. The caller saves the record.
    func trustNewKeys(_ keys: [String], record: UserRecord) -> String? {
        guard let seconds = config.trustSSHKey, !keys.isEmpty else { return nil }
        record.trust(keys, seconds: seconds, at: now())
        let which = keys.count == 1 ? "This SSH key (\(keys[0]))" : "These SSH keys (\(keys.joined(separator: ", ")))"
        return "\(which) \(keys.count == 1 ? "is" : "are") trusted for \(describeTrust(seconds: seconds))."
    }

    /// trustNewKeys, saving the record when it changed (a TOTP login writes no record otherwise).
    func trustAfterCode(_ keys: [String], record: UserRecord, user: String) throws -> String? {
        guard let message = trustNewKeys(keys, record: record) else { return nil }
        try store.saveRecord(record, for: user)
        return message
    }
}

/// `30 days`, `12 hours`, `1 hour`, `90 minutes`, `5 seconds`: a trust period in words.
public func describeTrust(seconds: Int) -> String {
    func unit(_ n: Int, _ word: String) -> String { "\(n) \(word)\(n == 1 ? "" : "s")" }
    if seconds % 86400 == 0 { return unit(seconds / 86400, "day") }
    if seconds % 3600 == 0 { return unit(seconds / 3600, "hour") }
    if seconds % 60 == 0 { return unit(seconds / 60, "minute") }
    return unit(seconds, "second")
}
