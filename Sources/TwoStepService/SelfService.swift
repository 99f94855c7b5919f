// SPDX-License-Identifier: Apache-2.0
import Glibc
import TwoStepCore
import TwoStepCrypto
import TwoStepProtocol
import TwoStepStore
import TwoStepSystem

/// What a password check through `password_service` came to.
public enum PasswordOutcome: Equatable {
    /// The PAM stack accepted the password (pam_authenticate and pam_acct_mgmt).
    case confirmed
    /// It refused it (a wrong password, an account it refuses): counts as a failure.
    case wrong
    /// The caller left the conversation before the stack decided (the prompt got no
    /// answer): nobody was refused a password, so nothing is counted.
    case cancelled
}

/// The commands users run on their own enrolment (`twostep enroll|status|backup-codes|qr|disable`),
/// decided here whether they arrive over the helper's socket or from root's terminal.
/// A caller acts on their own enrolment only; root may name anyone and is not asked for a
/// password. Every change needs the password first (PAM service `password_service`), and
/// all but a first enrolment need a current code too.
public final class SelfService {
    /// Seconds a caller waits for the end of a request that no limiter counts but that is
    /// logged: a refusal of a request on someone else's enrolment, a password prompt
    /// abandoned (pam_unix's failure delay), and in HelperServer a non-root caller's login
    /// request or a request that never came whole. The caller's connection slot is held
    /// meanwhile: with `HelperServer.connectionsPerUser` open at once, at most 1.5 such
    /// lines a second per user, where the connection rate would otherwise set it.
    public static let refusalPauseSeconds: UInt32 = 2

    let config: Config
    let store: UserStore
    let audit: AuditLog
    let now: () -> Int64
    let verifier: Verifier
    let wizard: EnrollmentWizard
    /// Confirms a non-root caller's password: the server passes PasswordCheck (PAM service
    /// `password_service`); root's own terminal is never asked, and tests script it.
    let confirmPassword: (String, Conversation) -> PasswordOutcome

    public init(config: Config, store: UserStore, audit: AuditLog, now: @escaping () -> Int64,
                confirmPassword: @escaping (String, Conversation) -> PasswordOutcome = { _, _ in .wrong }) {
        self.config = config; self.store = store; self.audit = audit; self.now = now
        self.confirmPassword = confirmPassword
        verifier = Verifier(config: config, store: store, audit: audit, now: now)
        wizard = EnrollmentWizard(config: config, store: store, audit: audit, now: now)
    }

    /// The password step of a change: nil when confirmed, else the verdict to give. A
    /// wrong password counts against the limiter like a wrong code; a prompt the caller
    /// abandoned (Ctrl-C, a closed connection) is denied without counting (nobody was
    /// refused a password) and audited as `cancelled`; the verdict follows the refusal
    /// pause: it needs no password, so without the pause any account could write
    /// `cancelled` lines as fast as it could open connections (thousands a second).
    func checkPassword(_ user: String, service: String, event: String, conversation: Conversation) -> Verdict? {
        switch confirmPassword(user, conversation) {
        case .confirmed:
            return nil
        case .wrong:
            return verifier.countFailure(user: user, service: service, event: event, detail: "wrong password",
                                         conversation: conversation)
        case .cancelled:
            audit.record(AuditEvent(event: event, user: user, service: service, result: "cancelled",
                                    detail: "password prompt abandoned"))
            Sys.sleepUninterrupted(seconds: Self.refusalPauseSeconds)
            return .conversationError
        }
    }

