// SPDX-License-Identifier: Apache-2.0
// Typed messages at the trust boundary. Each message is a closed set of fields travelling
// as `key NUL value NUL` pairs (values are C strings: PAM items never contain NUL). An
// unknown, missing or duplicated field, or a value outside its set, is an error: the
// helper never reads a field it did not expect, and nobody reads a dictionary.

/// `key NUL value NUL` pairs, in order. Shared by every message below.
enum FieldCodec {
    static func encode(_ pairs: [(String, String)]) -> [UInt8] {
        var out: [UInt8] = []
        for (k, v) in pairs {
            out.append(contentsOf: k.utf8.filter { $0 != 0 })
            out.append(0)
            out.append(contentsOf: v.utf8.filter { $0 != 0 })
            out.append(0)
        }
        return out
    }

    /// The pairs, with keys checked against `known` (by raw value) and never repeated. A
    /// key or value that is not valid UTF-8 makes the whole payload malformed: decoding it
    /// with replacement characters would make different bytes (two user names, say) equal.
    static func decode<K: RawRepresentable>(_ bytes: [UInt8], as: K.Type) throws(FrameError) -> [(K, String)]
        where K.RawValue == String {
        var parts: [String] = []
        var start = 0
        for i in bytes.indices where bytes[i] == 0 {
            guard let part = String(validating: bytes[start..<i], as: UTF8.self) else {
                try FrameError.raise(.malformedFields)
            }
            parts.append(part)
            start = i + 1
        }
        guard start == bytes.count, parts.count % 2 == 0, parts.count / 2 <= ProtocolLimits.maxFields else {
            try FrameError.raise(.malformedFields)
        }
        var out: [(K, String)] = []
        var i = 0
        while i < parts.count {
            guard let key = K(rawValue: parts[i]) else { try FrameError.raise(.unknownField(parts[i])) }
            for (seen, _) in out where seen.rawValue == key.rawValue { try FrameError.raise(.duplicateField(parts[i])) }
            out.append((key, parts[i + 1]))
            i += 2
        }
        return out
    }

    static func flag(_ value: String, _ field: String) throws(FrameError) -> Bool {
        switch value {
        case "1": return true
        case "0": return false
        default: try FrameError.raise(.badValue(field))
        }
    }
}

/// The fields a request may carry, over both kinds of request.
public enum RequestField: String, CaseIterable, Sendable {
    case version, mode, user, service, rhost, ruser, tty, authInfo = "auth_info"
    case config, nullok, debug
    case command, json, replace
    /// forget: the key to forget (`SHA256:...`), or `all`.
    case fingerprint
    /// login: the module splits one `Password and verification code:` answer (forward_pass).
    case forwardPass = "forward_pass"
    /// enroll (`--add NAME`) and devices-remove: which authenticator.
    case name
    /// email only: the address to confirm. enroll and email: `confirm=1` finishes a pending step.
    case address, confirm
}

/// A login, as pam_twostep.so collected it from PAM (mode `pam`).
public struct LoginRequest: Equatable, Sendable {
    public var user: String
    public var service: String
    public var rhost: String
    public var ruser: String
    public var tty: String
    /// SSH_AUTH_INFO_0 from the PAM environment, when sshd exposes it.
    public var authInfo: String
    /// The module's config= (a spawned helper reads it; a running server uses its own).
    public var config: String
    public var nullok: Bool
    public var debug: Bool
    /// The module's forward_pass: it will ask for password and code in one prompt and
    /// relay only the code; the helper says how many digits the code has (codePrompt).
    public var forwardPass = false

    public static let defaultConfig = "/etc/twostep/twostep.conf"

    public init(user: String, service: String, rhost: String = "", ruser: String = "", tty: String = "",
                authInfo: String = "", config: String = LoginRequest.defaultConfig,
                nullok: Bool = false, debug: Bool = false) {
        self.user = user; self.service = service; self.rhost = rhost; self.ruser = ruser; self.tty = tty
        self.authInfo = authInfo; self.config = config; self.nullok = nullok; self.debug = debug
    }

