// SPDX-License-Identifier: Apache-2.0
import Glibc
import TwoStepCrypto
import TwoStepSystem
import TwoStepCore

/// /etc/twostep/twostep.conf: `key = value` lines, `#` comments. Unknown keys and bad
/// values are errors that name the line, so a typo never silently weakens policy.
public struct Config: Equatable {
    public enum EnrollMode: String, Equatable { case off, prompt }
    /// Where records and state live: this host's `state_dir`, or a PostgreSQL database
    /// shared by every host (docs/ARCHITECTURE.md, "Many hosts").
    public enum StoreKind: String, Equatable { case files, postgresql }
    public enum Requirement: Equatable { case all, groups([String]) }

    public var path: String
    public var stateDir = "/var/lib/twostep"
    public var keyDir = "/etc/twostep/keys"
    public var auditLog: String? = nil
    public var window = 1
    public var digits = 6
    public var period = 30
    public var algorithm: HashAlgorithm = .sha1
    public var issuer: String = Config.hostName()
    public var rateLimitFailures = 5
    public var rateLimitSeconds = 300
    public var lockout = 300
    /// The longest a lockout grows to: each lockout that follows another with no accepted
    /// code in between lasts twice the one before, from `lockout` up to this.
    public var lockoutMax = 86_400
    /// `lockout_max` was shorter than `lockout` and is taken as `lockout` (doctor warns).
    public var lockoutMaxRaised = false
    public var socket = "/run/twostep/helper.sock"
    /// `prompt`: a user who must use 2FA but has none is enrolled inside the login.
    public var enroll: EnrollMode = .off
    /// Who must use 2FA: nil (unset: the module's nullok decides), everyone, or members of groups.
    public var require: Requirement? = nil
    /// The PAM service that confirms a user's password before a self-service change.
    public var passwordService = "twostep"
    /// Self-service connections served at once by `twostep-helper serve`.
    public var maxConnections = 16
    public var store: StoreKind = .files
    /// libpq connection string or URI (`store = postgresql`); never holds the password.
    public var database: String? = nil
    /// Root-only file holding the database password alone on one line.
    public var databasePasswordFile: String? = nil

    /// What a new enrolment gets.
    public var otpParameters: OTPParameters { OTPParameters(algorithm: algorithm, digits: digits, period: period) }
    /// The system's mail command (argv, no shell); the message goes to its standard input.
    public var mailCommand = ["/usr/sbin/sendmail", "-t", "-i"]
    /// The sender of every mail twostep sends.
    public var mailFrom = "twostep@" + Config.hostName()
    /// Seconds the mail command may take before it is killed.
    public var mailTimeout = 10
    /// `email` at the prompt mails a one-time code to the user's confirmed address.
    public var emailFallback = false
    /// Seconds a mailed login code (and an address confirmation code) stays good.
    public var emailCodeTTL = 600
    /// Seconds a mailed invitation (`admin invite`, `admin rotate-secret`) waits for its first code.
    public var inviteTTL = 7 * 86400
    /// HOTP look-ahead: a code at counter c ... c + hotpWindow passes (c = next expected).
    public var hotpWindow = 10
    /// How far (seconds) a TOTP authenticator's learned or resynchronised clock offset may
    /// reach; 0 turns drift learning and TOTP resync off.
    public var maxDrift = 3600
    /// Seconds an SSH key stays trusted after a code was typed with it; nil: never trusted.
    public var trustSSHKey: Int? = nil
    /// The PAM services whose SSH_AUTH_INFO_0 may make a trusted key skip the code.
    public var trustServices = ["sshd"]

    public static let defaultPath = "/etc/twostep/twostep.conf"
    public static let knownKeys = ["state_dir", "key_dir", "audit_log", "window", "digits", "period",
                                   "algorithm", "issuer", "rate_limit", "lockout", "lockout_max", "socket",
                                   "enroll", "require", "password_service", "max_connections",
                                   "store", "database", "database_password_file",
                                   "mail_command", "mail_from", "mail_timeout",
                                   "email_fallback", "email_code_ttl", "invite_ttl",
                                   "hotp_window", "max_drift", "trust_ssh_key", "trust_services"]

    public init(path: String = Config.defaultPath) { self.path = path }

    /// Reads and parses the config. Under root the file must be root's and not writable by
    /// group or others: users cannot weaken policy.
    public static func load(path: String) throws -> Config {
        // O_NONBLOCK: a FIFO put in its place must not hang a login or the CLI in open();
        // the regular-file check below refuses it.
        let fd = Sys.retry { open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK) }
        guard fd >= 0 else { throw StoreError.io(path: path, operation: "open config", errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw StoreError.io(path: path, operation: "stat", errno: errno) }
        guard st.st_mode & S_IFMT == S_IFREG else { throw StoreError.unsafe(path: path, reason: "not a regular file") }
        if geteuid() == 0 && (st.st_uid != 0 || st.st_mode & 0o022 != 0) {
            throw StoreError.unsafe(path: path, reason: "must be owned by root and not writable by group or others")
        }
        let bytes = try Files.readAll(fd: fd, path: path, limit: Files.maxFileSize)
        return try parse(String(decoding: bytes, as: UTF8.self), path: path)
    }

