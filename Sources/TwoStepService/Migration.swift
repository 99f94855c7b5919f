// SPDX-License-Identifier: Apache-2.0
// Bringing users over from google-authenticator-libpam and pam_oath without a new
// enrolment: what their files say becomes an ImportCandidate; `Importer` writes it.
import TwoStepCore
import TwoStepCrypto
import TwoStepStore

/// One authenticator taken over from another module.
public final class ForeignAuthenticator {
    public enum Kind: Equatable {
        case totp(OTPParameters)
        /// `nextCounter`: the first counter value whose code is still good.
        case hotp(algorithm: HashAlgorithm, digits: Int, nextCounter: UInt64)
    }

    public let kind: Kind
    public let secret: SecretBytes
    /// How many time steps the device's clock is off (google-authenticator's TIME_SKEW).
    public let driftSteps: Int64
    /// TOTP: the newest time step already used for a login (it and older ones stay used).
    public let lastUsedStep: Int64?
    /// Where it came from, for the summary ("pam_oath line 3").
    public let origin: String

    public init(kind: Kind, secret: SecretBytes, driftSteps: Int64 = 0, lastUsedStep: Int64? = nil, origin: String) {
        self.kind = kind
        self.secret = secret
        self.driftSteps = driftSteps
        self.lastUsedStep = lastUsedStep
        self.origin = origin
    }

    /// "TOTP (SHA1, 6 digits, 30 s)", "HOTP (SHA1, 6 digits, next counter 12)".
    public var summary: String {
        switch kind {
        case .totp(let p): return "TOTP (\(p.algorithm.rawValue), \(p.digits) digits, \(p.period) s)"
        case .hotp(let a, let d, let c): return "HOTP (\(a.rawValue), \(d) digits, next counter \(c))"
        }
    }
}

/// Everything one user brings along; `notes` are facts the admin should know (a stricter
/// rate limit, a wider window) that do not stop the import.
public final class ImportCandidate {
    public let user: String
    public let source: String
    public let authenticators: [ForeignAuthenticator]
    /// google-authenticator's unused scratch codes (8 ASCII digits each).
    public let scratchCodes: [SecretBytes]
    /// Whether the source keeps scratch codes at all (google-authenticator does, pam_oath
    /// does not): only then can a backup code of an earlier import have been spent there.
    public let hasScratchCodes: Bool
    public let notes: [String]

    public init(user: String, source: String, authenticators: [ForeignAuthenticator], scratchCodes: [SecretBytes] = [],
                hasScratchCodes: Bool = true, notes: [String] = []) {
        self.user = user
        self.source = source
        self.authenticators = authenticators
        self.scratchCodes = scratchCodes
        self.hasScratchCodes = hasScratchCodes
        self.notes = notes
    }
}

/// Why a user is not imported: `skip` is expected (the file says so, or twostep cannot
/// represent it); `refuse` is a file that must not be trusted.
public enum ImportRefusal: Error, Equatable, CustomStringConvertible {
    case skip(String)
    case refuse(String)

    public var description: String {
        switch self {
        case .skip(let s), .refuse(let s): return s
        }
    }
}

public enum Migration {
    /// twostep needs at least this much secret (80 bits, google-authenticator's own size).
    public static let minimumSecretBytes = 10

