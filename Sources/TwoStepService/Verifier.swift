// SPDX-License-Identifier: Apache-2.0
import TwoStepCore
import TwoStepCrypto
import TwoStepProtocol
import TwoStepStore

/// What one answer was, once checked.
public enum CodeCheck: Equatable {
    /// A TOTP code of the named authenticator, at this time step.
    case totp(name: String, step: Int64)
    /// An HOTP code of the named authenticator, at this counter.
    case hotp(name: String, counter: UInt64)
    case backup(remaining: Int)
    /// A code of the secret a mailed invitation (`admin rotate-secret`) brought: it replaces
    /// the primary authenticator's.
    case invitedSecret(step: Int64)
    /// The support person's one-time code (`admin recovery-code`), now spent.
    case recoveryCode
    case replayed
    case wrong
}

/// The helper's decisions: one prompt that takes a code from any of the user's
/// authenticators (TOTP or HOTP) or a backup code; the window, each authenticator's replay
/// mark, HOTP counter and learned clock drift; one-time backup codes; the 2FA limiter (per
/// user). The clock is injected so tests can stand at any window edge.
public final class Verifier {
    public let config: Config
    let store: UserStore
    let audit: AuditLog
    let now: () -> Int64
    let limiter: RateLimiter

    public static let prompt = "Verification code: "

    /// Enrolment at first login (`enroll = prompt`), instead of the wizard: the lean login
    /// helper (twostep-verify, built without the QR code library) hands the whole login
    /// to the full helper here, before anything was asked.
    public var enrolAtFirstLogin: ((_ user: String, _ service: String, _ conversation: Conversation) -> Verdict)?

    /// The backup code the last successful `authenticate` spent: its keyed hash, the key of
    /// its set, the hashes the record kept after it, and the failures and lockouts in a row
    /// its success cleared. Self-service gives it back, and those with it, when the change
    /// it confirmed is not made (`SelfService.giveBackBackupCode`).
    public struct SpentBackupCode {
        public let hash: [UInt8]
        public let key: SecretBytes
        public let left: [[UInt8]]
        public let failures: [Int64]
        public let lockouts: Int
    }
    public private(set) var spentBackupCode: SpentBackupCode?
    private var matchedBackupHash: [UInt8]?

    public init(config: Config, store: UserStore, audit: AuditLog, now: @escaping () -> Int64) {
        self.config = config
        self.store = store
        self.audit = audit
        self.now = now
        limiter = RateLimiter(config: config, now: now)
    }