    public static func parse(_ text: String, path: String) throws -> Config {
        var c = Config(path: path)
        var seen = Set<String>()
        var lineNo = 0
        // Split on the scalar: "\r\n" is one Character, so CRLF files would be one line.
        for raw in text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            lineNo += 1
            var line = Substring(raw)
            if let hash = line.firstIndex(of: "#") { line = line[..<hash] }
            let trimmed = line.trimmingSpaces
            if trimmed.isEmpty { continue }
            guard let eq = trimmed.firstIndex(of: "=") else {
                throw StoreError.config(path: path, line: lineNo, message: "expected `key = value`")
            }
            let key = String(trimmed[..<eq].trimmingSpaces)
            let value = String(trimmed[trimmed.index(after: eq)...].trimmingSpaces)
            func fail(_ m: String) -> StoreError { .config(path: path, line: lineNo, message: "\(key): \(m)") }
            guard knownKeys.contains(key) else {
                throw StoreError.config(path: path, line: lineNo, message: "unknown key \"\(key)\"")
            }
            guard !seen.contains(key) else { throw fail("given twice") }
            seen.insert(key)
            guard !value.isEmpty else { throw fail("empty value") }
            switch key {
            case "state_dir": c.stateDir = try absolutePath(value, fail)
            case "key_dir": c.keyDir = try absolutePath(value, fail)
            case "audit_log": c.auditLog = try absolutePath(value, fail)
            case "socket": c.socket = try absolutePath(value, fail)
            case "window": c.window = try integer(value, 0...10, fail)
            case "digits":
                guard let d = Int(value), OTPPolicy.digits.contains(d) else { throw fail("must be \(OTPPolicy.digitsText)") }
                c.digits = d
            case "period": c.period = try integer(value, OTPPolicy.periods, fail)
            case "algorithm":
                guard let a = HashAlgorithm(name: value) else { throw fail("must be SHA1, SHA256 or SHA512") }
                c.algorithm = a
            case "issuer":
                guard value.utf8.count <= 64, !value.contains(":") else {
                    throw fail("at most 64 bytes and no ':'")
                }
                c.issuer = value
            case "rate_limit":
                // Spaces around the slash are allowed: `5 / 5m` is what it looks like.
                let parts = value.split(separator: "/", omittingEmptySubsequences: false).map { $0.trimmingSpaces }
                guard parts.count == 2 else { throw fail("expected FAILURES/DURATION, e.g. 5/300 or 5/5m") }
                c.rateLimitFailures = try integer(String(parts[0]), 1...1000, fail)
                c.rateLimitSeconds = try duration(String(parts[1]), fail)
            case "lockout": c.lockout = try duration(value, fail)
            case "lockout_max": c.lockoutMax = try duration(value, fail)
            case "enroll":
                guard let m = EnrollMode(rawValue: value) else { throw fail("must be off or prompt") }
                c.enroll = m
            case "require":
                if value == "all" {
                    c.require = .all
                } else {
                    let groups = value.split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init)
                    guard !groups.isEmpty, groups.allSatisfy(isPlainUserName) else {
                        throw fail("expected `all` or a comma-separated list of groups")
                    }
                    guard !groups.contains("all") else { throw fail("`all` stands alone, not in a list of groups") }
                    c.require = .groups(groups)
                }
            case "password_service":
                guard isPlainUserName(value) else { throw fail("not a valid PAM service name") }
                c.passwordService = value
            case "max_connections": c.maxConnections = try integer(value, 1...1024, fail)
            case "store":
                guard let k = StoreKind(rawValue: value) else { throw fail("must be files or postgresql") }
                c.store = k
            case "database":
                guard !connectionStringHasPassword(value) else {
                    throw fail("must not hold a password: put it in database_password_file")
                }
                c.database = value
            case "database_password_file": c.databasePasswordFile = try absolutePath(value, fail)
            case "mail_command":
                let argv = value.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
                guard let first = argv.first, first.hasPrefix("/") else {
                    throw fail("expected an absolute path to a sendmail-compatible program, then its arguments")
                }
                c.mailCommand = argv
            case "mail_from":
                guard isSendableMailAddress(value) else { throw fail("not a plain mail address (user@domain)") }
                c.mailFrom = value
            case "mail_timeout": c.mailTimeout = try integer(value, 1...300, fail)
            case "email_fallback":
                guard value == "on" || value == "off" else { throw fail("must be on or off") }
                c.emailFallback = value == "on"
            case "email_code_ttl":
                c.emailCodeTTL = try duration(value, fail)
                guard c.emailCodeTTL <= 86400 else { throw fail("at most 1d: a mailed code is for now") }
            case "invite_ttl":
                c.inviteTTL = try duration(value, fail)
                guard c.inviteTTL <= 30 * 86400 else { throw fail("at most 30d") }
            case "hotp_window": c.hotpWindow = try integer(value, 0...100, fail)
            case "max_drift":
                if let zero = Int(value.hasSuffix("s") ? String(value.dropLast()) : value), zero == 0 { c.maxDrift = 0; break }
                c.maxDrift = try duration(value, fail)
                guard c.maxDrift <= 86400 else { throw fail("at most 1d") }
            case "trust_ssh_key": c.trustSSHKey = value == "off" ? nil : try duration(value, fail)
            case "trust_services":
                let services = value.split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init)
                guard !services.isEmpty, services.allSatisfy(isPlainUserName) else {
                    throw fail("expected a comma-separated list of PAM service names")
                }
                c.trustServices = services
            default: throw fail("unknown key")
            }
        }
        // Lockouts in a row double from `lockout` up to `lockout_max`. A `lockout` longer than
        // `lockout_max` (a reviewer's `lockout = 1h` beside `lockout_max = 5m`) is one of the
        // two a typo; the longer one holds, so a typo never shortens a lockout (and a file
        // that loaded before still loads), and `twostep doctor` says so.
        if c.lockout > c.lockoutMax {
            c.lockoutMaxRaised = true
            c.lockoutMax = c.lockout
        }
        if c.store == .postgresql && c.database == nil {
            throw StoreError.config(path: path, line: 0, message: "store = postgresql needs `database = URI`")
        }
        return c
    }

    /// Whether a libpq connection string (URI or `key=value` form) carries a password:
    /// `user:secret@` in a URI, or a `password` parameter in either form.
    public static func connectionStringHasPassword(_ v: String) -> Bool {
        let lower = v.lowercased()
        // "password=" anywhere once blanks are removed and %XX escapes decoded (libpq
        // decodes a URI's parameter names too: `%70assword=` is `password=`).
        // Stdlib only: twostep-verify is built without _StringProcessing (Makefile).
        let squeezed = (percentDecoded(Array(lower.utf8), malformed: .keep) ?? Array(lower.utf8))
            .filter { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }
            .map { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") ? $0 + 32 : $0 }
        let needle = Array("password=".utf8)
        if squeezed.count >= needle.count,
           (0...(squeezed.count - needle.count)).contains(where: { squeezed[$0..<$0 + needle.count].elementsEqual(needle) }) {
            return true
        }
        for scheme in ["postgresql://", "postgres://"] where lower.hasPrefix(scheme) {
            let rest = lower.dropFirst(scheme.count)
            let authority = rest.prefix { $0 != "/" && $0 != "?" }
            if let at = authority.lastIndex(of: "@"), authority[..<at].contains(":") { return true }
        }
        return false
    }

    static func absolutePath(_ v: String, _ fail: (String) -> StoreError) throws -> String {
        guard v.hasPrefix("/") else { throw fail("must be an absolute path") }
        guard !v.split(separator: "/").contains("..") else { throw fail("must not contain `..`") }
        var p = v
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        return p
    }

    static func integer(_ v: String, _ range: ClosedRange<Int>, _ fail: (String) -> StoreError) throws -> Int {
        guard let n = Int(v), range.contains(n) else {
            throw fail("must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return n
    }

    /// Seconds, or a number with s, m, h or d.
    static func duration(_ v: String, _ fail: (String) -> StoreError) throws -> Int {
        var digits = v
        var unit = 1
        switch v.last {
        case "s": unit = 1; digits.removeLast()
        case "m": unit = 60; digits.removeLast()
        case "h": unit = 3600; digits.removeLast()
        case "d": unit = 86400; digits.removeLast()
        default: break
        }
        guard let n = Int(digits), n >= 1 else { throw fail("expected a duration such as 300, 5m or 1h") }
        guard n <= 366 * 86400 / unit else { throw fail("at most 366d") }
        return n * unit
    }

    /// A duration as the config writes it (`300`, `5m`, `12h`, `7d`) in seconds, or nil.
    public static func parseDuration(_ v: String) -> Int? {
        try? duration(v, { StoreError.config(path: "", line: 0, message: $0) })
    }

    static func hostName() -> String {
        (Sys.hostName() ?? "twostep").replacingColons()
    }
}

extension StringProtocol {
    var trimmingSpaces: Substring {
        let s = Substring(self)
        guard let start = s.firstIndex(where: { $0 != " " && $0 != "\t" && $0 != "\r" }) else { return "" }
        let end = s.lastIndex(where: { $0 != " " && $0 != "\t" && $0 != "\r" }) ?? start
        return s[start...end]
    }
}

extension String {
    func replacingColons() -> String { String(self.map { $0 == ":" ? "-" : $0 }) }
}

extension Config {
    /// Whether policy makes `user` use 2FA; nil when `require` is unset (the module's
    /// `nullok` decides then).
    public func requires(_ user: String) -> Bool? {
        switch require {
        case nil: return nil
        case .all: return true
        case .groups(let groups):
            // Fail closed: when NSS cannot answer (directory down), 2FA is required.
            guard let names = groupNames(of: user) else { return true }
            return !Set(groups).isDisjoint(with: names)
        }
    }
}
