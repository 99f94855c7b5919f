// SPDX-License-Identifier: Apache-2.0
import TwoStepCore
import TwoStepCrypto

/// What is sealed for one user: 1 to `Authenticator.maxCount` named authenticators, and
/// the keyed hashes of the backup codes still unused. Serialised as `key=value` lines inside
/// the envelope (docs/ARCHITECTURE.md, "Sealed record").
///
/// Plaintext format `v=2`: `created`, `backup_key`, `backup` once each, one `authenticator`
/// line per authenticator, and any other `key=value` lines (other features' optional
/// fields) kept in `extensions`. Format `v=1` (one TOTP secret in `secret`, `algorithm`,
/// `digits`, `period`) still reads, as one TOTP authenticator named `default`.
public final class UserRecord {
    public private(set) var authenticators: [Authenticator]
    public var created: Int64
    /// Key for the backup-code hashes; new with every set.
    public var backupKey: SecretBytes
    public var backupHashes: [[UInt8]]
    /// Lines this version does not interpret, in order, written back as they were read:
    /// the extension point for other optional fields (see docs/ARCHITECTURE.md). Keys are
    /// `[a-z][a-z0-9_]*`, values one line of UTF-8; no secret belongs here.
    public var extensions: [(key: String, value: String)] = []
    /// Mail address, mailed and support codes, bypass, invitation (RecoveryFields.swift).
    public var recovery = RecoveryFields()

    public static let formatVersion = 2
    /// Keys this version reads itself; everything else in a v2 record is an extension.
    static let ownKeys: Set<String> = ["v", "created", "backup_key", "backup", "authenticator"]

    public init(authenticators: [Authenticator], created: Int64, backupKey: [UInt8], backupHashes: [[UInt8]]) {
        precondition(!authenticators.isEmpty && authenticators.count <= Authenticator.maxCount)
        self.authenticators = authenticators
        self.created = created
        self.backupKey = SecretBytes(backupKey)
        self.backupHashes = backupHashes
    }

    /// One TOTP authenticator named `default` (a first enrolment, `admin import` without `--name`).
    public convenience init(secret: [UInt8], parameters: OTPParameters, created: Int64,
                            backupKey: [UInt8], backupHashes: [[UInt8]]) {
        self.init(authenticators: [Authenticator(secret: secret, parameters: parameters, added: created)],
                  created: created, backupKey: backupKey, backupHashes: backupHashes)
    }

    /// The authenticator that `twostep qr` shows and whose parameters `status` reports:
    /// `default` if there is one, else the first added.
    public var primary: Authenticator {
        authenticators.first { $0.name == Authenticator.defaultName } ?? authenticators[0]
    }
    /// The primary authenticator's secret and parameters (what a one-secret record held).
    public var secret: SecretBytes { primary.secret }
    public var parameters: OTPParameters { primary.parameters }

    public func authenticator(named name: String) -> Authenticator? {
        authenticators.first { $0.name == name }
    }

    /// Adds `a`, or with `replace` puts it in place of the one with its name.
    public func add(_ a: Authenticator, replace: Bool = false) throws {
        if let i = authenticators.firstIndex(where: { $0.name == a.name }) {
            guard replace else { throw RecordChangeError.exists(a.name) }
            authenticators[i] = a
            return
        }
        guard authenticators.count < Authenticator.maxCount else { throw RecordChangeError.full }
        authenticators.append(a)
    }

    /// Removes the named authenticator; the last one cannot go (that is `disable`).
    public func remove(named name: String) throws {
        guard let i = authenticators.firstIndex(where: { $0.name == name }) else { throw RecordChangeError.missing(name) }
        guard authenticators.count > 1 else { throw RecordChangeError.last(name) }
        authenticators.remove(at: i)
    }

    /// Issues a fresh set of backup codes: the old set stops working. Returns the codes,
    /// which exist in clear only in the caller's hands.
    public func issueBackupCodes() throws -> [String] {
        let codes = try BackupCodes.generate()
        let key = try Crypto.randomBytes(32)
        backupHashes = try codes.map { code in
            guard let n = BackupCodes.normalize(code) else { throw StoreError.badKey("generated an invalid backup code") }
            return try BackupCodes.hash(n, key: key)
        }
        backupKey = SecretBytes(key)
        return codes
    }

