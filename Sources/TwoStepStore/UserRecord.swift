// SPDX-License-Identifier: Apache-2.0
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
    /// Mail address, mailed and support codes, bypass, invitation (RecoveryFields.swift).
    public var recovery = RecoveryFields()

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

    /// The plaintext inside the envelope, built as bytes: the secret never passes through
    /// a String (the caller wipes the result).
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        func line(_ key: String, _ value: String) { out += Array((key + "=" + value + "\n").utf8) }
        line("v", "1")
        out += Array("secret=".utf8)
        secret.withBytes { plain in
            var text = Base32.encodeToBytes(plain)
            out += text
            Crypto.wipe(&text)
        }
        out.append(UInt8(ascii: "\n"))
        line("algorithm", parameters.algorithm.rawValue)
        line("digits", String(parameters.digits))
        line("period", String(parameters.period))
        line("created", String(created))
        line("backup_key", backupKey.withBytes { hex($0) })
        line("backup", backupHashes.map { hex($0) }.joined(separator: ","))
        out += recovery.serialized()
        return out
    }

    /// Reads the plaintext of a record (the caller wipes `bytes`). The secret goes from
    /// these bytes to SecretBytes without a String; the other fields are not secret.
    public static func parse(_ bytes: [UInt8], path: String) throws -> UserRecord {
        func bad(_ why: String) -> StoreError { .damaged(path: path, reason: why) }
        var fields: [String: String] = [:]
        var secret: [UInt8]? = nil
        var invited: [UInt8]? = nil
        defer {
            if secret != nil { Crypto.wipe(&secret!) }
            if invited != nil { Crypto.wipe(&invited!) }
        }
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            guard let eq = line.firstIndex(of: UInt8(ascii: "=")) else { throw bad("malformed line") }
            let key = String(decoding: line[line.startIndex..<eq], as: UTF8.self)
            let value = line[line.index(after: eq)...]
            if key == "secret" {
                guard secret == nil, let decoded = Base32.decodeStrict(value) else { throw bad("bad secret") }
                secret = decoded
            } else if key == RecoveryFields.secretKey {
                guard invited == nil, let decoded = Base32.decodeStrict(value) else { throw bad("bad invited secret") }
                invited = decoded
            } else {
                fields[key] = String(decoding: value, as: UTF8.self)
            }
        }
        guard fields["v"] == "1" else { throw bad("unknown record format") }
        guard (secret?.count ?? 0) >= 10 else { throw bad("bad secret") }
        guard let a = fields["algorithm"], let alg = HashAlgorithm(name: a),
              let d = fields["digits"], let digits = Int(d), OTPPolicy.digits.contains(digits),
              let p = fields["period"], let period = Int(p), OTPPolicy.periods.contains(period),
              let c = fields["created"], let created = Int64(c),
              let bk = fields["backup_key"], let backupKey = unhex(Substring(bk)),
              let b = fields["backup"] else {
            throw bad("missing or bad fields")
        }
        var hashes: [[UInt8]] = []
        for h in b.split(separator: ",") {
            guard let bytes = unhex(h), bytes.count == 32 else { throw bad("bad backup code hash") }
            hashes.append(bytes)
        }
        // `secret!` is borrowed, not copied, so the wipe above reaches the only buffer.
        let record = UserRecord(secret: secret!, parameters: OTPParameters(algorithm: alg, digits: digits, period: period),
                                created: created, backupKey: backupKey, backupHashes: hashes)
        record.recovery = try RecoveryFields.parse(fields, invited: invited, bad: bad)
        return record
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