    /// Runs one command for the caller `callerUID`. `emit` receives structured answers
    /// (for --json) before the verdict.
    public func handle(_ request: SelfServiceRequest, callerUID: uid_t, conversation: Conversation,
                       emit: @escaping (ServiceData) -> Void) -> Verdict {
        let command = request.command
        guard let caller = userName(uid: callerUID) else {
            conversation.error("Your uid \(callerUID) has no user name.")
            return .denied
        }
        let user = request.user.isEmpty ? caller : request.user
        guard isValidUserName(user) else {
            conversation.error("Invalid user name.")
            return .denied
        }
        let service = "twostep"
        // Bytes, as NSS compares names: Swift's == would take `josé` and `jose` + U+0301
        // (two accounts to NSS) for one user.
        if callerUID != 0 && !user.utf8.elementsEqual(caller.utf8) {
            audit.record(AuditEvent(event: command.auditEvent, user: user, service: service, result: "refused",
                                    detail: "uid \(callerUID) (\(caller)) may act only on its own enrolment"))
            conversation.error("You can only manage your own two-step login.")
            // Nothing else bounds this refusal (no password or code was asked, so no limiter
            // counts it): the pause, with the caller's connection cap, keeps one user from
            // writing audit lines as fast as connections can be opened.
            Sys.sleepUninterrupted(seconds: Self.refusalPauseSeconds)
            return .denied
        }
        let json = request.json
        let enrolled: Bool
        do { enrolled = try store.loadRecord(user) != nil } catch {
            AuditLog.syslogLine(LOG_ERR, "self-service \(user): \(error)")
            conversation.error("Two-step verification is unavailable for this account; ask an administrator.")
            return .systemError
        }

        if command == .status { return status(user, enrolled: enrolled, emit: emit, conversation: conversation) }
        if command == .devices { return devices(user, enrolled: enrolled, emit: emit, conversation: conversation) }

        if let message = verifier.lockoutMessage(user: user) {
            conversation.error(message)
            return .lockedOut
        }
        // Mail addresses and mailed invitations (SelfServiceRecovery.swift).
        if command == .email || request.confirm {
            return recovery(request, user: user, callerUID: callerUID, enrolled: enrolled, conversation: conversation)
        }
        let name = request.name
        switch command {
        case .enroll where enrolled && !request.replace && name.isEmpty:
            conversation.error("\(user) is already enrolled. To add another phone or token, run `twostep enroll --add NAME`; " +
                               "to move to a new phone, `twostep enroll --replace` " +
                               "(you will need a code from the old one), or ask an administrator.")
            return .denied
        case .enroll where !name.isEmpty:
            guard Authenticator.isValidName(name) else {
                conversation.error("An authenticator's name is \(Authenticator.nameRule).")
                return .denied
            }
            if let refusal = refuseChange(user, enrolled: enrolled, { try $0.add(Authenticator(name: name, secret: [0], parameters: .standard, added: 0)) }) {
                conversation.error(refusal + "; nothing was changed.")
                return .denied
            }
        case .backupCodes, .qr, .disable, .devicesRemove, .forget:
            guard enrolled else {
                conversation.error("\(user) is not enrolled; run `twostep enroll` first.")
                return .notEnrolled
            }
            if command == .devicesRemove, let refusal = refuseChange(user, enrolled: enrolled, { try $0.remove(named: name) }) {
                conversation.error(refusal + "; nothing was changed.")
                return .denied
            }
        default: break
        }

        // The password first, for every change; then a current code unless this is a first enrolment.
        if callerUID != 0, let refused = checkPassword(user, service: service, event: command.auditEvent,
                                                       conversation: conversation) {
            return refused
        }
        if enrolled {
            let prompt: String
            switch command {
            case .enroll where !name.isEmpty: prompt = "Code from one of your authenticators (before adding \(name)): "
            case .enroll: prompt = "Code from your current authenticator app (before replacing it): "
            case .qr: prompt = "Code from your authenticator app (a backup code does not show the key): "
            case .devicesRemove: prompt = "Code from another authenticator (not \(name)): "
            default: prompt = Verifier.prompt
            }
            // The QR code is the permanent secret: only the authenticator's code shows it.
            // Adding or removing an authenticator takes a code from one that stays.
            let verdict = verifier.authenticate(LoginRequest(user: user, service: service), prompt: prompt,
                                                acceptsBackupCode: command != .qr && command != .devicesRemove &&
                                                    !(command == .enroll && !name.isEmpty),
                                                excluding: command == .devicesRemove ? name : nil,
                                                conversation: conversation, selfService: true)
            guard verdict == .success else {
                if verdict == .failure { conversation.error("That code is not valid; nothing was changed.") }
                return verdict
            }
        }

        switch command {
        case .enroll:
            let verdict = wizard.run(user: user, service: service, conversation: conversation, replace: enrolled && name.isEmpty,
                                     add: name.isEmpty ? nil : name, codeChecked: enrolled, emit: json ? emit : nil)
            if verdict != .success, let spent = verifier.spentBackupCode {
                giveBackBackupCode(spent, user: user, service: service, conversation: conversation)
            }
            return verdict
        case .devicesRemove:
            return removeDevice(user, name: name, service: service, conversation: conversation)
        case .backupCodes:
            return backupCodes(user, service: service, json: json, emit: emit, conversation: conversation)
        case .qr:
            return showQR(user, json: json, emit: emit, conversation: conversation)
        case .disable:
            do {
                try store.withLock(user) { try store.removeUser(user) }
            } catch {
                conversation.error("Could not disable: \(error)")
                return .systemError
            }
            audit.record(AuditEvent(event: SelfServiceCommand.disable.auditEvent, user: user, service: service, result: "success"))
            conversation.info("Two-step login is now off for \(user). Run `twostep enroll` to turn it on again.")
            return .success
        case .forget:
            return forget(user, fingerprint: request.fingerprint, service: service, emit: emit, conversation: conversation)
        case .status, .devices, .email:
            return .denied  // handled above
        }
    }