    /// The plaintext inside the envelope, built as bytes: a secret never passes through a
    /// String (the caller wipes the result). Always the current format (`v=2`).
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        func line(_ key: String, _ value: String) { out += Array((key + "=" + value + "\n").utf8) }
        line("v", String(Self.formatVersion))
        line("created", String(created))
        line("backup_key", backupKey.withBytes { hex($0) })
        line("backup", backupHashes.map { hex($0) }.joined(separator: ","))
        for a in authenticators {
            out += Array("authenticator=".utf8)
            var value = a.serialized()
            out += value
            Crypto.wipe(&value)
            out.append(UInt8(ascii: "\n"))
        }
        for (key, value) in extensions { line(key, value) }
        out += recovery.serialized()
        return out
    }

    /// Reads the plaintext of a record (the caller wipes `bytes`). Secrets go from these
    /// bytes to SecretBytes without a String; the other fields are not secret. Strict about
    /// what this version reads (each once, valid, authenticators with distinct names, at
    /// most `Authenticator.maxCount`); other well-formed keys become `extensions`.
    public static func parse(_ bytes: [UInt8], path: String) throws -> UserRecord {
        func bad(_ why: String) -> StoreError { .damaged(path: path, reason: why) }
        var fields: [String: String] = [:]
        var secret: [UInt8]? = nil
        var invited: [UInt8]? = nil
        defer {
            if secret != nil { Crypto.wipe(&secret!) }
            if invited != nil { Crypto.wipe(&invited!) }
        }
        var authenticators: [Authenticator] = []
        var extensions: [(key: String, value: String)] = []
        var recoveryLines: [String: String] = [:]
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            guard let eq = line.firstIndex(of: UInt8(ascii: "=")) else { throw bad("malformed line") }
            let key = String(decoding: line[line.startIndex..<eq], as: UTF8.self)
            let value = line[line.index(after: eq)...]
            switch key {
            case "secret":  // v1 only
                guard secret == nil, let decoded = Base32.decodeStrict(value) else { throw bad("bad secret") }
                secret = decoded
            case RecoveryFields.secretKey:
                guard invited == nil, let decoded = Base32.decodeStrict(value) else { throw bad("bad invited secret") }
                invited = decoded
            case "authenticator":  // v2 only
                guard let a = Authenticator.parse(value) else { throw bad("bad authenticator") }
                guard !authenticators.contains(where: { $0.name == a.name }) else { throw bad("authenticator \(a.name) twice") }
                guard authenticators.count < Authenticator.maxCount else { throw bad("more than \(Authenticator.maxCount) authenticators") }
                authenticators.append(a)
            case _ where RecoveryFields.keys.contains(key):
                guard recoveryLines[key] == nil else { throw bad("\(key) twice") }
                recoveryLines[key] = String(decoding: value, as: UTF8.self)
            default:
                guard isExtensionKey(key) else { throw bad("malformed key") }
                let text = String(decoding: value, as: UTF8.self)
                if ownKeys.contains(key) || fields["v"] == "1" || fields["v"] == nil && v1Keys.contains(key) {
                    guard fields[key] == nil else { throw bad("\(key) twice") }
                    fields[key] = text
                } else {
                    extensions.append((key, text))
                }
            }
        }
        guard let c = fields["created"], let created = Int64(c),
              let bk = fields["backup_key"], let backupKey = unhex(Substring(bk)),
              let b = fields["backup"] else {
            throw bad("missing or bad fields")
        }
        var hashes: [[UInt8]] = []
        for h in b.split(separator: ",") {
            guard let bytes = unhex(h), bytes.count == 32 else { throw bad("bad backup code hash") }
            hashes.append(bytes)
        }
        switch fields["v"] {
        case "1":
            guard authenticators.isEmpty else { throw bad("authenticator in a v1 record") }
            guard (secret?.count ?? 0) >= 10 else { throw bad("bad secret") }
            guard let a = fields["algorithm"], let alg = HashAlgorithm(name: a),
                  let d = fields["digits"], let digits = Int(d), OTPPolicy.digits.contains(digits),
                  let p = fields["period"], let period = Int(p), OTPPolicy.periods.contains(period) else {
                throw bad("missing or bad fields")
            }
            // `secret!` is borrowed, not copied, so the wipe above reaches the only buffer.
            let record = UserRecord(secret: secret!, parameters: OTPParameters(algorithm: alg, digits: digits, period: period),
                                    created: created, backupKey: backupKey, backupHashes: hashes)
            record.recovery = try RecoveryFields.parse(recoveryLines, invited: invited, bad: bad)
            return record
        case "2":
            guard secret == nil else { throw bad("secret line in a v2 record") }
            guard !authenticators.isEmpty else { throw bad("no authenticator") }
            let record = UserRecord(authenticators: authenticators, created: created, backupKey: backupKey, backupHashes: hashes)
            record.extensions = extensions
            record.recovery = try RecoveryFields.parse(recoveryLines, invited: invited, bad: bad)
            return record
        default:
            throw bad("unknown record format")
        }
    }

    /// v1's own keys besides `ownKeys` (read when `v=1` comes first or later).
    static let v1Keys: Set<String> = ["algorithm", "digits", "period"]

    /// `[a-z][a-z0-9_]*`, at most 64 bytes.
    static func isExtensionKey(_ key: String) -> Bool {
        let b = Array(key.utf8)
        guard let first = b.first, first >= UInt8(ascii: "a"), first <= UInt8(ascii: "z"), b.count <= 64 else { return false }
        return b.allSatisfy { ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "_") }
    }
}