    /// One login's second factor. `prompt` is what the user is asked; self-service says
    /// which app's code it wants. `acceptsBackupCode` is false where only the authenticator
    /// may answer (`twostep qr` shows the permanent secret: a backup code must not reveal it).
    /// `excluding` names an authenticator whose codes do not count here (removing it needs
    /// a code from another one). `selfService`: a code that confirms a change, not a login
    /// (an administrator's bypass lets logins through, never changes). `invitationOnly`: only
    /// the first code of a mailed invitation's secret counts (`enroll --confirm`).
    public func authenticate(_ request: LoginRequest, prompt: String = Verifier.prompt,
                             acceptsBackupCode: Bool = true, excluding: String? = nil,
                             conversation: Conversation,
                             selfService: Bool = false, invitationOnly: Bool = false) -> Verdict {
        spentBackupCode = nil
        matchedBackupHash = nil
        var req = request
        func log(_ result: String, _ detail: String?, event: String = "verify") {
            audit.record(AuditEvent(event: event, user: req.user, service: req.service,
                                    result: result, detail: detail, rhost: req.rhost.isEmpty ? nil : req.rhost))
        }
        // The store is keyed by NSS's canonical name. A name NSS does not know (and that
        // an admin did not import as is) never reaches the store: it gets the same prompt
        // and the same failure as a wrong code, unless nullok lets it through. nullok does
        // where `require` is unset, and under `require = GROUPS` for a name NSS answered
        // has no account (it is in no group); not under `require = all`, and not for a name
        // NSS could not answer for (a directory down), whose groups cannot be known.
        let lookup = lookUpAccount(req.user)
        if case .found(let canonical, _) = lookup, isValidUserName(canonical) {
            req.user = canonical
        } else {
            var known = false
            if isValidUserName(req.user) {
                do { known = try store.hasRecord(req.user) } catch {
                    // An unusable store is an error (fail closed), never "no record".
                    log("error", "\(error)")
                    conversation.error("Two-step verification is unavailable for this account; ask an administrator.")
                    return .systemError
                }
            }
            if !known {
                if req.nullok && !requiresWithoutAccount(lookup) { return .ignore }
                let question = req.forwardPass ? CombinedPrompt.encode(digits: config.digits) : prompt
                // The same trace as for an enrolled user (who is enrolled does not show).
                guard conversation.ask(question, echo: false) != nil else {
                    log("cancelled", "no answer at the code prompt")
                    return .conversationError
                }
                log("failure", isValidUserName(req.user) ? "unknown user" : "invalid user name")
                return .failure
            }
        }
        // Before the prompt: the record, opened (decrypted) once for everything decided
        // before asking (bypass, invitation, trusted keys, forward_pass's code length), and
        // the state for the lockout. Both are read again under the lock after the answer.
        let preRecord: UserRecord?
        let state: UserState
        do {
            (preRecord, state) = try store.loadRecordAndState(req.user)
        } catch {
            log("error", "\(error)")
            conversation.error("Two-step verification is unavailable for this account; ask an administrator.")
            return .systemError
        }
        guard let preRecord else {
            let required = config.requires(req.user)
            if required == true && config.enroll == .prompt && canonicalUserName(req.user) != nil {
                // Only an account NSS knows is enrolled (never a record for a mistyped name).
                // Enrol at first login, after the first factor, inside this conversation.
                if let enrol = enrolAtFirstLogin { return enrol(req.user, req.service, conversation) }
                #if TWOSTEP_LEAN
                return .systemError
                #else
                return EnrollmentWizard(config: config, store: store, audit: audit, now: now)
                    .run(user: req.user, service: req.service, conversation: conversation, replace: false)
                #endif
            }
            let verdict = unenrolled(req, required: required)
            if verdict == .notEnrolled { log("failure", "not enrolled") }
            return verdict
        }
        // An administrator's bypass and a pending invitation are known before the prompt
        // (RecoveryLogin.swift).
        if !invitationOnly, let verdict = beforePrompt(req, record: preRecord, conversation: conversation,
                                                       bypass: !selfService, log: { log($0, $1) }) { return verdict }
        if let message = lockoutMessage(state) {
            log("refused", "locked out", event: "lockout")
            conversation.error(message)
            return .lockedOut
        }
        // A key this user proved a code with, still trusted: no prompt (TrustedKeys.swift).
        let keys = trustCandidates(req)
        if let key = trustedKey(keys, record: preRecord) {
            log("success", "trusted ssh key \(key.fingerprint)")
            return .success
        }
        // forward_pass: the module asks for password and code together and needs the code's
        // length: that of the first authenticator. With several of different lengths, the
        // others' codes go through the normal prompt (without forward_pass).
        var question = prompt
        if req.forwardPass, let first = preRecord.authenticators.first {
            question = CombinedPrompt.encode(digits: first.parameters.digits)
        }
        // The answer stays in SecretBytes (wiped when released) up to the comparison.
        guard let answer = conversation.ask(question, echo: false) else {
            // The client went away at the prompt (a closed connection, Ctrl-C): no code was
            // tried, so nothing is counted, but a first factor used this far leaves a trace.
            log("cancelled", "no answer at the code prompt")
            return .conversationError
        }
        if config.emailFallback && acceptsBackupCode && isEmailRequest(answer) {
            // A mailed code is for a login only: self-service changes (enroll --replace,
            // backup-codes, disable, email ADDRESS) are permanent, and password plus mailbox
            // would otherwise take an enrolment over without the phone or a backup code.
            guard !selfService else {
                log("failure", "code by email asked for a self-service change")
                conversation.error("Codes by email are for logging in only; give a code from your authenticator app, " +
                                   "a backup code or a recovery code.")
                return .failure
            }
            // forward_pass: the password typed with `email` is checked after this module (by
            // pam_unix), so a mail sent here would go out for anyone at the prompt, spend the
            // user's mails of the hour and tell them someone knows their password.
            guard !req.forwardPass else {
                log("failure", "code by email asked at a forward_pass prompt")
                conversation.error("Codes by email are not sent at this prompt; log in with the app's code or a backup code.")
                return .failure
            }
            return emailFallback(req, conversation: conversation, log: { log($0, $1, event: $2) })
        }
        // What the answer's check has to say (the audit line, messages) waits until withLock
        // has returned, that is until its write is durable: the file store's at once, the
        // database's at COMMIT, which carries the write (PostgresDatabase.withTransaction).
        // A write or COMMIT that fails says only "error".
        var said: [() -> Void] = []
        do {
            let verdict = try store.withLock(req.user) { () throws -> Verdict in
                // Read again under the lock: another login may have spent this step. Nothing
                // before the prompt changed preRecord, so a record file holding the bytes it
                // was opened from gives it back unopened; the state is always read anew.
                let current = try store.reloadRecordAndState(req.user, opened: preRecord)
                guard let record = current.record else { return unenrolled(req) }
                var state = current.state
                if let message = lockoutMessage(state) {
                    said.append {
                        log("refused", "locked out", event: "lockout")
                        conversation.error(message)
                    }
                    return .lockedOut
                }
                // One durable state write per answer, before anything is said about it: the
                // attempt counted (a wrong code) or the code spent (a right one). The helper
                // is root with its resource limits lifted (setresuid, inherit.c), so the caller
                // cannot stop it between the check and this write; a helper that dies there
                // anyway (OOM, an administrator's kill) has said nothing: no verdict, no
                // change, so nothing was learnt from an uncounted guess. A write that fails
                // (full or read-only disk) fails the login closed.
                let before = state
                var check = try self.check(answer, record: record, state: before, acceptsBackupCode: acceptsBackupCode,
                                           excluding: excluding)
                if invitationOnly && !confirmsInvitation(check, record) { check = .wrong }
                // Every success: no failure counted (`accepted` also marks a code spent).
                func succeed(_ accepted: UserState?, _ detail: String, _ message: String?) throws -> Verdict {
                    if let accepted {
                        state = accepted
                    } else {
                        state = before
                        state.failures = []
                        state.lockouts = 0
                    }
                    try store.saveState(state, for: req.user)
                    said.append { log("success", detail) }
                    if let message { said.append { conversation.info(message) } }
                    return .success
                }
                switch check {
                case .totp, .hotp:
                    let trusted = try trustAfterCode(keys, record: record, user: req.user)
                    let finished = try finishInvitation(record, user: req.user, service: req.service, rhost: req.rhost)
                    let label = check.authenticatorLabel ?? ""
                    if let finished { said.append { self.audit.record(finished.event) } }
                    let verdict = try succeed(self.accepted(check, record: record, state: before),
                                              finished == nil ? label : label + ", invitation confirmed", finished?.text)
                    if let trusted { said.append { conversation.info(trusted) } }
                    return verdict
                case .invitedSecret(let step):
                    let (name, event) = try adoptInvitedSecret(record, user: req.user, service: req.service, rhost: req.rhost)
                    if let event { said.append { self.audit.record(event) } }
                    var adopted = before
                    adopted.failures = []
                    // The mark is the new secret's own, in its own period (the config's): the
                    // old secret's mark counted another secret's codes, perhaps in another
                    // period, and the old secret takes no code from now on.
                    adopted.devices[name] = AuthenticatorState(lastStep: step, lastUsed: now())
                    return try succeed(adopted, "totp, new secret confirmed",
                                       "Your new authenticator is confirmed; codes of the old one no longer work.")
                case .recoveryCode:
                    // A support person's code trusts no SSH key: the next login asks again.
                    try store.saveRecord(record, for: req.user)
                    return try succeed(nil, "recovery code",
                                       "Recovery code accepted; it no longer works. If your authenticator is lost, " +
                                       "`twostep enroll --replace` sets up a new one; it asks for a code, so ask " +
                                       "your administrator for another recovery code for it.")
                case .backup(let remaining):
                    // A backup code trusts no SSH key either: one leaked single-use code must
                    // not buy `trust_ssh_key` worth of logins without a code.
                    try store.saveRecord(record, for: req.user)
                    spentBackupCode = matchedBackupHash.map {
                        SpentBackupCode(hash: $0, key: record.backupKey, left: record.backupHashes,
                                        failures: before.failures, lockouts: before.lockouts)
                    }
                    return try succeed(nil, "backup code, \(remaining) left",
                                       "Backup code accepted; \(remaining) left." +
                                       (remaining <= 3 ? " Run `twostep backup-codes` for a new set." : ""))
                case .wrong where !answer.withBytes({ couldBeACode($0, record: record) }):
                    // A password typed at the code prompt, or sent there by a client that
                    // answers every hidden prompt with it (sshd's password method, a mail
                    // client): it cannot pass, so it is not counted and cannot lock the user
                    // out. Nothing changes, so nothing is written.
                    said.append { log("failure", "not a code (not counted)") }
                    return .failure
                case .replayed, .wrong:
                    let locked = limiter.recordFailure(&state)
                    try store.saveState(state, for: req.user)
                    let replayed = check == .replayed
                    said.append { log("failure", replayed ? "code already used" : "wrong code") }
                    if locked {
                        let message = lockoutMessage(state) ?? "Too many wrong codes."
                        said.append {
                            log("refused", self.lockoutDetail, event: "lockout")
                            conversation.error(message)
                        }
                        return .lockedOut
                    }
                    return .failure
                }
            }
            for say in said { say() }
            return verdict
        } catch {
            log("error", "\(error)")
            conversation.error("Two-step verification is unavailable for this account; ask an administrator.")
            return .systemError
        }
    }