    /// `enroll --replace` confirmed with a backup code, and the new authenticator was not
    /// set up (its codes did not match, the user cancelled, an error): nothing changed, so
    /// the backup code is not used up either; a user down to their last one could not try
    /// again otherwise. It goes back only into the set it came from (the same key), while
    /// that set has lost nothing else: new codes issued meanwhile, or another one spent, and
    /// it stays spent. The failures and lockouts its success cleared come back with it, so
    /// that giving a code and cancelling is no way to reset the limiter.
    func giveBackBackupCode(_ spent: Verifier.SpentBackupCode, user: String, service: String,
                            conversation: Conversation) {
        do {
            let left: Int? = try store.withLock(user) {
                guard let record = try store.loadRecord(user), record.backupHashes == spent.left,
                      record.backupKey.sameBytes(as: spent.key)
                else { return nil }
                record.backupHashes.append(spent.hash)
                try store.saveRecord(record, for: user)
                var state = try store.loadState(user)
                // The failures its success cleared are no longer in the state: added back as
                // they were (several in one second stay several), to the state's limit.
                state.failures = Array((spent.failures + state.failures).sorted().suffix(UserState.maxFailures))
                // Lockouts since the spend were counted from 0: in a row with those before it.
                state.lockouts = min(spent.lockouts + state.lockouts, UserState.maxLockouts)
                try store.saveState(state, for: user)
                return record.backupHashes.count
            }
            guard let left else { return }
            audit.record(AuditEvent(event: SelfServiceCommand.enroll.auditEvent, user: user, service: service,
                                    result: "failure", detail: "not replaced; backup code given back, \(left) left"))
            conversation.info("Your backup code was not used up: \(left) left.")
        } catch {
            AuditLog.syslogLine(LOG_ERR, "enroll \(user): backup code not given back: \(error)")
        }
    }

    func status(_ user: String, enrolled: Bool, emit: (ServiceData) -> Void, conversation: Conversation) -> Verdict {
        do {
            emit(try Self.statusFields(user, store: store, config: config, now: now()))
        } catch {
            conversation.error("Two-step verification is unavailable for this account; ask an administrator.")
            return .systemError
        }
        return .success
    }

    /// What `twostep status` and `twostep admin show` tell about a user: facts, never a secret.
    public static func statusFields(_ user: String, store: UserStore, config: Config, now: Int64,
                                    fullAddress: Bool = false) throws -> ServiceData {
        let (record, state) = try store.loadRecordAndState(user)
        return statusFields(user, record: record, state: state, config: config, now: now, fullAddress: fullAddress)
    }

    public static func statusFields(_ user: String, record: UserRecord?, state: UserState, config: Config, now: Int64,
                                    fullAddress: Bool = false) -> ServiceData {
        guard let record else { return ServiceData([(.user, user), (.enrolled, "false")]) }
        var data = ServiceData([
            (.user, user), (.enrolled, "true"),
            (.enrolledAt, AuditLog.isoTime(record.created)),
            (.algorithm, record.parameters.algorithm.rawValue),
            (.digits, String(record.parameters.digits)),
            (.backupCodesLeft, String(record.backupHashes.count)),
        ])
        // The primary authenticator's time step; an HOTP token counts and has none (its
        // counter is listed with the authenticators).
        if record.primary.kind == .totp { data[.period] = String(record.parameters.period) }
        if state.lastStep >= 0 {
            data[.lastCodeAt] = AuditLog.isoTime(record.parameters.startOfStep(state.lastStep))
        }
        data[.recentFailures] = String(RateLimiter(config: config, now: { now }).recentFailures(state))
        let locked = state.lockedUntil > now
        data[.locked] = locked ? "true" : "false"
        if locked { data[.lockedUntil] = AuditLog.isoTime(state.lockedUntil) }
        if let trusted = trustedKeysField(record, now: now, lasting: config.trustSSHKey) { data[.trustedSSHKeys] = trusted }
        recoveryFields(record.recovery, into: &data, now: now, fullAddress: fullAddress)
        return data
    }

    /// Why `change` cannot be made to `user`'s record (before any password is asked), or nil.
    func refuseChange(_ user: String, enrolled: Bool, _ change: (UserRecord) throws -> Void) -> String? {
        guard enrolled else { return nil }
        do {
            guard let record = try store.loadRecord(user) else { return nil }
            try change(record)
            return nil
        } catch {
            return "\(error)"
        }
    }

