// SPDX-License-Identifier: Apache-2.0
import Glibc
import TwoStepCore
import TwoStepCrypto
import TwoStepProtocol
import TwoStepStore

/// The enrolment wizard, written once and spoken over any Conversation: the terminal
/// (root's `twostep enroll`), the self-service socket, or a PAM login (enrol at first login).
public final class EnrollmentWizard {
    let config: Config
    let store: UserStore
    let audit: AuditLog
    let now: () -> Int64

    public static let confirmTries = 3

    public init(config: Config, store: UserStore, audit: AuditLog, now: @escaping () -> Int64) {
        self.config = config; self.store = store; self.audit = audit; self.now = now
    }

    var parameters: OTPParameters { config.otpParameters }

    func uri(_ user: String, _ secret: [UInt8], _ params: OTPParameters) -> String {
        OTPAuthURI(issuer: config.issuer, account: user, secret: secret, parameters: params).uriString
    }

    /// The QR code, the URI and the key for manual entry, as the user should see them.
    public static func setupText(uri: String, secret: [UInt8], parameters p: OTPParameters) -> String {
        var text = "Scan this QR code with your authenticator app (Google Authenticator, Aegis, FreeOTP, 1Password, ...):\n\n"
        text += ((try? QRCode.terminal(uri)) ?? "(the QR code could not be drawn)\n")
        text += "\nCan't scan? Add an account by hand with this key (time based, \(p.algorithm.rawValue), \(p.digits) digits, \(p.period) s):\n"
        text += "    " + grouped(Base32.encode(secret)) + "\n"
        text += "or open this URI on the device:\n    \(uri)\n"
        return text
    }

    /// Interactive: shows the setup, asks for a code (three tries), and only then saves and
    /// shows the backup codes. With `emit` (JSON callers) nothing is asked: the enrolment is
    /// saved at once and its fields are handed to `emit`.
    /// `add` names a further authenticator for an enrolled user (`enroll --add NAME`): the
    /// record keeps its others and its backup codes. `codeChecked` says that the caller
    /// checked a code of the record as it was when the request began: only then is an
    /// authenticator added to a record that exists at save time (a user who became
    /// enrolled while this request waited at a prompt gets `already enrolled`).
    public func run(user: String, service: String, conversation: Conversation, replace: Bool,
                    add: String? = nil, codeChecked: Bool = false, emit: ((ServiceData) -> Void)? = nil) -> Verdict {
        do {
            var secret = try SecretGenerator.newSecret()
            defer { Crypto.wipe(&secret) }
            let params = parameters
            let link = uri(user, secret, params)
            if let emit {
                let codes = try save(user: user, service: service, secret: secret, params: params, lastStep: -1,
                                     replace: replace, add: add, codeChecked: codeChecked)
                let png = try QRCode.png(link)
                var data = ServiceData([(.user, user), (.otpauthURI, link),
                                        (.qrPNGDataURI, "data:image/png;base64," + Base64.encode(png))])
                if let codes { data[.backupCodes] = codes.joined(separator: ",") }
                emit(data)
                return .success
            }
            let title = add.map { "New authenticator \($0) for \(user) on \(config.issuer)" } ?? "Two-step login for \(user) on \(config.issuer)"
            conversation.info(title + "\n\nStep 1 of 3: " +
                              Self.setupText(uri: link, secret: secret, parameters: params))
            conversation.info("Step 2 of 3: confirm that the app works.")
            var step: Int64?
            for attempt in 1...Self.confirmTries {
                guard let answer = conversation.ask("Enter the \(params.digits)-digit code the app shows now: ", echo: true) else {
                    return .conversationError
                }
                step = try answer.withBytes { typed in
                    var code = OTP.strippingWhitespace(typed)
                    defer { Crypto.wipe(&code) }
                    return try OTP.matchTOTP(code: code, secret: secret, at: now(), parameters: params, window: config.window)
                }
                if step != nil { break }
                if attempt < Self.confirmTries {
                    conversation.error("That code does not match; check the app's clock and try again.")
                }
            }
            guard let step else {
                audit.record(AuditEvent(event: "enroll", user: user, service: service, result: "failure",
                                        detail: "confirmation code did not match"))
                conversation.error("\(Self.confirmTries) codes did not match; nothing was saved.")
                return .failure
            }
            let codes = try save(user: user, service: service, secret: secret, params: params, lastStep: step,
                                 replace: replace, add: add, codeChecked: codeChecked)
            if let codes {
                conversation.info(Self.backupText(codes) + "\nDone: \(user) is enrolled. The next login will ask for a verification code.")
            } else {
                conversation.info("Step 3 of 3: done. \(add ?? "") is added: a code from any of \(user)'s authenticators " +
                                  "now passes (see `twostep devices`). Your backup codes are unchanged.")
            }
            return .success
        } catch WizardError.alreadyEnrolled {
            conversation.error("\(user) is already enrolled; nothing was saved.")
            return .denied
        } catch let e as RecordChangeError {
            conversation.error("\(e); nothing was saved.")
            return .denied
        } catch {
            AuditLog.syslogLine(LOG_ERR, "enroll \(user): \(error)")
            conversation.error("Enrolment failed: \(error)")
            return .systemError
        }
    }