    /// Checks an answer against the record and state without writing anything. A TOTP
    /// step at or before the last accepted one is a replay. A matching backup code is
    /// removed from `record` (the caller saves it).
    public func check(_ answer: SecretBytes, record: UserRecord, state: UserState,
                      acceptsBackupCode: Bool = true, excluding: String? = nil) throws -> CodeCheck {
        try answer.withBytes {
            try check(answerBytes: $0, record: record, state: state, acceptsBackupCode: acceptsBackupCode, excluding: excluding)
        }
    }

    func check(answerBytes raw: [UInt8], record: UserRecord, state: UserState,
               acceptsBackupCode: Bool = true, excluding: String? = nil) throws -> CodeCheck {
        var trimmed = OTP.strippingWhitespace(raw)
        defer { Crypto.wipe(&trimmed) }
        let inv = record.recovery
        // An invitation nobody confirmed in time brings nothing: neither its own secret...
        let lapsed = inv.hasInvitation && inv.invitedSecret == nil && inv.invitationUntil <= now()
        let candidates = lapsed ? [] : record.authenticators.filter { $0.name != excluding && $0.parameters.digits == trimmed.count }
        // ...nor, after its time, the new secret of `admin rotate-secret`, which is tried only
        // when no authenticator took the code.
        let invited = inv.invitationUntil > now() && trimmed.count == config.otpParameters.digits ? inv.invitedSecret : nil
        if !candidates.isEmpty || invited != nil, OTP.isDecimal(trimmed) {
            let found = try matchAuthenticators(trimmed, candidates, state: state)
            if found == .wrong, let invited, let step = try invited.withBytes({
                try OTP.matchTOTP(code: trimmed, secret: $0, at: now(), parameters: config.otpParameters, window: config.window)
            }) {
                // Another secret: the old one's replay mark says nothing about its codes (a code
                // of each in the same step is two codes). Its own replay is stopped once it is
                // adopted: its step is then the authenticator's mark.
                return .invitedSecret(step: step)
            }
            if found != .wrong { return found }
            // 8 digits that are no code of an 8-digit authenticator may still be an imported
            // google-authenticator scratch code: the digits typed decide what is tried.
            if trimmed.count != BackupCodes.scratchCodeLength { return .wrong }
        }
        if acceptsBackupCode, !record.backupHashes.isEmpty {
            let index = try record.backupKey.withBytes {
                try BackupCodes.match(trimmed, hashes: record.backupHashes, key: $0)
            }
            if let index {
                matchedBackupHash = record.backupHashes.remove(at: index)
                return .backup(remaining: record.backupHashes.count)
            }
        }
        if acceptsBackupCode, try record.recovery.matches(trimmed, record.recovery.recoveryCode, .recovery, now: now()) {
            record.recovery.recoveryCode = nil
            return .recoveryCode
        }
        return .wrong
    }

