// SPDX-License-Identifier: Apache-2.0
import TwoStepCore
import TwoStepCrypto
import TwoStepStore

/// What became of one user.
public enum ImportOutcome: Equatable {
    /// Written (or, in a dry run, would be); the words say what.
    case imported(String)
    /// Enrolled already with exactly these secrets: an earlier run did it.
    case alreadyImported
    case skipped(String)
    /// The source file is not to be trusted (owner, mode, a link).
    case refused(String)
    case failed(String)
}

/// Writes ImportCandidates into the store: one user at a time, under that user's lock,
/// all of a user's authenticators and backup codes in one sealed record, the replay state
/// first (so a crash can never leave a record whose used steps are usable again), then
/// read back and compared before it counts as imported. Audited as `admin_import`.
public final class Importer {
    let config: Config
    let store: UserStore
    let audit: AuditLog
    let now: () -> Int64
    let actor: String

    public init(config: Config, store: UserStore, audit: AuditLog, actor: String, now: @escaping () -> Int64) {
        self.config = config
        self.store = store
        self.audit = audit
        self.actor = actor
        self.now = now
    }

    /// Imports `candidate` unless its user is enrolled (then `alreadyImported` when the
    /// record holds the same secrets, else skipped; `replace` overwrites). A dry run reads
    /// and decides the same way and writes nothing.
    public func run(_ candidate: ImportCandidate, dryRun: Bool, replace: Bool) -> ImportOutcome {
        let user = candidate.user
        let outcome: ImportOutcome
        do {
            outcome = try store.withLock(user) { () throws -> ImportOutcome in
                let existing = try store.loadRecord(user)
                if let existing {
                    if try Self.holdsSameSecrets(existing, candidate) { return .alreadyImported }
                    if !replace { return .skipped("already enrolled (give --replace to overwrite)") }
                }
                let record: UserRecord
                var state: UserState
                do { (record, state) = try makeRecord(candidate) } catch let refusal as ImportRefusal {
                    return .skipped(refusal.description)
                }
                let what = describe(candidate)
                if dryRun { return .imported(what) }
                if let existing {
                    let old = try store.loadState(user)
                    // A secret the record already has keeps what it spent, whatever its new name.
                    for a in record.authenticators {
                        if let twin = existing.authenticators.first(where: { $0.givesSameCodes(as: a) }) {
                            state.devices[a.name] = state.device(a.name).carrying(old.device(twin.name))
                        }
                    }
                    // Replacing: first a state that holds for the old record and the new one
                    // alike (each authenticator's mark and counter the higher of the two), so
                    // that a crash before the record is replaced leaves the old record with
                    // marks no lower than its own (its spent codes stay spent), and one after
                    // leaves the new record with marks no lower than the import's.
                    try store.saveState(Self.merged(old, state), for: user)
                }
                try store.saveRecord(record, for: user)
                try store.saveState(state, for: user)
                guard let written = try store.loadRecord(user), try Self.holdsSameSecrets(written, candidate),
                      written.backupHashes == record.backupHashes, try store.loadState(user).devices == state.devices else {
                    return .failed("the record read back differs from what was written")
                }
                return .imported(what)
            }
        } catch {
            outcome = .failed("\(error)")
        }
        if !dryRun { record(outcome, candidate) }
        return outcome
    }

    /// A state whose every authenticator has the higher replay mark and counter of `old`'s
    /// and `new`'s (and `new`'s drift), and whose other fields are `new`'s.
    static func merged(_ old: UserState, _ new: UserState) -> UserState {
        var out = new
        for (name, o) in old.devices {
            out.devices[name] = out.devices[name].map { $0.carrying(o) } ?? o
        }
        return out
    }

    /// Audits a refusal found before a candidate existed (an unsafe file).
    public func recordRefusal(user: String, source: String, _ outcome: ImportOutcome) {
        record(outcome, ImportCandidate(user: user, source: source, authenticators: []))
    }

    /// Audits the removal of an imported original (`--remove-original`).
    public func recordRemoval(user: String, source: String) {
        audit.record(AuditEvent(event: "admin_import", user: user, service: "twostep", result: "success",
                                detail: "original \(source) shredded after a verified import; by \(actor)"))
    }

