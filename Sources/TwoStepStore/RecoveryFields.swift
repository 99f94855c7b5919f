// SPDX-License-Identifier: Apache-2.0
import TwoStepCore
import TwoStepCrypto

/// What recovery and support keep for one user, sealed in the user's record as optional
/// `key=value` lines beside the authenticator's (a record without them reads as before):
/// the mail address, mailed and support codes as keyed hashes with their expiry (never a
/// code), an administrator's bypass, a pending invitation.
public struct RecoveryFields {
    /// The confirmed address: the only one mail with a login code goes to.
    public var email: String?
    /// An address waiting for the user to type back the code mailed to it.
    public var emailPending: String?
    public var emailPendingCode: ExpiringCode?
    /// The one-time code of the email fallback at login.
    public var loginCode: ExpiringCode?
    /// When mails were sent to this user (the last hour's, for the limit).
    public var mailTimes: [Int64] = []
    public var bypassUntil: Int64 = 0
    /// Who set the bypass and why (shown by `admin show`).
    public var bypassNote: String?
    /// The support person's one-time recovery code.
    public var recoveryCode: ExpiringCode?
    /// A mailed invitation waits for its first correct code until then (0: none).
    public var invitationUntil: Int64 = 0
    /// With an invitation: the new secret of `admin rotate-secret` (the current one keeps
    /// working until a code of this one is typed). Nil: the record's own secret is the
    /// invited one, not confirmed yet.
    public var invitedSecret: SecretBytes?
    /// Key of the hashes above; made when the first is stored.
    var codeKey: SecretBytes?

    public init() {}

    /// A code known only by its keyed hash, good until `expires`.
    public struct ExpiringCode {
        public var hash: [UInt8]
        public var expires: Int64
    }

    /// What a code is for: part of what is hashed, so a code of one kind never counts as another.
    public enum Purpose: String { case login, address, recovery }

    /// A new code for `purpose`, valid until `expires`: returns the code (for the mail or
    /// the screen) and the hash to keep.
    public mutating func newCode(_ purpose: Purpose, expires: Int64) throws -> (String, ExpiringCode) {
        let code = try BackupCodes.randomCode(length: BackupCodes.shortLength)
        guard let normalized = BackupCodes.normalize(Array(code.utf8), length: BackupCodes.shortLength) else {
            throw StoreError.badKey("generated an invalid code")
        }
        return (code, ExpiringCode(hash: try hash(purpose, normalized), expires: expires))
    }

    /// Whether `answer` is `code`, unexpired at `now`; compared in constant time.
    public mutating func matches(_ answer: [UInt8], _ code: ExpiringCode?, _ purpose: Purpose, now: Int64) throws -> Bool {
        guard let code, code.expires > now,
              var normalized = BackupCodes.normalize(answer, length: BackupCodes.shortLength) else { return false }
        defer { Crypto.wipe(&normalized) }
        var digest = try hash(purpose, normalized)
        defer { Crypto.wipe(&digest) }
        return Crypto.constantTimeEqual(digest, code.hash)
    }

    mutating func hash(_ purpose: Purpose, _ normalized: [UInt8]) throws -> [UInt8] {
        if codeKey == nil { codeKey = SecretBytes(try Crypto.randomBytes(32)) }
        return try codeKey!.withBytes { try Crypto.hmac(.sha256, key: $0, message: Array(purpose.rawValue.utf8) + [0] + normalized) }
    }

    /// Counts a mail to this user at `now` unless `perHour` went out within the hour before;
    /// false (nothing counted) when the limit is reached.
    public mutating func reserveMail(now: Int64, perHour: Int) -> Bool {
        mailTimes = mailTimes.filter { $0 > now - 3600 && $0 <= now }
        guard mailTimes.count < perHour else { return false }
        mailTimes.append(now)
        return true
    }

    public var hasInvitation: Bool { invitationUntil > 0 }

    // MARK: the record's lines

    static let secretKey = "invited_secret"
    /// The record's lines these fields own (besides `invited_secret`).
    static let keys: Set<String> = ["email", "email_pending", "email_pending_code", "login_code", "mail_times",
                                    "bypass_until", "bypass_note", "recovery_code", "invitation_until", "code_key"]

    /// The lines to append to the record's plaintext (the invited secret as bytes, never a String).
    func serialized() -> [UInt8] {
        var out: [UInt8] = []
        func line(_ key: String, _ value: String) { out += Array((key + "=" + value + "\n").utf8) }
        func code(_ key: String, _ c: ExpiringCode?) { if let c { line(key, hex(c.hash) + ":" + String(c.expires)) } }
        if let email { line("email", email) }
        if let emailPending { line("email_pending", emailPending) }
        code("email_pending_code", emailPendingCode)
        code("login_code", loginCode)
        if !mailTimes.isEmpty { line("mail_times", mailTimes.map(String.init).joined(separator: ",")) }
        if bypassUntil > 0 { line("bypass_until", String(bypassUntil)) }
        if let bypassNote { line("bypass_note", hex(Array(bypassNote.utf8))) }
        code("recovery_code", recoveryCode)
        if invitationUntil > 0 { line("invitation_until", String(invitationUntil)) }
        if let invitedSecret {
            out += Array((Self.secretKey + "=").utf8)
            invitedSecret.withBytes { plain in
                var text = Base32.encodeToBytes(plain)
                out += text
                Crypto.wipe(&text)
            }
            out.append(UInt8(ascii: "\n"))
        }
        if let codeKey { line("code_key", codeKey.withBytes { hex($0) }) }
        return out
    }

    /// Reads these fields from a record's other lines; `invited` is the decoded invited secret.
    static func parse(_ fields: [String: String], invited: [UInt8]?, bad: (String) -> StoreError) throws -> RecoveryFields {
        var r = RecoveryFields()
        func code(_ key: String) throws -> ExpiringCode? {
            guard let v = fields[key] else { return nil }
            let parts = v.split(separator: ":")
            guard parts.count == 2, let h = unhex(parts[0]), h.count == 32, let t = Int64(parts[1]) else { throw bad("bad \(key)") }
            return ExpiringCode(hash: h, expires: t)
        }
        func number(_ key: String) throws -> Int64 {
            guard let v = fields[key] else { return 0 }
            guard let n = Int64(v) else { throw bad("bad \(key)") }
            return n
        }
        for key in ["email", "email_pending"] {
            if let a = fields[key], !isSendableMailAddress(a) { throw bad("bad \(key)") }
        }
        r.email = fields["email"]
        r.emailPending = fields["email_pending"]
        r.emailPendingCode = try code("email_pending_code")
        r.loginCode = try code("login_code")
        r.recoveryCode = try code("recovery_code")
        if let m = fields["mail_times"] {
            r.mailTimes = try m.split(separator: ",").map { guard let n = Int64($0) else { throw bad("bad mail_times") }; return n }
        }
        r.bypassUntil = try number("bypass_until")
        if let n = fields["bypass_note"] {
            guard let b = unhex(Substring(n)) else { throw bad("bad bypass_note") }
            r.bypassNote = String(decoding: b, as: UTF8.self)
        }
        r.invitationUntil = try number("invitation_until")
        if let invited {
            guard invited.count >= 10 else { throw bad("bad \(secretKey)") }
            r.invitedSecret = SecretBytes(invited)
        }
        if let k = fields["code_key"] {
            guard let key = unhex(Substring(k)), key.count == 32 else { throw bad("bad code_key") }
            r.codeKey = SecretBytes(key)
        }
        return r
    }
}