    /// Whether `require` asks a name that has no account (`lookup` not `.found`) to use
    /// two-step login: `all` does; groups do when NSS could not answer (its groups cannot be
    /// known: fail closed), not when it answered that there is no such account.
    func requiresWithoutAccount(_ lookup: AccountLookup) -> Bool {
        switch config.require {
        case nil: return false
        case .all?: return true
        case .groups?: return lookup == .failed
        }
    }

    /// The verdict for a user with no usable enrolment, decided before any code is asked:
    /// PAM_IGNORE outside `require`, or with nullok when `require` is unset; else
    /// notEnrolled. An invitation not confirmed (or expired) is such a case too.
    /// `required`: `config.requires(req.user)`, when the caller has it already.
    func unenrolled(_ req: LoginRequest) -> Verdict { unenrolled(req, required: config.requires(req.user)) }

    func unenrolled(_ req: LoginRequest, required: Bool?) -> Verdict {
        switch required {
        case false?: return .ignore
        case true?: return .notEnrolled
        case nil: return req.nullok ? .ignore : .notEnrolled
        }
    }

    /// Whether `answer` has the shape of anything `check` could accept: after the whitespace
    /// `check` strips, digits as many as an authenticator's (or an invited secret's), or
    /// what a backup code, an imported scratch code or a recovery code normalizes from.
    /// `check` answers `.wrong` for every other answer whatever the record holds, so such an
    /// answer can be refused without counting: no guess is ever left uncounted.
    func couldBeACode(_ answer: [UInt8], record: UserRecord) -> Bool {
        var trimmed = OTP.strippingWhitespace(answer)
        defer { Crypto.wipe(&trimmed) }
        if OTP.isDecimal(trimmed),
           trimmed.count == config.otpParameters.digits || record.authenticators.contains(where: { $0.parameters.digits == trimmed.count }) {
            return true
        }
        for length in [BackupCodes.length, BackupCodes.shortLength] {
            if var normalized = BackupCodes.normalize(trimmed, length: length) {
                Crypto.wipe(&normalized)
                return true
            }
        }
        return false
    }