    public static func backupText(_ codes: [String]) -> String { backupCodesText(codes) }

    /// Saves the record and the confirmed step (so the confirming code cannot be replayed).
    /// Returns the new backup codes, or nil when an authenticator was added to a record that
    /// keeps its own.
    func save(user: String, service: String, secret: [UInt8], params: OTPParameters, lastStep: Int64, replace: Bool,
              add: String? = nil, codeChecked: Bool = false) throws -> [String]? {
        let name = add ?? Authenticator.defaultName
        let codes: [String]? = try store.withLock(user) {
            let existing = try store.loadRecord(user)
            if let existing, let add, !replace {
                // Adding to a record takes a code of it, checked when the request began; a
                // record that appeared since (enrolled meanwhile) was never asked for one.
                guard codeChecked else { throw WizardError.alreadyEnrolled }
                try existing.add(Authenticator(name: add, secret: secret, parameters: params, added: now()))
                try store.saveRecord(existing, for: user)
                var state = try store.loadState(user)
                state.devices[add] = AuthenticatorState(lastStep: lastStep)
                try store.saveState(state, for: user)
                return nil
            }
            if existing != nil && !replace { throw WizardError.alreadyEnrolled }
            let record = UserRecord(authenticators: [Authenticator(name: name, secret: secret, parameters: params, added: now())],
                                    created: now(), backupKey: [], backupHashes: [])
            let codes = try record.issueBackupCodes()
            // A new phone keeps the confirmed mail address (the way back in if it is lost too),
            // and the mails of the last hour with it: 3 an hour stays 3 an hour however often
            // the user enrols again (a reviewer mailed a 4th address confirmation after one).
            record.recovery.email = existing?.recovery.email
            record.recovery.mailTimes = existing?.recovery.mailTimes ?? []
            try store.saveRecord(record, for: user)
            var state = UserState()
            if lastStep >= 0 { state.devices[name] = AuthenticatorState(lastStep: lastStep) }
            try store.saveState(state, for: user)
            return codes
        }
        audit.record(AuditEvent(event: "enroll", user: user, service: service, result: "success",
                                detail: codes == nil ? "added totp \(name)" : (replace ? "replaced" : nil)))
        return codes
    }
}

enum WizardError: Error { case alreadyEnrolled }

/// "ABCD EFGH IJKL …": easier to copy by hand.
public func grouped(_ s: String) -> String {
    var out = ""
    for (i, c) in s.enumerated() {
        if i > 0 && i % 4 == 0 { out += " " }
        out.append(c)
    }
    return out
}
