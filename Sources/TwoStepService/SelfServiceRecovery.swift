// SPDX-License-Identifier: Apache-2.0
import Glibc
import TwoStepCore
import TwoStepCrypto
import TwoStepProtocol
import TwoStepStore

/// Self-service for issue 9: `twostep email ADDRESS` (password and code, then the mailed
/// confirmation code typed back), `twostep email --confirm`, and `twostep enroll --confirm`
/// (the first code of a mailed invitation).
extension SelfService {
    func recovery(_ request: SelfServiceRequest, user: String, callerUID: uid_t, enrolled: Bool,
                  conversation: Conversation) -> Verdict {
        let service = "twostep"
        let event = request.command.auditEvent
        guard enrolled else {
            conversation.error("\(user) is not enrolled" + (request.command == .enroll ? " and has no invitation." : "; run `twostep enroll` first."))
            return .notEnrolled
        }
        if request.command == .email && !request.confirm {
            guard isSendableMailAddress(request.address) else {
                conversation.error("Not a mail address twostep sends to: give user@domain.")
                return .denied
            }
        }
        if callerUID != 0, let refused = checkPassword(user, service: service, event: event, conversation: conversation) {
            return refused
        }
        if request.command == .enroll { return confirmInvitation(user, conversation: conversation) }
        if !request.confirm {
            // A new address: the current code first, as for any change to the enrolment.
            let verdict = verifier.authenticate(LoginRequest(user: user, service: service), conversation: conversation,
                                                selfService: true)
            guard verdict == .success else {
                if verdict == .failure { conversation.error("That code is not valid; nothing was changed.") }
                return verdict
            }
            let t = now()
            let code: String
            do {
                code = try store.withLock(user) { () throws -> String in
                    guard let record = try store.loadRecord(user) else { throw StoreError.badKey("record vanished") }
                    // Mails to a new address count against the same hourly limit as login codes.
                    guard record.recovery.reserveMail(now: t, perHour: Verifier.mailsPerHour) else { throw MailLimit() }
                    let (code, hashed) = try record.recovery.newCode(.address, expires: t + Int64(config.emailCodeTTL))
                    record.recovery.emailPending = request.address
                    record.recovery.emailPendingCode = hashed
                    try store.saveRecord(record, for: user)
                    return code
                }
            } catch is MailLimit {
                conversation.error("\(Verifier.mailsPerHour) mails were sent to \(user) within the hour; try again later.")
                audit.record(AuditEvent(event: event, user: user, service: service, result: "refused", detail: "mail limit"))
                return .denied
            } catch {
                conversation.error("Could not save the address: \(error)")
                return .systemError
            }
            let text = "Someone (hopefully you) asked \(config.issuer) to send two-step login codes for \(user) " +
                "to this address.\n\nConfirmation code: \(code)\n\nType it at `Code from the email:`, or run " +
                "`twostep email --confirm` within \(describe(seconds: Int64(config.emailCodeTTL))). " +
                "If this was not you, ignore this mail.\n"
            guard RecoveryMail.send(config: config, audit: audit, user: user, service: service, to: request.address,
                                    subject: "Confirm your address for \(config.issuer) two-step login", text: text,
                                    purpose: "address confirmation", now: t) else {
                conversation.error("The confirmation mail could not be sent; the address is not active.")
                return .systemError
            }
            audit.record(AuditEvent(event: event, user: user, service: service, result: "success",
                                    detail: "confirmation mailed to \(request.address)"))
            conversation.info("A confirmation code was mailed to \(request.address).")
        }
        // The mailed code, typed now or later (`--confirm`).
        guard let answer = conversation.ask(Verifier.emailPrompt, echo: true),
              answer.withBytes({ !OTP.strippingWhitespace($0).isEmpty }) else {
            conversation.info("The address waits for its code: run `twostep email --confirm` when the mail arrives.")
            return request.confirm ? .conversationError : .success
        }
        // What the check says (audit, messages) waits until withLock has returned, that is
        // until its writes are durable (a database store's COMMIT), as at a login.
        var said: [() -> Void] = []
        do {
            let verdict = try store.withLock(user) { () throws -> Verdict in
                guard let record = try store.loadRecord(user), let pending = record.recovery.emailPending else {
                    said.append { conversation.error("No address is waiting for confirmation; run `twostep email ADDRESS`.") }
                    return .denied
                }
                var state = try store.loadState(user)
                let before = state
                let locked = verifier.limiter.recordFailure(&state)
                try store.saveState(state, for: user)
                let ok = try answer.withBytes {
                    try record.recovery.matches(OTP.strippingWhitespace($0), record.recovery.emailPendingCode, .address, now: now())
                }
                guard ok else {
                    let message = locked ? verifier.lockoutMessage(state) ?? "Too many failures."
                        : "That code is not the one mailed (or it expired); the address is not active."
                    said.append {
                        self.audit.record(AuditEvent(event: event, user: user, service: service, result: "failure",
                                                     detail: "wrong or expired confirmation code"))
                        if locked { self.verifier.recordLockout(user: user, service: service) }
                        conversation.error(message)
                    }
                    return locked ? .lockedOut : .failure
                }
                record.recovery.email = pending
                record.recovery.emailPending = nil
                record.recovery.emailPendingCode = nil
                try store.saveRecord(record, for: user)
                state = before
                state.failures = []
                state.lockouts = 0
                try store.saveState(state, for: user)
                said.append {
                    self.audit.record(AuditEvent(event: event, user: user, service: service, result: "success",
                                                 detail: "address confirmed: \(pending)"))
                    conversation.info("\(maskedMailAddress(pending)) is confirmed: codes can be mailed there.")
                }
                return .success
            }
            for say in said { say() }
            return verdict
        } catch {
            conversation.error("Could not confirm the address: \(error)")
            return .systemError
        }
    }