    /// Every authenticator of `candidates` (codes of their length, digits only) is tried, with
    /// no early exit; the first that accepts wins. A match at or before an authenticator's
    /// mark is a replay.
    func matchAuthenticators(_ trimmed: [UInt8], _ candidates: [Authenticator], state: UserState) throws -> CodeCheck {
        var found: CodeCheck? = nil
        var replayed = false
        for a in candidates {
            let device = state.device(a.name)
            switch a.kind {
            case .totp:
                guard let at = shiftedNow(a, device) else { continue }
                let step = try a.secret.withBytes {
                    try OTP.matchTOTP(code: trimmed, secret: $0, at: at, parameters: a.parameters, window: config.window)
                }
                guard let step else { continue }
                if step > device.lastStep { found = found ?? .totp(name: a.name, step: step) } else { replayed = true }
            case .hotp:
                // RFC 4226 §7.4: look ahead hotp_window counters from the next expected one;
                // every counter below it is spent, so a code never passes twice. A lost
                // counter (a damaged state) takes no code until `admin resync`.
                guard device.counter != AuthenticatorState.lostCounter else { continue }
                let (last, overflow) = device.counter.addingReportingOverflow(UInt64(config.hotpWindow))
                guard !overflow else { continue }
                let counter = try a.secret.withBytes {
                    try OTP.matchCounter(code: trimmed, secret: $0, counters: device.counter...last,
                                         digits: a.parameters.digits, algorithm: a.parameters.algorithm)
                }
                if let counter { found = found ?? .hotp(name: a.name, counter: counter) }
            }
        }
        return found ?? (replayed ? .replayed : .wrong)
    }

