// SPDX-License-Identifier: Apache-2.0
// Google Authenticator's Key Uri Format:
//   otpauth://TYPE/LABEL?secret=BASE32&issuer=ISSUER&algorithm=SHA1&digits=6&period=30
// where LABEL is "ISSUER:ACCOUNT" or "ACCOUNT", percent-encoded.

public enum OTPAuthURIError: Error, Equatable, CustomStringConvertible {
    case wrongScheme(String)
    case unsupportedType(String)
    case missingLabel
    case emptyAccount
    case missingSecret
    case invalidSecret(Base32Error)
    case unsupportedAlgorithm(String)
    case invalidDigits(String)
    case invalidPeriod(String)
    case missingCounter
    case invalidCounter(String)
    case invalidPercentEncoding(String)
    case invalidUTF8(String)
    case duplicateParameter(String)
    case issuerMismatch(label: String, parameter: String)

    public var description: String {
        switch self {
        case .wrongScheme(let s): return "not an otpauth URI: it starts with \"\(s)\" instead of \"otpauth://\""
        case .unsupportedType(let t): return "unsupported OTP type \"\(t)\" (expected totp or hotp)"
        case .missingLabel: return "otpauth URI has no label (otpauth://totp/ISSUER:ACCOUNT?...)"
        case .emptyAccount: return "otpauth URI has an empty account name"
        case .missingSecret: return "otpauth URI has no secret= parameter"
        case .invalidSecret(let e): return "otpauth URI secret is not valid Base32: \(e)"
        case .unsupportedAlgorithm(let a): return "unsupported algorithm \"\(a)\" (expected SHA1, SHA256 or SHA512)"
        case .invalidDigits(let d):
            return "invalid digits \"\(d)\" (expected \(OTPPolicy.digitsText))"
        case .invalidPeriod(let p):
            return "invalid period \"\(p)\" (expected \(OTPPolicy.periodsText))"
        case .missingCounter: return "hotp URI has no counter= parameter"
        case .invalidCounter(let c): return "invalid counter \"\(c)\" (expected a non-negative integer)"
        case .invalidPercentEncoding(let s): return "invalid percent-encoding in \"\(s)\""
        case .invalidUTF8(let s): return "percent-encoded text \"\(s)\" is not valid UTF-8"
        case .duplicateParameter(let p): return "parameter \"\(p)\" appears more than once"
        case .issuerMismatch(let label, let parameter):
            return "issuer in the label (\"\(label)\") differs from the issuer parameter (\"\(parameter)\")"
        }
    }
}

public struct OTPAuthURI: Equatable, Sendable {
    public enum Kind: String, Sendable { case totp, hotp }

    public var kind: Kind
    public var issuer: String?
    public var account: String
    public var secret: [UInt8]
    public var parameters: OTPParameters
    /// HOTP only: the next counter value.
    public var counter: UInt64?

    public init(kind: Kind = .totp, issuer: String?, account: String, secret: [UInt8], parameters: OTPParameters = .standard, counter: UInt64? = nil) {
        self.kind = kind
        self.issuer = issuer
        self.account = account
        self.secret = secret
        self.parameters = parameters
        self.counter = counter
    }

    /// The URI, with issuer and account percent-encoded (only RFC 3986 unreserved characters
    /// are kept, so ':' '&' '?' '%' and spaces are escaped) and the secret as unpadded Base32.
    /// Always states algorithm, digits and period; an hotp URI always carries a counter.
    public var uriString: String {
        var label = percentEncode(account)
        var query = "secret=" + Base32.encode(secret, padding: false)
        if let issuer = issuer, !issuer.isEmpty {
            label = percentEncode(issuer) + ":" + label
            query += "&issuer=" + percentEncode(issuer)
        }
        query += "&algorithm=" + parameters.algorithm.rawValue
        query += "&digits=" + String(parameters.digits)
        query += "&period=" + String(parameters.period)
        if kind == .hotp { query += "&counter=" + String(counter ?? 0) }
        return "otpauth://" + kind.rawValue + "/" + label + "?" + query
    }