    /// The module's way to build its request: it holds no LoginRequest value itself (a
    /// struct of another module with this many Strings is destroyed through its type
    /// metadata, which would then appear in pam_twostep.so's dynamic symbol table).
    public static func encode(user: String, service: String, rhost: String, ruser: String, tty: String,
                              authInfo: String, config: String, nullok: Bool, debug: Bool,
                              forwardPass: Bool = false) -> [UInt8] {
        var r = LoginRequest(user: user, service: service, rhost: rhost, ruser: ruser, tty: tty, authInfo: authInfo,
                             config: config, nullok: nullok, debug: debug)
        r.forwardPass = forwardPass
        return r.encoded()
    }

    /// `user` and `service` always; empty optional items are left out, as PAM had none.
    /// (A login without a service name is refused by the helper, not dropped here, so
    /// what the helper decodes is what the module had.)
    public func encoded() -> [UInt8] {
        var pairs: [(String, String)] = [
            (RequestField.version.rawValue, String(ProtocolLimits.version)),
            (RequestField.mode.rawValue, RequestMode.login.rawValue),
            (RequestField.user.rawValue, user),
            (RequestField.service.rawValue, service),
        ]
        let optional: [(RequestField, String)] = [
            (.rhost, rhost), (.ruser, ruser), (.tty, tty), (.authInfo, authInfo),
        ]
        for (field, value) in optional where !value.isEmpty { pairs.append((field.rawValue, value)) }
        pairs.append((RequestField.config.rawValue, config))
        pairs.append((RequestField.nullok.rawValue, nullok ? "1" : "0"))
        pairs.append((RequestField.debug.rawValue, debug ? "1" : "0"))
        // Only when set: a helper from before forward_pass still reads every other request.
        if forwardPass { pairs.append((RequestField.forwardPass.rawValue, "1")) }
        return FieldCodec.encode(pairs)
    }
}

/// forward_pass: the helper's code prompt carries, after a NUL that ends its text, the
/// code's length (`digits=6`), so the module can split `password` + `code` without ever
/// sending the password on. A module that does not split shows the text before the NUL.
public enum CombinedPrompt {
    public static let text = "Password and verification code: "
    static let marker = "digits="

    /// The prompt frame's text for a code of `digits` digits.
    public static func encode(digits: Int) -> String {
        text + "\u{0}" + marker + String(digits)
    }

    /// The code length a prompt announces, or nil for any other prompt.
    public static func digits(_ payload: [UInt8]) -> Int? {
        guard let nul = payload.firstIndex(of: 0) else { return nil }
        let tail = payload[(nul + 1)...]
        let m = Array(marker.utf8)
        guard tail.count == m.count + 1, tail.starts(with: m), let last = tail.last,
              last == UInt8(ascii: "6") || last == UInt8(ascii: "8") else { return nil }
        return Int(last - UInt8(ascii: "0"))
    }
}

/// The commands users run on their own enrolment, through the helper's socket.
public enum SelfServiceCommand: String, CaseIterable, Sendable {
    case enroll, status, backupCodes = "backup-codes", qr, disable, email
    /// `twostep devices`: list the authenticators; `devices remove NAME`.
    case devices, devicesRemove = "devices-remove"
    /// Ends the trust of one SSH key (or all): `twostep devices forget`.
    case forget
}

/// A self-service command from the CLI (mode `self`). Who asks comes from SO_PEERCRED,
/// never from here; `user` only names whom root acts on.
public struct SelfServiceRequest: Equatable, Sendable {
    public var command: SelfServiceCommand
    /// Empty: the caller.
    public var user: String
    public var json: Bool
    /// enroll only: replace an existing enrolment.
    public var replace: Bool
    /// enroll: add an authenticator of this name (not with `replace`); devices-remove: the
    /// one to remove (required). Empty otherwise.
    public var name: String
    /// forget only: `SHA256:...` or `all`.
    public var fingerprint = ""
    /// email only: the new address (empty with `confirm`).
    public var address: String
    /// enroll: finish a mailed invitation; email: finish a pending address.
    public var confirm: Bool