    /// The steps of `max_drift` for this authenticator (0 when drift is off).
    func maxDriftSteps(_ a: Authenticator) -> Int64 {
        Int64(config.maxDrift / a.parameters.period)
    }

    /// A TOTP authenticator's offset, as far as `max_drift` allows (a state written under a
    /// larger `max_drift` is held to today's).
    func drift(_ a: Authenticator, _ device: AuthenticatorState) -> Int64 {
        let limit = maxDriftSteps(a)
        return min(max(device.drift, -limit), limit)
    }

    /// Now as this TOTP authenticator's clock shows it (now + its offset in steps); nil at
    /// the far ends of time.
    func shiftedNow(_ a: Authenticator, _ device: AuthenticatorState) -> Int64? {
        let (shift, o1) = drift(a, device).multipliedReportingOverflow(by: Int64(a.parameters.period))
        let (at, o2) = now().addingReportingOverflow(shift)
        return o1 || o2 ? nil : at
    }

    /// The state after an accepted code: TOTP marks its step spent and learns drift (the
    /// offset moves one step towards where the code was found, never beyond `max_drift`);
    /// HOTP moves the counter past the code. The failure just counted is dropped, and the
    /// state of authenticators no longer in the record with it.
    public func accepted(_ check: CodeCheck, record: UserRecord, state before: UserState) -> UserState {
        var state = before
        state.failures = []
        state.lockouts = 0
        state.devices = state.devices.filter { record.authenticator(named: $0.key) != nil }
        switch check {
        case .totp(let name, let step):
            guard let a = record.authenticator(named: name) else { return state }
            var device = state.device(name)
            device.drift = drift(a, device)
            if let at = shiftedNow(a, device) {
                let expected = a.parameters.step(at: at)
                if step != expected {
                    device.drift = min(max(device.drift + (step > expected ? 1 : -1), -maxDriftSteps(a)), maxDriftSteps(a))
                }
            }
            device.lastStep = step
            device.lastUsed = now()
            state.devices[name] = device
        case .hotp(let name, let counter):
            var device = state.device(name)
            device.counter = counter == .max ? counter : counter + 1
            device.lastUsed = now()
            state.devices[name] = device
        case .backup, .invitedSecret, .recoveryCode, .replayed, .wrong:
            break
        }
        return state
    }

    /// Counts a failure that is not a code (a wrong password in self-service) against the
    /// same limiter. Returns the verdict to give.
    /// `rhost`: the login's remote host, when it is one (evidence of where a first factor
    /// was used from), else empty.
    public func countFailure(user: String, service: String, event: String, detail: String, rhost: String = "",
                             conversation: Conversation) -> Verdict {
        audit.record(AuditEvent(event: event, user: user, service: service, result: "failure", detail: detail,
                                rhost: rhost.isEmpty ? nil : rhost))
        do {
            // The lockout is said once withLock has returned, that is once the count is
            // durable (a database store's COMMIT), as in authenticate.
            let lockout: String? = try store.withLock(user) {
                var state = try store.loadState(user)
                let locked = limiter.recordFailure(&state)
                try store.saveState(state, for: user)
                return locked ? (lockoutMessage(state) ?? "Too many failures.") : nil
            }
            guard let lockout else { return .failure }
            recordLockout(user: user, service: service, rhost: rhost)
            conversation.error(lockout)
            return .lockedOut
        } catch {
            audit.record(AuditEvent(event: event, user: user, service: service, result: "error", detail: "\(error)"))
            return .systemError
        }
    }