    /// `twostep enroll --confirm`: the first code of the secret a mailed invitation brought.
    func confirmInvitation(_ user: String, conversation: Conversation) -> Verdict {
        let invited: Bool
        do {
            let record = try store.loadRecord(user)
            invited = record.map { $0.recovery.hasInvitation && $0.recovery.invitationUntil > now() } ?? false
        } catch {
            conversation.error("Two-step verification is unavailable for this account; ask an administrator.")
            return .systemError
        }
        guard invited else {
            conversation.error("\(user) has no pending invitation (it may have expired); ask an administrator for a new one.")
            return .denied
        }
        // The invitation's code is checked as at a login (Verifier.check knows invitations),
        // but not a backup or recovery code: only the new authenticator confirms itself.
        let verdict = verifier.authenticate(LoginRequest(user: user, service: "twostep"),
                                            prompt: "Code from the authenticator app you set up from the mail: ",
                                            acceptsBackupCode: false, conversation: conversation,
                                            selfService: true, invitationOnly: true)
        if verdict == .failure { conversation.error("That code does not match the invitation; nothing was changed.") }
        return verdict
    }
}

/// The recovery lines of `twostep status` and `admin show`: the address is masked for users.
func recoveryFields(_ r: RecoveryFields, into data: inout ServiceData, now: Int64, fullAddress: Bool) {
    func shown(_ a: String) -> String { fullAddress ? a : maskedMailAddress(a) }
    if let e = r.email { data[.email] = shown(e) }
    if let p = r.emailPending { data[.emailPending] = shown(p) }
    if r.bypassUntil > now {
        data[.bypassUntil] = AuditLog.isoTime(r.bypassUntil) + (fullAddress ? (r.bypassNote.map { " (\($0))" } ?? "") : "")
    }
    if r.hasInvitation { data[.invitationPendingUntil] = AuditLog.isoTime(r.invitationUntil) }
}

struct MailLimit: Error {}