    /// Parses a Key Uri. Scheme, type and parameter names are case-insensitive; algorithm,
    /// digits and period default to SHA1/6/30; unknown parameters (e.g. image) are ignored.
    /// The label's issuer prefix may be separated by ':' or "%3A", optionally followed by spaces.
    public init(parsing uri: String) throws {
        let prefix = "otpauth://"
        let bytes = Array(uri.utf8)
        guard bytes.count >= prefix.utf8.count,
              String(decoding: bytes[..<prefix.utf8.count], as: UTF8.self).lowercased() == prefix else {
            let scheme = uri.split(separator: ":", maxSplits: 1).first.map(String.init) ?? uri
            throw OTPAuthURIError.wrongScheme(String(scheme.prefix(32)))
        }
        var rest = String(decoding: bytes[prefix.utf8.count...], as: UTF8.self)
        // Drop a fragment, if any.
        if let hash = rest.firstIndex(of: "#") { rest = String(rest[..<hash]) }

        let pathAndQuery = rest.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = String(pathAndQuery[0])
        let rawQuery = pathAndQuery.count > 1 ? String(pathAndQuery[1]) : ""

        guard let slash = path.firstIndex(of: "/") else {
            if Kind(rawValue: path.lowercased()) != nil { throw OTPAuthURIError.missingLabel }
            throw OTPAuthURIError.unsupportedType(path)
        }
        let typeText = String(path[..<slash])
        guard let kind = Kind(rawValue: typeText.lowercased()) else { throw OTPAuthURIError.unsupportedType(typeText) }
        let rawLabel = String(path[path.index(after: slash)...])
        guard !rawLabel.isEmpty else { throw OTPAuthURIError.missingLabel }

        // Query parameters.
        var params: [String: String] = [:]
        for pair in rawQuery.split(separator: "&", omittingEmptySubsequences: true) {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = try percentDecode(String(kv[0]), plusIsSpace: true).lowercased()
            let value = kv.count > 1 ? try percentDecode(String(kv[1]), plusIsSpace: true) : ""
            guard params[name] == nil else { throw OTPAuthURIError.duplicateParameter(name) }
            params[name] = value
        }

        // Label: split at the first literal ':' before decoding, so an encoded ':' inside
        // the issuer or account survives; else accept a "%3A" separator when it matches the
        // issuer parameter.
        var labelIssuer: String? = nil
        var account: String
        if let colon = rawLabel.firstIndex(of: ":") {
            labelIssuer = try percentDecode(String(rawLabel[..<colon]), plusIsSpace: false)
            account = try percentDecode(String(rawLabel[rawLabel.index(after: colon)...]), plusIsSpace: false)
        } else {
            account = try percentDecode(rawLabel, plusIsSpace: false)
            if let issuer = params["issuer"], !issuer.isEmpty, account.hasPrefix(issuer + ":") {
                labelIssuer = issuer
                account = String(account.dropFirst(issuer.count + 1))
            }
        }
        while account.first == " " { account.removeFirst() }
        guard !account.isEmpty else { throw OTPAuthURIError.emptyAccount }

        var issuer = labelIssuer
        if let parameter = params["issuer"] {
            if let fromLabel = labelIssuer, !parameter.isEmpty, fromLabel != parameter {
                throw OTPAuthURIError.issuerMismatch(label: fromLabel, parameter: parameter)
            }
            if !parameter.isEmpty { issuer = parameter }
        }
        if issuer?.isEmpty == true { issuer = nil }

        guard let secretText = params["secret"], !secretText.isEmpty else { throw OTPAuthURIError.missingSecret }
        let secret: [UInt8]
        do { secret = try Base32.decode(secretText) } catch let e as Base32Error { throw OTPAuthURIError.invalidSecret(e) }

        var parameters = OTPParameters.standard
        if let a = params["algorithm"] {
            guard let algorithm = HashAlgorithm(name: a) else { throw OTPAuthURIError.unsupportedAlgorithm(a) }
            parameters.algorithm = algorithm
        }
        if let d = params["digits"] {
            guard let digits = parseDecimal(d).flatMap({ Int(exactly: $0) }), OTPPolicy.digits.contains(digits) else {
                throw OTPAuthURIError.invalidDigits(d)
            }
            parameters.digits = digits
        }
        if let p = params["period"] {
            guard let period = parseDecimal(p).flatMap({ Int(exactly: $0) }), OTPPolicy.periods.contains(period) else {
                throw OTPAuthURIError.invalidPeriod(p)
            }
            parameters.period = period
        }
        var counter: UInt64? = nil
        if kind == .hotp {
            guard let c = params["counter"] else { throw OTPAuthURIError.missingCounter }
            guard let value = parseDecimal(c) else { throw OTPAuthURIError.invalidCounter(c) }
            counter = value
        }
        self.init(kind: kind, issuer: issuer, account: account, secret: secret, parameters: parameters, counter: counter)
    }
}

/// ASCII decimal digits only (no sign, no spaces), at most 20 of them, fitting UInt64.
func parseDecimal(_ text: String) -> UInt64? {
    // A digit first rules out decimalInteger's sign; it checks the rest and the bounds.
    guard let first = text.utf8.first, first >= UInt8(ascii: "0"), first <= UInt8(ascii: "9"),
          text.utf8.count <= 20 else { return nil }
    return decimalInteger(text.utf8, as: UInt64.self)
}

/// RFC 3986 percent-encoding of the UTF-8 bytes; only unreserved characters are kept.
func percentEncode(_ text: String) -> String {
    let hex = Array("0123456789ABCDEF".utf8)
    var out: [UInt8] = []
    for b in text.utf8 {
        switch b {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            out.append(b)
        default:
            out.append(UInt8(ascii: "%")); out.append(hex[Int(b >> 4)]); out.append(hex[Int(b & 0xf)])
        }
    }
    return String(decoding: out, as: UTF8.self)
}

func percentDecode(_ text: String, plusIsSpace: Bool) throws -> String {
    guard let out = percentDecoded(Array(text.utf8), plusIsSpace: plusIsSpace, malformed: .refuse) else {
        throw OTPAuthURIError.invalidPercentEncoding(text)
    }
    guard let decoded = String(validatingUTF8CodeUnits: out) else { throw OTPAuthURIError.invalidUTF8(text) }
    return decoded
}

extension String {
    /// nil unless `bytes` is valid UTF-8 (String(decoding:) would silently repair it).
    init?(validatingUTF8CodeUnits bytes: [UInt8]) {
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        var scalars = String.UnicodeScalarView()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let s): scalars.append(s)
            case .emptyInput: self = String(scalars); return
            case .error: return nil
            }
        }
    }
}