/// Why a change to a record's authenticators was refused.
public enum RecordChangeError: Error, Equatable, CustomStringConvertible {
    case exists(String), missing(String), last(String), full

    public var description: String {
        switch self {
        case .exists(let n): return "an authenticator named \(n) already exists"
        case .missing(let n): return "no authenticator named \(n)"
        case .last(let n): return "\(n) is the only authenticator; `twostep disable` turns two-step login off"
        case .full: return "at most \(Authenticator.maxCount) authenticators per user"
        }
    }
}

/// What changes at every login of one authenticator. Nothing secret.
public struct AuthenticatorState: Equatable, Sendable {
    /// TOTP: the last accepted time step (a code at or before it is a replay). -1 = none.
    public var lastStep: Int64 = -1
    /// HOTP: the next counter expected (every counter below it is spent). `lostCounter`
    /// when it could not be recovered (a damaged state repaired by `admin unlock`): no code
    /// passes until `admin resync` finds the token again.
    public var counter: UInt64 = 0
    public static let lostCounter = UInt64.max
    /// TOTP: the authenticator's clock offset in steps, learned at logins (one step at
    /// most per login) or set by `admin resync`; never beyond `max_drift`.
    public var drift: Int64 = 0
    /// Unix time of the last accepted code. 0 = never.
    public var lastUsed: Int64 = 0

    public init(lastStep: Int64 = -1, counter: UInt64 = 0, drift: Int64 = 0, lastUsed: Int64 = 0) {
        self.lastStep = lastStep; self.counter = counter; self.drift = drift; self.lastUsed = lastUsed
    }

    /// This state for an authenticator that gives the same codes as one whose state was
    /// `old` (a secret imported again): never an earlier replay mark or a lower counter, so
    /// what `old` spent stays spent (a lost counter stays lost).
    public func carrying(_ old: AuthenticatorState) -> AuthenticatorState {
        var s = self
        s.lastStep = max(lastStep, old.lastStep)
        s.counter = max(counter, old.counter)
        return s
    }
}

/// What changes at every login: per authenticator (keyed by name) the replay mark, HOTP
/// counter, learned drift and last use; per user the recent failures (the 2FA limiter) and
/// the end of a lockout. Holds nothing secret.
///
/// Serialised (`v=2`) as `key=value` lines, one `device=NAME LAST_STEP COUNTER DRIFT
/// LAST_USED` line per authenticator (at most `Authenticator.maxCount`). Bounded: about
/// 100 bytes of fixed lines, at most 16 × 122 bytes of device lines, and 21 bytes per
/// recent failure (the limiter keeps fewer than `rate_limit`'s count, at most 1000):
/// under 24 KiB in the worst case, about 300 bytes for one authenticator. Format `v=1`
/// (`last_step`) still reads, as the state of the authenticator `default`.
public struct UserState: Equatable {
    public var devices: [String: AuthenticatorState] = [:]
    public var failures: [Int64] = []
    public var lockedUntil: Int64 = 0
    /// Lockouts in a row with no accepted code in between: each lasts twice the one before
    /// (RateLimiter), so guessing goes no faster for waiting each one out. Written only
    /// when above 0 (a state of an earlier version reads, and is read by it, unchanged).
    public var lockouts = 0
    /// The generation of the newest record written for this user: an older record (a
    /// restored copy that would bring spent backup codes back) is refused. 0 = none yet.
    public var recordGeneration: UInt64 = 0
    /// What a removed user's state keeps (`removeUser`): nothing but the generation after
    /// `generation`, the newest one their records had.
    public static func tombstone(after generation: UInt64) -> UserState {
        var s = UserState()
        s.recordGeneration = generation < UInt64.max ? generation + 1 : generation
        return s
    }

    /// The most recent failures a state holds (`rate_limit`'s count is at most 1000).
    public static let maxFailures = 1_000
    /// The most lockouts in a row a state holds.
    public static let maxLockouts = 1_000

    /// `lastStep` sets the replay mark of the authenticator `default` (a one-secret enrolment).
    public init(lastStep: Int64 = -1, failures: [Int64] = [], lockedUntil: Int64 = 0, recordGeneration: UInt64 = 0) {
        if lastStep >= 0 { devices[Authenticator.defaultName] = AuthenticatorState(lastStep: lastStep) }
        self.failures = failures
        self.lockedUntil = lockedUntil
        self.recordGeneration = recordGeneration
    }