    /// What google-authenticator's `~/.google_authenticator` means for twostep. `config`
    /// gives the limits to compare with (window, rate_limit, max_drift); `now` is the clock.
    /// A file twostep cannot take over as the module reads it is refused (`.refuse`: after
    /// the stacks switch its user would have no enrolment); OTP_DISABLED (the module asks
    /// that user for no code) is skipped.
    public static func candidate(user: String, path: String, file: GoogleAuthenticatorFile,
                                 config: Config, now: Int64) throws(ImportRefusal) -> ImportCandidate {
        if file.otpDisabled { throw .skip("OTP_DISABLED is set: the module asks this user for no code") }
        guard let mode = file.mode else {
            throw .refuse("neither TOTP_AUTH nor HOTP_COUNTER: the file only holds scratch codes")
        }
        guard file.secret.count >= minimumSecretBytes else {
            throw .refuse("the secret has \(file.secret.count * 8) bits; twostep needs at least \(minimumSecretBytes * 8)")
        }
        var notes: [String] = []
        let window = file.windowSize ?? GoogleAuthenticatorFile.defaultWindowSize
        let authenticator: ForeignAuthenticator
        switch mode {
        case .totp(let stepSize):
            guard OTPPolicy.periods.contains(stepSize) else {
                throw .refuse("STEP_SIZE \(stepSize) s is outside twostep's \(OTPPolicy.periodsText)")
            }
            // The module accepts steps -(W-1)/2 ... W/2 around now.
            let reach = window / 2
            if reach > config.window {
                notes.append("WINDOW_SIZE \(window) reaches \(reach) steps from now; twostep's window is \(config.window)")
            }
            let skew = file.timeSkew ?? 0
            // Held to max_drift, a skew beyond it and the window would put the phone's codes
            // out of reach, and a phone whose clock was set right too: no login at all.
            if skew.magnitude > UInt64(config.maxDrift / stepSize + config.window) {
                throw .refuse("TIME_SKEW \(skew) steps (\(skew.magnitude * UInt64(stepSize) / 60) min) is beyond twostep's " +
                              "reach (max_drift \(config.maxDrift) s, window \(config.window)): set the phone's clock right " +
                              "(or raise max_drift) and import again")
            }
            // A used step no code could have had (beyond now, the skew and the file's
            // window, and a step for the time since): kept, it would refuse every code
            // until then.
            let nowStep = now / Int64(stepSize)
            let reachable = nowStep + skew + Int64(reach) + 1
            let steps = file.usedSteps ?? []
            let beyond = steps.filter { $0 > reachable }
            if !beyond.isEmpty {
                notes.append("DISALLOW_REUSE steps beyond any code's reach, ignored: " +
                             beyond.sorted().prefix(5).map(String.init).joined(separator: " ") + (beyond.count > 5 ? " ..." : ""))
            }
            let used = steps.filter { $0 <= reachable }.max()
            authenticator = ForeignAuthenticator(kind: .totp(OTPParameters(algorithm: .sha1, digits: 6, period: stepSize)),
                                                 secret: file.secret, driftSteps: file.timeSkew ?? 0,
                                                 lastUsedStep: used, origin: "google-authenticator")
        case .hotp(let next):
            authenticator = ForeignAuthenticator(kind: .hotp(algorithm: .sha1, digits: 6, nextCounter: next),
                                                 secret: file.secret, origin: "google-authenticator")
            if window - 1 > config.hotpWindow {
                notes.append("WINDOW_SIZE \(window) looked \(window - 1) codes ahead; twostep's hotp_window is \(config.hotpWindow)")
            }
        }
        if let limit = file.rateLimit, isStricter(limit, than: config) {
            notes.append("RATE_LIMIT \(limit.attempts) logins per \(limit.seconds) s is stricter than twostep's rate_limit " +
                         "\(config.rateLimitFailures)/\(config.rateLimitSeconds) (failures); twostep's applies")
        }
        if !file.unknownOptions.isEmpty {
            notes.append("options twostep does not know, ignored: \(file.unknownOptions.joined(separator: ", "))")
        }
        return ImportCandidate(user: user, source: path, authenticators: [authenticator],
                               scratchCodes: file.scratchCodes, notes: notes)
    }

    /// Fewer attempts per second than ours allows failures per second.
    static func isStricter(_ limit: (attempts: Int, seconds: Int), than config: Config) -> Bool {
        Int64(limit.attempts) * Int64(config.rateLimitSeconds) < Int64(config.rateLimitFailures) * Int64(limit.seconds)
    }

    /// The users of a pam_oath usersfile: each with every line naming them as one
    /// authenticator, or the reasons why not. A user with any line twostep cannot take
    /// (a PIN, 7 digits, a short secret, a line that does not parse) is not imported at all,
    /// so nobody is left with only some of their tokens. `localTime` turns the file's
    /// timestamps (local time) into Unix time; `now` is the clock.
    public static func candidates(usersfile path: String, file: OathUsersFile,
                                  localTime: (OathUsersFile.Timestamp) -> Int64?, now: Int64)
        -> [(user: String, result: Result<ImportCandidate, ImportRefusal>)] {
        var order: [String] = []
        var lines: [String: [OathUsersFile.Entry]] = [:]
        var reasons: [String: [String]] = [:]
        for entry in file.entries {
            if lines[entry.user] == nil && reasons[entry.user] == nil { order.append(entry.user) }
            lines[entry.user, default: []].append(entry)
        }
        for problem in file.problems {
            guard let user = problem.user else { continue }
            if lines[user] == nil && reasons[user] == nil { order.append(user) }
            reasons[user, default: []].append("line \(problem.line): \(problem.reason)")
        }
        var out: [(user: String, result: Result<ImportCandidate, ImportRefusal>)] = []
        for user in order {
            var why = reasons[user] ?? []
            var authenticators: [ForeignAuthenticator] = []
            for entry in lines[user] ?? [] {
                do {
                    authenticators.append(try authenticator(entry, localTime: localTime, now: now))
                } catch {
                    why.append("line \(entry.line): \(error)")
                }
            }
            if !isValidUserName(user) { why.insert("invalid user name", at: 0) }
            if why.isEmpty {
                out.append((user, .success(ImportCandidate(user: user, source: path, authenticators: authenticators,
                                                                  hasScratchCodes: false))))
            } else {
                out.append((user, .failure(.refuse(why.sorted(by: lineOrder).joined(separator: "; ")))))
            }
        }
        return out
    }