    func devices(_ user: String, enrolled: Bool, emit: (ServiceData) -> Void, conversation: Conversation) -> Verdict {
        do {
            var data = try Self.deviceFields(user, store: store)
            if let record = try store.loadRecord(user), let trusted = Self.trustedKeysField(record, now: now(), lasting: config.trustSSHKey) {
                data[.trustedSSHKeys] = trusted
            }
            emit(data)
        } catch {
            conversation.error("Two-step verification is unavailable for this account; ask an administrator.")
            return .systemError
        }
        return .success
    }

    /// What `twostep devices` and `admin show` list: every authenticator, never a secret.
    public static func deviceFields(_ user: String, store: UserStore) throws -> ServiceData {
        guard let record = try store.loadRecord(user) else { return ServiceData([(.user, user), (.enrolled, "false")]) }
        let state = try store.loadState(user)
        let lines = record.authenticators.map { a -> String in
            let d = state.device(a.name)
            let p = a.parameters
            return "\(a.name) \(a.kind.rawValue) \(p.algorithm.rawValue) \(p.digits) " +
                   (a.kind == .totp ? "\(p.period) -" : "- \(d.counter)") + " \(a.added) \(d.lastUsed)"
        }
        return ServiceData([(.user, user), (.enrolled, "true"), (.authenticators, lines.joined(separator: "\n"))])
    }

    func removeDevice(_ user: String, name: String, service: String, conversation: Conversation) -> Verdict {
        let event = SelfServiceCommand.devicesRemove.auditEvent
        do {
            let label: String = try store.withLock(user) {
                guard let record = try store.loadRecord(user) else { throw RecordChangeError.missing(name) }
                let label = record.authenticator(named: name)?.label ?? name
                try record.remove(named: name)
                // A key trusted after one of its codes would still pass without a code (a
                // reviewer's, after removing a lost phone): every trust ends, as when a
                // secret is replaced.
                record.forget(nil)
                try store.saveRecord(record, for: user)
                var state = try store.loadState(user)
                state.devices[name] = nil
                try store.saveState(state, for: user)
                return label
            }
            audit.record(AuditEvent(event: event, user: user, service: service, result: "success", detail: label))
            conversation.info("Removed \(name): its codes no longer work for \(user), and no SSH key is trusted any more " +
                              "(the next login with a key asks for a code).")
            return .success
        } catch let e as RecordChangeError {
            conversation.error("\(e); nothing was changed.")
            return .denied
        } catch {
            conversation.error("Could not remove \(name): \(error)")
            return .systemError
        }
    }

    func backupCodes(_ user: String, service: String, json: Bool, emit: (ServiceData) -> Void,
                     conversation: Conversation) -> Verdict {
        let codes: [String]
        do {
            codes = try store.issueBackupCodes(for: user)
        } catch {
            conversation.error("Could not issue backup codes: \(error)")
            return .systemError
        }
        audit.record(AuditEvent(event: SelfServiceCommand.backupCodes.auditEvent, user: user, service: service, result: "success"))
        if json {
            emit(ServiceData([(.user, user), (.backupCodes, codes.joined(separator: ","))]))
        } else {
            var text = "New backup codes for \(user); earlier codes no longer work. Each works once:\n\n"
            for c in codes { text += "    \(c)\n" }
            conversation.info(text)
        }
        return .success
    }

    func showQR(_ user: String, json: Bool, emit: (ServiceData) -> Void, conversation: Conversation) -> Verdict {
        do {
            guard let record = try store.loadRecord(user) else { return .notEnrolled }
            let uri = record.secret.withBytes {
                OTPAuthURI(issuer: config.issuer, account: user, secret: $0, parameters: record.parameters).uriString
            }
            if json {
                let png = try QRCode.png(uri)
                emit(ServiceData([(.user, user), (.otpauthURI, uri), (.qrPNGDataURI, "data:image/png;base64," + Base64.encode(png))]))
            } else {
                conversation.info(record.secret.withBytes {
                    EnrollmentWizard.setupText(uri: uri, secret: $0, parameters: record.parameters)
                })
            }
            audit.record(AuditEvent(event: SelfServiceCommand.qr.auditEvent, user: user, service: "twostep", result: "success"))
            return .success
        } catch {
            conversation.error("Could not show the QR code: \(error)")
            return .systemError
        }
    }
}

extension SelfServiceCommand {
    /// The audit log's event name: one spelling for refusals and successes alike
    /// (`backup_codes`, as the admin's `admin_backup_codes`).
    public var auditEvent: String {
        String(rawValue.map { $0 == "-" ? "_" : $0 })
    }
}