    /// The lockout message for `user` if locked now.
    public func lockoutMessage(user: String) -> String? {
        guard let state = try? store.loadState(user) else { return nil }
        return lockoutMessage(state)
    }

    /// A plain-words message while the user is locked out, else nil.
    public func lockoutMessage(_ state: UserState) -> String? { limiter.lockoutMessage(state) }

    /// The `lockout` audit event's detail: the limit that was reached.
    var lockoutDetail: String { "\(config.rateLimitFailures) failures within \(config.rateLimitSeconds) s" }

    /// The `lockout` event of a failure that reached the limit outside a login's dialogue.
    func recordLockout(user: String, service: String, rhost: String = "") {
        audit.record(AuditEvent(event: "lockout", user: user, service: service, result: "refused", detail: lockoutDetail,
                                rhost: rhost.isEmpty ? nil : rhost))
    }
}

/// The 2FA limiter: `rate_limit` failures within its seconds start a `lockout`. Codes and
/// self-service passwords count against the same limit.
public struct RateLimiter {
    public let failures: Int
    public let seconds: Int
    public let lockout: Int
    public let lockoutMax: Int
    let now: () -> Int64

    public init(config: Config, now: @escaping () -> Int64) {
        failures = config.rateLimitFailures
        seconds = config.rateLimitSeconds
        lockout = config.lockout
        lockoutMax = max(config.lockout, config.lockoutMax)
        self.now = now
    }

    /// Counts one failure; returns true when it starts a lockout. The n-th lockout in a row
    /// (no code accepted since the first) lasts `lockout` × 2^(n-1), at most `lockout_max`:
    /// with fixed lockouts someone who has the password could guess codes forever at
    /// `rate_limit` per `lockout` (about 1,440 a day with the defaults).
    public func recordFailure(_ state: inout UserState) -> Bool {
        let t = now()
        state.failures = state.failures.filter { $0 > t - Int64(seconds) && $0 <= t }
        state.failures.append(t)
        if state.failures.count >= failures {
            state.lockouts = min(state.lockouts + 1, 1_000)
            state.lockedUntil = t + Int64(lockoutSeconds(nth: state.lockouts))
            state.failures = []
            return true
        }
        return false
    }

    /// How long the n-th lockout in a row lasts.
    public func lockoutSeconds(nth n: Int) -> Int {
        var d = lockout
        for _ in 1..<max(n, 1) where d < lockoutMax { d *= 2 }
        return min(d, lockoutMax)
    }

    /// Failures within the window, as `twostep status` reports them.
    public func recentFailures(_ state: UserState) -> Int {
        let t = now()
        return state.failures.filter { $0 > t - Int64(seconds) }.count
    }

    /// A plain-words message while the user is locked out, else nil.
    public func lockoutMessage(_ state: UserState) -> String? {
        let t = now()
        guard state.lockedUntil > t else { return nil }
        let left = state.lockedUntil - t
        let until = AuditLog.isoTime(state.lockedUntil)
        return "Too many wrong verification codes: two-step login is locked for \(describe(seconds: left)) " +
               "(until \(until)). Ask an administrator to run `twostep admin unlock` if this was not you."
    }
}

extension CodeCheck {
    /// `totp default`, `hotp yubikey`: which authenticator passed, for the audit log.
    public var authenticatorLabel: String? {
        switch self {
        case .totp(let name, _): return "totp " + name
        case .hotp(let name, _): return "hotp " + name
        default: return nil
        }
    }
}

public func describe(seconds: Int64) -> String {
    if seconds < 60 { return "\(seconds) s" }
    let m = (seconds + 59) / 60
    if m < 120 { return "\(m) min" }
    return "\((m + 59) / 60) h"
}
