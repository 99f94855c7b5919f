import TwoStepCore
import TwoStepCrypto

/// What is sealed for one user: the OTP secret and parameters, and the keyed hashes of
/// the backup codes still unused. Serialised as `key=value` lines inside the envelope.
public final class UserRecord {
    public let secret: SecretBytes
    public var parameters: OTPParameters
    public var created: Int64
    /// Key for the backup-code hashes; new with every set.
    public var backupKey: SecretBytes
    public var backupHashes: [[UInt8]]

    public init(secret: [UInt8], parameters: OTPParameters, created: Int64,
                backupKey: [UInt8], backupHashes: [[UInt8]]) {
        self.secret = SecretBytes(secret)
        self.parameters = parameters
        self.created = created
        self.backupKey = SecretBytes(backupKey)
        self.backupHashes = backupHashes
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

    public func serialized() -> [UInt8] {
        var lines = "v=1\n"
        lines += "secret=" + secret.withBytes { Base32.encode($0) } + "\n"
        lines += "algorithm=\(parameters.algorithm.rawValue)\n"
        lines += "digits=\(parameters.digits)\n"
        lines += "period=\(parameters.period)\n"
        lines += "created=\(created)\n"
        lines += "backup_key=" + backupKey.withBytes { hex($0) } + "\n"
        lines += "backup=" + backupHashes.map { hex($0) }.joined(separator: ",") + "\n"
        return Array(lines.utf8)
    }

    public static func parse(_ bytes: [UInt8], path: String) throws -> UserRecord {
        func bad(_ why: String) -> StoreError { .damaged(path: path, reason: why) }
        var fields: [Substring: Substring] = [:]
        let text = String(decoding: bytes, as: UTF8.self)
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { throw bad("malformed line") }
            fields[line[..<eq]] = line[line.index(after: eq)...]
        }
        guard fields["v"] == "1" else { throw bad("unknown record format") }
        guard let s = fields["secret"], let secret = try? Base32.decode(String(s)), secret.count >= 10 else {
            throw bad("bad secret")
        }
        guard let a = fields["algorithm"], let alg = HashAlgorithm(name: String(a)),
              let d = fields["digits"], let digits = Int(d), digits == 6 || digits == 8,
              let p = fields["period"], let period = Int(p), period > 0,
              let c = fields["created"], let created = Int64(c),
              let bk = fields["backup_key"], let backupKey = unhex(bk),
              let b = fields["backup"] else {
            throw bad("missing or bad fields")
        }
        var hashes: [[UInt8]] = []
        for h in b.split(separator: ",") {
            guard let bytes = unhex(h), bytes.count == 32 else { throw bad("bad backup code hash") }
            hashes.append(bytes)
        }
        return UserRecord(secret: secret, parameters: OTPParameters(algorithm: alg, digits: digits, period: period),
                          created: created, backupKey: backupKey, backupHashes: hashes)
    }
}

/// What changes at every login: the last accepted time step (replay protection), recent
/// failures (the 2FA limiter) and the end of a lockout. Holds nothing secret.
public struct UserState: Equatable {
    public var lastStep: Int64 = -1
    public var failures: [Int64] = []
    public var lockedUntil: Int64 = 0
    /// The generation of the newest record written for this user: an older record (a
    /// restored copy that would bring spent backup codes back) is refused. 0 = none yet.
    public var recordGeneration: UInt64 = 0

    public init(lastStep: Int64 = -1, failures: [Int64] = [], lockedUntil: Int64 = 0, recordGeneration: UInt64 = 0) {
        self.lastStep = lastStep
        self.failures = failures
        self.lockedUntil = lockedUntil
        self.recordGeneration = recordGeneration
    }

    public func serialized() -> [UInt8] {
        var s = "v=1\nlast_step=\(lastStep)\nlocked_until=\(lockedUntil)\n"
        s += "failures=" + failures.map(String.init).joined(separator: ",") + "\n"
        if recordGeneration > 0 { s += "record_generation=\(recordGeneration)\n" }
        return Array(s.utf8)
    }

    public static func parse(_ bytes: [UInt8], path: String) throws -> UserState {
        func bad(_ why: String) -> StoreError { .damaged(path: path, reason: why) }
        var st = UserState()
        var sawVersion = false
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { throw bad("malformed line") }
            let k = line[..<eq], v = line[line.index(after: eq)...]
            switch k {
            case "v": guard v == "1" else { throw bad("unknown state format") }; sawVersion = true
            case "last_step": guard let n = Int64(v) else { throw bad("bad last_step") }; st.lastStep = n
            case "locked_until": guard let n = Int64(v) else { throw bad("bad locked_until") }; st.lockedUntil = n
            case "record_generation":
                guard let n = UInt64(v) else { throw bad("bad record_generation") }
                st.recordGeneration = n
            case "failures":
                st.failures = try v.split(separator: ",").map {
                    guard let n = Int64($0) else { throw bad("bad failures") }
                    return n
                }
                guard st.failures.count <= 10_000 else { throw bad("too many failures") }
            default: throw bad("unknown field \(k)")
            }
        }
        guard sawVersion else { throw bad("missing version") }
        return st
    }
}