    public init(command: SelfServiceCommand, user: String = "", json: Bool = false, replace: Bool = false,
                name: String = "", address: String = "", confirm: Bool = false) {
        self.command = command; self.user = user; self.json = json; self.replace = replace; self.name = name
        self.address = address; self.confirm = confirm
    }

    public func encoded() -> [UInt8] {
        var pairs: [(String, String)] = [
            (RequestField.version.rawValue, String(ProtocolLimits.version)),
            (RequestField.mode.rawValue, RequestMode.selfService.rawValue),
            (RequestField.command.rawValue, command.rawValue),
            (RequestField.json.rawValue, json ? "1" : "0"),
        ]
        if !user.isEmpty { pairs.append((RequestField.user.rawValue, user)) }
        if replace { pairs.append((RequestField.replace.rawValue, "1")) }
        if !name.isEmpty { pairs.append((RequestField.name.rawValue, name)) }
        if !fingerprint.isEmpty { pairs.append((RequestField.fingerprint.rawValue, fingerprint)) }
        if !address.isEmpty { pairs.append((RequestField.address.rawValue, address)) }
        if confirm { pairs.append((RequestField.confirm.rawValue, "1")) }
        return FieldCodec.encode(pairs)
    }
}

public enum RequestMode: String, Sendable {
    case login = "pam"
    case selfService = "self"
}

/// What a `request` frame asked for.
public enum HelperRequest: Equatable, Sendable {
    case login(LoginRequest)
    case selfService(SelfServiceRequest)

    /// Decodes a request payload. The fields allowed depend on the mode: a login carries
    /// no command, a self-service request no PAM items.
    public static func decode(_ payload: [UInt8]) throws(FrameError) -> HelperRequest {
        let pairs = try FieldCodec.decode(payload, as: RequestField.self)
        func value(_ f: RequestField) -> String? {
            for (k, v) in pairs where k == f { return v }
            return nil
        }
        func required(_ f: RequestField) throws(FrameError) -> String {
            guard let v = value(f) else { try FrameError.raise(.missingField(f.rawValue)) }
            return v
        }
        guard try required(.version) == String(ProtocolLimits.version) else { try FrameError.raise(.badValue("version")) }
        guard let mode = RequestMode(rawValue: try required(.mode)) else { try FrameError.raise(.badValue("mode")) }
        let allowed: [RequestField]
        switch mode {
        case .login: allowed = [.version, .mode, .user, .service, .rhost, .ruser, .tty, .authInfo, .config, .nullok, .debug,
                                .forwardPass]
        case .selfService: allowed = [.version, .mode, .command, .user, .json, .replace, .name, .fingerprint,
                                      .address, .confirm]
        }
        for (k, _) in pairs where !allowed.contains(k) { try FrameError.raise(.unknownField(k.rawValue)) }

        switch mode {
        case .login:
            let user = try required(.user)
            guard !user.isEmpty else { try FrameError.raise(.badValue("user")) }
            // PAM always names its service (trust_services, the audit line and the
            // lockout's records depend on it): a login without one is malformed.
            let service = try required(.service)
            guard !service.isEmpty else { try FrameError.raise(.badValue("service")) }
            var login = LoginRequest(
                user: user, service: service, rhost: value(.rhost) ?? "", ruser: value(.ruser) ?? "",
                tty: value(.tty) ?? "", authInfo: value(.authInfo) ?? "",
                config: value(.config) ?? LoginRequest.defaultConfig,
                nullok: try FieldCodec.flag(value(.nullok) ?? "0", "nullok"),
                debug: try FieldCodec.flag(value(.debug) ?? "0", "debug"))
            login.forwardPass = try FieldCodec.flag(value(.forwardPass) ?? "0", "forward_pass")
            return .login(login)
        case .selfService:
            guard let command = SelfServiceCommand(rawValue: try required(.command)) else { try FrameError.raise(.badValue("command")) }
            let replace = try FieldCodec.flag(value(.replace) ?? "0", "replace")
            guard !replace || command == .enroll else { try FrameError.raise(.badValue("replace")) }
            let name = value(.name) ?? ""
            switch command {
            case .enroll: guard name.isEmpty || !replace else { try FrameError.raise(.badValue("name")) }
            case .devicesRemove: guard !name.isEmpty else { try FrameError.raise(.missingField("name")) }
            default: guard name.isEmpty else { try FrameError.raise(.badValue("name")) }
            }
            let fingerprint = value(.fingerprint) ?? ""
            guard (command == .forget) == !fingerprint.isEmpty else { try FrameError.raise(.badValue("fingerprint")) }
            let address = value(.address) ?? ""
            guard address.isEmpty || command == .email else { try FrameError.raise(.badValue("address")) }
            let confirm = try FieldCodec.flag(value(.confirm) ?? "0", "confirm")
            guard !confirm || command == .enroll || command == .email else { try FrameError.raise(.badValue("confirm")) }
            var request = SelfServiceRequest(
                command: command, user: value(.user) ?? "",
                json: try FieldCodec.flag(value(.json) ?? "0", "json"), replace: replace, name: name,
                address: address, confirm: confirm)
            request.fingerprint = fingerprint
            return .selfService(request)
        }
    }
}