    /// The replay mark of the authenticator `default` (what a one-secret state held).
    public var lastStep: Int64 {
        get { devices[Authenticator.defaultName]?.lastStep ?? -1 }
        set { devices[Authenticator.defaultName, default: AuthenticatorState()].lastStep = newValue }
    }

    /// The state of one authenticator (a fresh one if it never logged in).
    public func device(_ name: String) -> AuthenticatorState { devices[name] ?? AuthenticatorState() }

    /// The newest `lastUsed` of any authenticator (0 = never).
    public var lastUsed: Int64 { devices.values.map(\.lastUsed).max() ?? 0 }

    public func serialized() -> [UInt8] {
        var s = "v=2\nlocked_until=\(lockedUntil)\n"
        s += "failures=" + failures.map(String.init).joined(separator: ",") + "\n"
        if recordGeneration > 0 { s += "record_generation=\(recordGeneration)\n" }
        if lockouts > 0 { s += "lockouts=\(lockouts)\n" }
        for (name, d) in devices.sorted(by: { $0.key < $1.key }) {
            s += "device=\(name) \(d.lastStep) \(d.counter) \(d.drift) \(d.lastUsed)\n"
        }
        return Array(s.utf8)
    }

    /// Reads a state from its bytes, without making Strings of it (a login reads it twice):
    /// lines `key=value`, empty lines skipped, each key once except `device`.
    public static func parse(_ bytes: [UInt8], path: String) throws -> UserState {
        func bad(_ why: String) -> StoreError { .damaged(path: path, reason: why) }
        func text(_ b: ArraySlice<UInt8>) -> String { String(decoding: b, as: UTF8.self) }
        func equal(_ b: ArraySlice<UInt8>, _ s: StaticString) -> Bool {
            s.withUTF8Buffer { b.elementsEqual($0) }
        }
        var st = UserState()
        var version: UInt8? = nil   // the byte after `v=`: "1" or "2"
        var seen: [ArraySlice<UInt8>] = []
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            guard let eq = line.firstIndex(of: UInt8(ascii: "=")) else { throw bad("malformed line") }
            let k = line[line.startIndex..<eq], v = line[line.index(after: eq)...]
            if equal(k, "device") {
                guard version == UInt8(ascii: "2") else { throw bad("device line in a v1 state") }
                let f = v.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
                guard f.count == 5, Authenticator.isValidName(f[0]), case let name = text(f[0]), st.devices[name] == nil,
                      let step = decimalInteger(f[1], as: Int64.self), let counter = decimalInteger(f[2], as: UInt64.self),
                      let drift = decimalInteger(f[3], as: Int64.self), let used = decimalInteger(f[4], as: Int64.self) else {
                    throw bad("bad device line")
                }
                guard st.devices.count < Authenticator.maxCount else { throw bad("too many devices") }
                st.devices[name] = AuthenticatorState(lastStep: step, counter: counter, drift: drift, lastUsed: used)
                continue
            }
            guard !seen.contains(where: { $0.elementsEqual(k) }) else { throw bad("\(text(k)) twice") }
            seen.append(k)
            if equal(k, "v") {
                guard v.count == 1, let c = v.first, c == UInt8(ascii: "1") || c == UInt8(ascii: "2") else {
                    throw bad("unknown state format")
                }
                version = c
            } else if equal(k, "last_step") {
                guard version == UInt8(ascii: "1"), let n = decimalInteger(v, as: Int64.self) else { throw bad("bad last_step") }
                st.lastStep = n
            } else if equal(k, "locked_until") {
                guard let n = decimalInteger(v, as: Int64.self) else { throw bad("bad locked_until") }
                st.lockedUntil = n
            } else if equal(k, "lockouts") {
                guard let n = decimalInteger(v, as: Int.self), (0...maxLockouts).contains(n) else { throw bad("bad lockouts") }
                st.lockouts = n
            } else if equal(k, "record_generation") {
                guard let n = decimalInteger(v, as: UInt64.self) else { throw bad("bad record_generation") }
                st.recordGeneration = n
            } else if equal(k, "failures") {
                st.failures = try v.split(separator: UInt8(ascii: ",")).map {
                    guard let n = decimalInteger($0, as: Int64.self) else { throw bad("bad failures") }
                    return n
                }
                guard st.failures.count <= maxFailures else { throw bad("too many failures") }
            } else {
                throw bad("unknown field \(text(k))")
            }
        }
        guard version != nil else { throw bad("missing version") }
        return st
    }
}