    static func lineOrder(_ a: String, _ b: String) -> Bool {
        func n(_ s: String) -> Int { Int(s.dropFirst(5).prefix(while: { $0.isNumber })) ?? 0 }
        return n(a) < n(b)
    }

    /// One usersfile line as an authenticator.
    static func authenticator(_ entry: OathUsersFile.Entry, localTime: (OathUsersFile.Timestamp) -> Int64?,
                              now: Int64) throws(ImportRefusal) -> ForeignAuthenticator {
        if entry.pin == .password { throw .refuse("has a PIN (twostep never stores passwords)") }
        guard OTPPolicy.digits.contains(entry.kind.digits) else {
            throw .refuse("\(entry.kind.digits)-digit codes (twostep takes \(OTPPolicy.digitsText))")
        }
        guard entry.secret.count >= minimumSecretBytes else {
            throw .refuse("the secret has \(entry.secret.count * 8) bits; twostep needs at least \(minimumSecretBytes * 8)")
        }
        // pam_oath without digits= accepts 6-, 7- and 8-digit codes whatever the line's type
        // says, and keeps the one it accepted: a last code of another length means the
        // token may make codes of that length, which twostep would refuse.
        if let last = entry.lastOTP, last.count != entry.kind.digits {
            throw .refuse("pam_oath's last accepted code has \(last.count) digits, the line's type \(entry.kind.digits): " +
                          "write the token's digit count in the type (such as HOTP/T30/\(last.count)) and import again")
        }
        let origin = "pam_oath line \(entry.line)"
        switch entry.kind {
        case .hotp(let digits):
            // liboath stores the counter of the code it accepted last, beside that code;
            // without a last code, the counter is the first one to accept.
            var next = entry.counter ?? 0
            if let last = entry.lastOTP, let counter = entry.counter,
               let code = try? entry.secret.withBytes({ try OTP.hotp(secret: $0, counter: counter, digits: digits, algorithm: .sha1) }),
               Array(code.utf8) == last {
                guard counter < UInt64.max - 1 else { throw .refuse("the counter is at its end") }
                next = counter + 1
            }
            return ForeignAuthenticator(kind: .hotp(algorithm: .sha1, digits: digits, nextCounter: next),
                                        secret: entry.secret, origin: origin)
        case .totp(let period, let digits):
            let parameters = OTPParameters(algorithm: .sha1, digits: digits, period: period)
            var used: Int64? = nil
            if let last = entry.lastOTP {
                // The step of the last accepted code: searched near the time it was accepted
                // (or near now), newest first. It and every older step stay used.
                let around = entry.time.flatMap(localTime) ?? now
                used = lastUsedStep(code: last, secret: entry.secret, parameters: parameters, around: around)
                if used == nil, let t = entry.time.flatMap(localTime) {
                    // Not near that time (a hand-edited line): the steps before it are used,
                    // up to now's (a time ahead of the clock would refuse every code until
                    // then; the last code was given before now).
                    used = min(parameters.step(at: t), parameters.step(at: now))
                }
            }
            return ForeignAuthenticator(kind: .totp(parameters), secret: entry.secret, lastUsedStep: used, origin: origin)
        }
    }

    /// How far either side of the last login's time the step of its code is looked for.
    static let searchSteps: Int64 = 64

    static func lastUsedStep(code: [UInt8], secret: SecretBytes, parameters: OTPParameters, around: Int64) -> Int64? {
        guard code.count == parameters.digits else { return nil }
        return try? secret.withBytes { key in
            try OTP.matchTOTP(code: code, secret: key, at: around, parameters: parameters, window: Int(searchSteps))
        }
    }
}