/// The fields of a structured answer (`data` frame) to the CLI: `twostep status`, the
/// JSON of enroll, qr and backup-codes. Never a secret except what the user asked to see
/// (their own otpauth URI, QR code, fresh backup codes).
public enum DataField: String, CaseIterable, Sendable {
    case user, enrolled, enrolledAt = "enrolled_at", algorithm, digits, period
    case backupCodesLeft = "backup_codes_left", lastCodeAt = "last_code_at"
    case recentFailures = "recent_failures", locked, lockedUntil = "locked_until"
    case otpauthURI = "otpauth_uri", qrPNGDataURI = "qr_png_data_uri", backupCodes = "backup_codes"
    /// `twostep devices`: one authenticator per line, `NAME TYPE ALGORITHM DIGITS
    /// PERIOD|- COUNTER|- ADDED LAST_USED` (Unix times, 0 = never); never a secret.
    case authenticators
    /// `fingerprint@added@expires` (Unix seconds), comma-separated: the trusted SSH keys.
    case trustedSSHKeys = "trusted_ssh_keys"
    /// forget: how many trusted keys were forgotten.
    case forgotten
    /// Recovery (issue 9): the confirmed address (masked for users), one awaiting its code,
    /// an administrator's bypass, a pending invitation.
    case email, emailPending = "email_pending", bypassUntil = "bypass_until"
    case invitationPendingUntil = "invitation_pending_until"
}

public struct ServiceData: Equatable, Sendable {
    /// In the order given; no field twice.
    public private(set) var fields: [(DataField, String)]

    public init() { fields = [] }

    public init(_ fields: [(DataField, String)]) {
        self.fields = []
        for (k, v) in fields { self[k] = v }
    }

    public subscript(_ field: DataField) -> String? {
        get {
            for (k, v) in fields where k == field { return v }
            return nil
        }
        set {
            fields.removeAll { $0.0 == field }
            if let newValue { fields.append((field, newValue)) }
        }
    }

    public mutating func merge(_ other: ServiceData) {
        for (k, v) in other.fields { self[k] = v }
    }

    public func encoded() -> [UInt8] {
        FieldCodec.encode(fields.map { ($0.0.rawValue, $0.1) })
    }

    public static func decode(_ payload: [UInt8]) throws(FrameError) -> ServiceData {
        var data = ServiceData()
        data.fields = try FieldCodec.decode(payload, as: DataField.self)
        return data
    }

    public static func == (a: ServiceData, b: ServiceData) -> Bool {
        a.fields.count == b.fields.count && zip(a.fields, b.fields).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
    }
}
