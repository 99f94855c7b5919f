// SPDX-License-Identifier: Apache-2.0
import TwoStepCore
import TwoStepCrypto
import TwoStepStore

/// What became of one user.
public enum ImportOutcome: Equatable {
    /// Written (or, in a dry run, would be); the words say what.
    case imported(String)
    /// Enrolled already with exactly these secrets: an earlier run did it, and the source
    /// has spent nothing since that the store does not know of.
    case alreadyImported
    /// Enrolled already with these secrets (an earlier run), and what the source spent
    /// since (used steps, HOTP counters, scratch codes) was carried over; the words say what.
    case updated(String)
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

    /// Imports `candidate` unless its user is enrolled: then, when the record holds the
    /// same secrets (an earlier run imported them), what the source spent since is carried
    /// over (`updated`; `alreadyImported` when there is nothing to carry), else the user is
    /// skipped; `replace` overwrites. Whatever a rerun does, no code spent on either side
    /// passes again: replay marks and counters only go up, and a backup code is kept only
    /// while the source still has it too. A dry run reads and decides the same way and
    /// writes nothing.
    public func run(_ candidate: ImportCandidate, dryRun: Bool, replace: Bool) -> ImportOutcome {
        let user = candidate.user
        let outcome: ImportOutcome
        do {
            outcome = try store.withLock(user) { () throws -> ImportOutcome in
                let existing = try store.loadRecord(user)
                let rerun = try existing.map { try Self.holdsSameSecrets($0, candidate) } ?? false
                if existing != nil && !rerun && !replace { return .skipped("already enrolled (give --replace to overwrite)") }
                var record: UserRecord
                var state: UserState
                do { (record, state) = try makeRecord(candidate) } catch let refusal as ImportRefusal {
                    return .refused(refusal.description)
                }
                let what = describe(candidate)
                if let existing, rerun {
                    let same = record.authenticators.allSatisfy { new in
                        Self.twin(of: new, in: existing).map { $0.givesSameCodes(as: new) && $0.parameters.digits == new.parameters.digits } ?? false
                    }
                    if same { return try carryOver(candidate, state, into: existing, dryRun: dryRun) }
                    guard replace else {
                        return .skipped("already imported with these secrets, but the source now says \(what): " +
                                        "give --replace to take it as it is now")
                    }
                }
                var notes: [String] = []
                if let existing, candidate.authenticators.contains(where: { Self.twin(of: $0, in: existing) != nil }) {
                    // Replacing a record that holds one of the source's secrets: its scratch
                    // codes are (or were) this record's backup codes too, and one spent here
                    // must not come back. Only the codes both still have stay.
                    let kept = try Self.keptBackupCodes(existing, candidate)
                    record = UserRecord(authenticators: record.authenticators, created: record.created,
                                        backupKey: existing.backupKey.withBytes { Array($0) }, backupHashes: kept.hashes)
                    if let note = kept.note { notes.append(note) }
                }
                if existing == nil {
                    // A new user's state is written first (below), but never over a damaged
                    // one: as saveRecord would, the import stops and says `admin unlock`
                    // repairs it (a dry run decides the same way).
                    do { _ = try store.loadState(user) } catch StoreError.damaged(let path, let reason) {
                        throw StoreError.damagedStateNeedsUnlock(path: path, reason: reason, user: user)
                    }
                }
                let imported = ([what] + notes).joined(separator: "; ")
                if dryRun { return .imported(imported) }
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
                } else {
                    // A new user: the replay state first, so that a crash or a failed write
                    // leaves no record whose spent codes pass (a rerun writes both).
                    try store.saveState(state, for: user)
                }
                try store.saveRecord(record, for: user)
                try store.saveState(state, for: user)
                guard let written = try store.loadRecord(user), try Self.holdsSameSecrets(written, candidate),
                      written.backupHashes == record.backupHashes, try store.loadState(user).devices == state.devices else {
                    return .failed("the record read back differs from what was written")
                }
                return .imported(imported)
            }
        } catch {
            outcome = .failed("\(error)")
        }
        if !dryRun { record(outcome, candidate) }
        return outcome
    }

    /// A rerun on a record that holds the candidate's secrets with the same parameters:
    /// each authenticator's replay mark and counter raised to the source's where the source
    /// is ahead (the state is written first, so a crash leaves nothing spent usable), and
    /// the backup codes the source no longer has spent. Nothing else of the record changes.
    func carryOver(_ candidate: ImportCandidate, _ source: UserState, into existing: UserRecord,
                   dryRun: Bool) throws -> ImportOutcome {
        let user = candidate.user
        let old = try store.loadState(user)
        var state = old
        var words: [String] = []
        for (i, a) in candidate.authenticators.enumerated() {
            guard let twin = Self.twin(of: a, in: existing) else { continue }
            let before = state.device(twin.name)
            let after = before.carrying(source.device(Self.importedName(i, a)))
            guard after != before else { continue }
            state.devices[twin.name] = after
            switch twin.kind {
            case .totp: words.append("\(twin.label): steps up to \(after.lastStep) used")
            case .hotp: words.append("\(twin.label): next counter \(after.counter)")
            }
        }
        let kept = try Self.keptBackupCodes(existing, candidate)
        let spent = existing.backupHashes.count - kept.hashes.count
        if spent > 0 { words.append("\(spent) backup code\(spent == 1 ? "" : "s") used there spent") }
        if let note = kept.note { words.append(note) }
        // (A note comes only with spent codes: something changed whenever words were said.)
        guard !words.isEmpty else { return .alreadyImported }
        let text = "already imported; " + words.joined(separator: "; ")
        if dryRun { return .updated(text) }
        if state != old { try store.saveState(state, for: user) }
        if spent > 0 {
            let record = existing
            record.backupHashes = kept.hashes
            try store.saveRecord(record, for: user)
        }
        return .updated(text)
    }

    /// The authenticator of `record` holding the same secret as `a`.
    static func twin(of a: Authenticator, in record: UserRecord) -> Authenticator? {
        record.authenticators.first { $0.hasSameSecret(as: a) }
    }

    static func twin(of a: ForeignAuthenticator, in record: UserRecord) -> Authenticator? {
        record.authenticators.first { holdsSecret($0, of: a) }
    }

    /// Whether `mine` holds `theirs`'s secret (compared in constant time).
    static func holdsSecret(_ mine: Authenticator, of theirs: ForeignAuthenticator) -> Bool {
        theirs.secret.withBytes { t in mine.secret.withBytes { Crypto.constantTimeEqual($0, t) } }
    }

    /// The backup codes of `existing` the source still has as scratch codes: an earlier run
    /// hashed them under this record's key, so a code used on either side since is in only
    /// one of the two sets, and only codes both still have are kept. When none is left of a
    /// set that was not empty, the note says so: all were used on one side or the other, or
    /// the user made new ones here, which cannot be told apart, and a spent code must not
    /// pass (the user makes new ones with `twostep backup-codes`).
    static func keptBackupCodes(_ existing: UserRecord, _ c: ImportCandidate) throws -> (hashes: [[UInt8]], note: String?) {
        let mine = existing.backupHashes
        // A source with no scratch codes (pam_oath) spent none: every backup code the record
        // has was made in twostep, and stays.
        guard c.hasScratchCodes else { return (mine, nil) }
        let theirs = Set(try existing.backupKey.withBytes { try hashScratchCodes(c.scratchCodes, key: Array($0)) })
        let kept = mine.filter { theirs.contains($0) }
        guard kept.isEmpty, !mine.isEmpty else { return (kept, nil) }
        return (kept, "none of this user's \(mine.count) backup code\(mine.count == 1 ? " is" : "s are") among the source's " +
                      "\(theirs.count) scratch code\(theirs.count == 1 ? "" : "s"): all taken as spent (codes made anew here " +
                      "are gone too: the user makes new ones with `twostep backup-codes`)")
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
        case .imported(let what), .updated(let what): (result, detail) = ("success", what)
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
            let name = Self.importedName(i, a)
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

    /// The name the `i`th authenticator of a source is imported as.
    static func importedName(_ i: Int, _ a: ForeignAuthenticator) -> String {
        i == 0 ? Authenticator.defaultName : "\(a.origin.hasPrefix("pam_oath") ? "oath" : "token")-\(i + 1)"
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
            guard let i = unmatched.firstIndex(where: { holdsSecret($0, of: a) }) else { return false }
            unmatched.remove(at: i)
        }
        return true
    }
}