    func record(_ outcome: ImportOutcome, _ candidate: ImportCandidate) {
        let result: String, detail: String
        switch outcome {
        case .imported(let what): (result, detail) = ("success", what)
        case .alreadyImported, .skipped: return  // nothing changed
        case .refused(let why): (result, detail) = ("refused", why)
        case .failed(let why): (result, detail) = ("error", why)
        }
        audit.record(AuditEvent(event: "admin_import", user: candidate.user, service: "twostep", result: result,
                                detail: "from \(candidate.source): \(detail); by \(actor)"))
    }

    /// "TOTP (SHA1, 6 digits, 30 s), 5 scratch codes as backup codes, steps up to 5900 used".
    func describe(_ c: ImportCandidate) -> String {
        var parts = c.authenticators.map { a -> String in
            var s = a.summary
            if a.driftSteps != 0 { s += ", clock \(a.driftSteps > 0 ? "+" : "")\(a.driftSteps) steps" }
            if let used = a.lastUsedStep { s += ", steps up to \(used) stay used" }
            return s
        }
        if !c.scratchCodes.isEmpty { parts.append("\(c.scratchCodes.count) scratch codes as backup codes") }
        return parts.joined(separator: "; ")
    }

    /// The record and state that carry `c`: one authenticator each (the first named
    /// `default`, the others `NAME-2`, `NAME-3`, ... after where they came from), the
    /// scratch codes hashed as backup codes under a fresh key, and per authenticator its
    /// used steps, next HOTP counter and clock offset.
    func makeRecord(_ c: ImportCandidate) throws -> (UserRecord, UserState) {
        guard !c.authenticators.isEmpty else { throw ImportRefusal.skip("no token") }
        guard c.authenticators.count <= Authenticator.maxCount else {
            throw ImportRefusal.skip("\(c.authenticators.count) tokens; twostep keeps at most \(Authenticator.maxCount) per user")
        }
        for (i, a) in c.authenticators.enumerated() where c.authenticators[..<i].contains(where: { a.secret.sameBytes(as: $0.secret) }) {
            throw ImportRefusal.skip("two tokens with the same secret (each code would pass twice)")
        }
        let created = now()
        var authenticators: [Authenticator] = []
        var state = UserState()
        for (i, a) in c.authenticators.enumerated() {
            let name = i == 0 ? Authenticator.defaultName : "\(a.origin.hasPrefix("pam_oath") ? "oath" : "token")-\(i + 1)"
            var device = AuthenticatorState()
            let authenticator: Authenticator
            switch a.kind {
            case .totp(let parameters):
                authenticator = a.secret.withBytes {
                    Authenticator(name: name, kind: .totp, secret: $0, parameters: parameters, added: created)
                }
                device.lastStep = a.lastUsedStep ?? -1
                let limit = Int64(config.maxDrift / parameters.period)
                device.drift = min(max(a.driftSteps, -limit), limit)
            case .hotp(let algorithm, let digits, let next):
                authenticator = a.secret.withBytes {
                    Authenticator(name: name, kind: .hotp, secret: $0,
                                  parameters: OTPParameters(algorithm: algorithm, digits: digits), added: created)
                }
                device.counter = next
            }
            authenticators.append(authenticator)
            state.devices[name] = device
        }
        let key = try Crypto.randomBytes(32)
        let hashes = try Self.hashScratchCodes(c.scratchCodes, key: key)
        return (UserRecord(authenticators: authenticators, created: created, backupKey: key, backupHashes: hashes), state)
    }

    /// Scratch codes hashed as backup codes are: HMAC-SHA256 under the record's backup key
    /// of the normalized code (its 8 digits).
    static func hashScratchCodes(_ codes: [SecretBytes], key: [UInt8]) throws -> [[UInt8]] {
        try codes.map { code in
            try code.withBytes { digits in
                guard var normalized = BackupCodes.normalize(digits) else {
                    throw ImportRefusal.skip("a scratch code that is not 8 digits")
                }
                defer { Crypto.wipe(&normalized) }
                return try BackupCodes.hash(normalized, key: key)
            }
        }
    }

    /// Whether `record` holds exactly the candidate's secrets, in any order (each pair
    /// compared in constant time).
    static func holdsSameSecrets(_ record: UserRecord, _ c: ImportCandidate) throws -> Bool {
        guard record.authenticators.count == c.authenticators.count else { return false }
        var unmatched = record.authenticators
        for a in c.authenticators {
            let i = a.secret.withBytes { theirs in
                unmatched.firstIndex { mine in mine.secret.withBytes { Crypto.constantTimeEqual($0, theirs) } }
            }
            guard let i else { return false }
            unmatched.remove(at: i)
        }
        return true
    }
}
