// SPDX-License-Identifier: Apache-2.0
import Glibc
import TwoStepCore
import TwoStepCrypto
import TwoStepProtocol
import TwoStepStore
import TwoStepSystem

/// Recovery at login (issue 9): an administrator's bypass, a pending invitation, the email
/// fallback (`email` at the prompt), the support person's recovery code (in `check`).
extension Verifier {
    /// " from HOST" for the mailed code's text when the remote host is an address or a
    /// host name; nothing otherwise. Whoever logs in may shape PAM_RHOST (a PTR name, an
    /// application that sets it), and the mail must not carry their sentences.
    static func mailedOrigin(_ rhost: String) -> String {
        let bytes = Array(rhost.utf8)
        guard !bytes.isEmpty else { return "" }
        guard bytes.count <= 253, bytes.allSatisfy({ b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) ||
                b == UInt8(ascii: ".") || b == UInt8(ascii: "-") || b == UInt8(ascii: ":") || b == UInt8(ascii: "%")
        }) else { return " from an unnamed host" }
        return " from " + rhost
    }

    public static let emailPrompt = "Code from the email: "
    /// Mails a user may be sent within an hour.
    public static let mailsPerHour = 3

    /// Decided before the prompt, from the record: nil to go on and ask for a code.
    func beforePrompt(_ req: LoginRequest, record: UserRecord, conversation: Conversation, bypass: Bool,
                      log: (String, String?) -> Void) -> Verdict? {
        let t = now()
        let inv = record.recovery
        if bypass && inv.bypassUntil > t {
            log("success", "admin bypass")
            conversation.info("Two-step verification is bypassed for \(req.user) by an administrator until \(AuditLog.isoTime(inv.bypassUntil)).")
            return .success
        }
        // A mailed invitation not yet confirmed: the user has no working authenticator yet.
        guard inv.hasInvitation && inv.invitedSecret == nil else { return nil }
        if inv.invitationUntil <= t {
            log("failure", "invitation expired")
            conversation.error("Your invitation to two-step login has expired; ask an administrator for a new one.")
            return unenrolled(req)
        }
        // With `enroll = prompt` the invitation is confirmed at login. Otherwise too where a
        // user with no enrolment would be refused (inside `require`, or no nullok): a host
        // whose every login asks for the code leaves no other place to confirm it
        // (`enroll --confirm` needs a session). Where such a user passes (nullok outside
        // `require`), so does an invited one, until confirming with `enroll --confirm`.
        if config.enroll != .prompt, case .ignore = unenrolled(req) { return .ignore }   // as if not enrolled
        conversation.info("Finish setting up two-step login: type the code your authenticator app shows " +
                          "for the account from the invitation mail.")
        return nil
    }

    /// A confirmed invitation (its own secret's first correct code): the record becomes a
    /// plain enrolment with fresh backup codes, returned as the text to show (nil if there
    /// was no invitation), with its audit event. The caller holds the lock, and records the
    /// event once the write is durable (after withLock).
    func finishInvitation(_ record: UserRecord, user: String, service: String = "twostep",
                          rhost: String = "") throws -> (text: String, event: AuditEvent)? {
        guard record.recovery.hasInvitation && record.recovery.invitedSecret == nil else { return nil }
        record.recovery.invitationUntil = 0
        let codes = try record.issueBackupCodes()
        try store.saveRecord(record, for: user)
        return (backupCodesText(codes) + "\nDone: \(user) is enrolled.",
                AuditEvent(event: "enroll", user: user, service: service, result: "success", detail: "invitation confirmed",
                           rhost: rhost.isEmpty ? nil : rhost))
    }

    /// `admin rotate-secret`'s new secret confirmed: it replaces the primary authenticator's
    /// (same name, the config's parameters it was mailed with), whose codes stop working; the
    /// other authenticators, backup codes and address stay. Returns the authenticator's name.
    /// The caller holds the lock.
    /// Returns the authenticator's name and the audit event, which the caller records once
    /// the write is durable (after withLock).
    func adoptInvitedSecret(_ record: UserRecord, user: String, service: String = "twostep",
                            rhost: String = "") throws -> (name: String, event: AuditEvent?) {
        let name = record.primary.name
        guard let invited = record.recovery.invitedSecret else { return (name, nil) }
        try invited.withBytes {
            try record.add(Authenticator(name: name, secret: $0, parameters: config.otpParameters, added: now()), replace: true)
        }
        record.recovery.invitedSecret = nil
        record.recovery.invitationUntil = 0
        // The old secret may have leaked (why it was rotated): keys trusted after its codes
        // are trusted no more. The key of this login may be trusted again below.
        record.forget(nil)
        try store.saveRecord(record, for: user)
        return (name, AuditEvent(event: "enroll", user: user, service: service, result: "success",
                                 detail: "new secret confirmed for totp \(name)", rhost: rhost.isEmpty ? nil : rhost))
    }

    /// Whether a checked answer is the first code of the record's invitation.
    func confirmsInvitation(_ check: CodeCheck, _ record: UserRecord) -> Bool {
        switch check {
        case .invitedSecret: return true
        case .totp: return record.recovery.hasInvitation && record.recovery.invitedSecret == nil
        default: return false
        }
    }

    /// `email` (any case, spaces around) typed at the prompt.
    func isEmailRequest(_ answer: SecretBytes) -> Bool {
        answer.withBytes { String(decoding: OTP.strippingWhitespace($0), as: UTF8.self).lowercased() == "email" }
    }

    /// The email fallback: a one-time code mailed to the confirmed address, then asked for.
    func emailFallback(_ req: LoginRequest, conversation: Conversation, log: @escaping (String, String?, String) -> Void) -> Verdict {
        let unavailable = "Two-step verification is unavailable for this account; ask an administrator."
        // Reserve the code under the lock; mail it outside (the mail command may take mail_timeout).
        let mail: (to: String, code: String)
        do {
            let reserved: Result<(String, String), Refusal> = try store.withLock(req.user) {
                guard let record = try store.loadRecord(req.user) else { return .failure(.message(nil, "not enrolled")) }
                let state = try store.loadState(req.user)
                if let message = lockoutMessage(state) { return .failure(.locked(message)) }
                guard !(record.recovery.hasInvitation && record.recovery.invitedSecret == nil) else {
                    // The mail is a way back in for an authenticator that was lost, not around setting one up.
                    return .failure(.message("Finish setting up two-step login first (the invitation mail); no mail was sent.",
                                             "email fallback: invitation not confirmed"))
                }
                guard let to = record.recovery.email else {
                    return .failure(.message("No confirmed email address is set for \(req.user); no mail was sent.",
                                             "email fallback: no confirmed address"))
                }
                let t = now()
                guard record.recovery.reserveMail(now: t, perHour: Self.mailsPerHour) else {
                    return .failure(.message("\(Self.mailsPerHour) mails were sent within the hour; no more now. " +
                                             "Use a backup code or ask an administrator.", "email fallback: mail limit"))
                }
                let (code, hashed) = try record.recovery.newCode(.login, expires: t + Int64(config.emailCodeTTL))
                record.recovery.loginCode = hashed
                try store.saveRecord(record, for: req.user)
                return .success((to, code))
            }
            switch reserved {
            case .success(let m): mail = m
            case .failure(.locked(let message)):
                log("refused", "locked out", "lockout")
                conversation.error(message)
                return .lockedOut
            case .failure(.message(let text, let detail)):
                log("refused", detail, "email_fallback")
                conversation.error(text ?? "No mail was sent.")
                return .failure
            }
        } catch {
            log("error", "\(error)", "verify")
            conversation.error(unavailable)
            return .systemError
        }
        let text = "A login to \(config.issuer) as \(req.user)" + Self.mailedOrigin(req.rhost) +
            " asked for a code by email.\n\nYour one-time code: \(mail.code)\n\n" +
            "It works once, within \(describe(seconds: Int64(config.emailCodeTTL))). If this was not you, " +
            "someone got past the first step of your login (your password, or an SSH key of yours): " +
            "change it and tell your administrator.\n"
        guard RecoveryMail.send(config: config, audit: audit, user: req.user, service: req.service, to: mail.to,
                                subject: "Your \(config.issuer) login code", text: text, purpose: "login code", now: now()) else {
            conversation.error("The email could not be sent; no code was mailed. Use a backup code or ask an administrator.")
            return .systemError
        }
        conversation.info("A code was mailed to \(maskedMailAddress(mail.to)).")
        guard let answer = conversation.ask(Self.emailPrompt, echo: false) else {
            // A mail went out and its code was never typed: counted like a wrong code, so that
            // a first factor alone (a stolen SSH key) cannot have mails sent at no cost.
            _ = countFailure(user: req.user, service: req.service, event: "verify", detail: "mailed code not entered",
                             rhost: req.rhost, conversation: conversation)
            return .conversationError
        }
        // As in authenticate: what the check says waits until its write is durable.
        var said: [() -> Void] = []
        do {
            let verdict = try store.withLock(req.user) { () throws -> Verdict in
                guard let record = try store.loadRecord(req.user) else { return .notEnrolled }
                var state = try store.loadState(req.user)
                if let message = lockoutMessage(state) {
                    log("refused", "locked out", "lockout")
                    conversation.error(message)
                    return .lockedOut
                }
                // Counted before it is checked, as a code is (Verifier.authenticate).
                let before = state
                let locked = limiter.recordFailure(&state)
                try store.saveState(state, for: req.user)
                let ok = try answer.withBytes {
                    try record.recovery.matches(OTP.strippingWhitespace($0), record.recovery.loginCode, .login, now: now())
                }
                if ok {
                    record.recovery.loginCode = nil
                    try store.saveRecord(record, for: req.user)
                    state = before
                    state.failures = []
                    state.lockouts = 0
                    try store.saveState(state, for: req.user)
                    said.append { log("success", "email code", "verify") }
                    return .success
                }
                let detail = record.recovery.loginCode == nil ? "email code already used" : "wrong or expired email code"
                said.append { log("failure", detail, "verify") }
                if locked {
                    let message = lockoutMessage(state) ?? "Too many wrong codes."
                    said.append {
                        log("refused", self.lockoutDetail, "lockout")
                        conversation.error(message)
                    }
                    return .lockedOut
                }
                return .failure
            }
            for say in said { say() }
            return verdict
        } catch {
            log("error", "\(error)", "verify")
            conversation.error(unavailable)
            return .systemError
        }
    }
}

enum Refusal: Error {
    case locked(String)
    /// What the user is told (nil: a generic line) and what the audit log says.
    case message(String?, String)
}

/// Mail from the helper and the CLI: rendered, piped to `mail_command`, audited as
/// `mail_sent` or `mail_failed` with the address and what it was for, never its content.
public enum RecoveryMail {
    @discardableResult
    public static func send(config: Config, audit: AuditLog, user: String, service: String, to: String,
                            subject: String, text: String, attachments: [MailMessage.Attachment] = [],
                            purpose: String, now: Int64) -> Bool {
        let host = Sys.hostName() ?? "localhost"
        do {
            let message = MailMessage(from: config.mailFrom, to: to, subject: subject, text: text, attachments: attachments)
            var bytes = try message.rendered(date: now, hostName: host)
            defer { Crypto.wipe(&bytes) }
            try Mailer(config: config).send(bytes)
        } catch {
            audit.record(AuditEvent(event: "mail_failed", user: user, service: service, result: "failure",
                                    detail: "\(purpose) to \(to): \(error)"))
            return false
        }
        audit.record(AuditEvent(event: "mail_sent", user: user, service: service, result: "success", detail: "\(purpose) to \(to)"))
        return true
    }
}
