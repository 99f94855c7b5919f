// SPDX-License-Identifier: Apache-2.0
// The `~/.google_authenticator` file of google-authenticator-libpam, read for migration.
// Pure: bytes in, a parsed file out; the caller opens (and checks) the file.
import TwoStepCrypto

public enum GoogleAuthenticatorFileError: Error, Equatable, CustomStringConvertible {
    case empty
    case nulByte
    case badSecret
    case badOption(line: Int, name: String)
    case badLine(Int)

    public var description: String {
        switch self {
        case .empty: return "the file is empty"
        case .nulByte: return "the file contains a NUL byte"
        case .badSecret: return "the first line is not a Base32 secret"
        case .badOption(let line, let name): return "line \(line): invalid \(name) option"
        case .badLine(let line): return "line \(line) is neither an option nor an 8-digit scratch code"
        }
    }
}

/// What one `~/.google_authenticator` says, as its FILEFORMAT documents it: the Base32
/// secret on the first line, `" OPTION value` lines, and 8-digit one-time scratch codes.
/// Scratch codes are secrets like the key: both are wiped when this object goes.
public final class GoogleAuthenticatorFile {
    public enum Mode: Equatable {
        /// `" TOTP_AUTH` without `" HOTP_COUNTER`; `STEP_SIZE` seconds (default 30).
        case totp(stepSize: Int)
        /// `" HOTP_COUNTER n`: n is the counter the token will show next.
        case hotp(nextCounter: UInt64)
    }

    public let secret: SecretBytes
    /// nil when the file has neither TOTP_AUTH nor HOTP_COUNTER (only scratch codes work).
    public let mode: Mode?
    /// `" WINDOW_SIZE n` (1...100); nil when absent (the module's default is 3).
    public let windowSize: Int?
    /// `" DISALLOW_REUSE` and the time steps already used; nil when the option is absent.
    public let usedSteps: [Int64]?
    /// `" TIME_SKEW n`: how many time steps the user's clock runs ahead (negative: behind).
    public let timeSkew: Int64?
    /// `" RATE_LIMIT n m`: at most n login attempts in m seconds.
    public let rateLimit: (attempts: Int, seconds: Int)?
    /// `" OTP_DISABLED`.
    public let otpDisabled: Bool
    /// The unused scratch codes, 8 ASCII digits each.
    public let scratchCodes: [SecretBytes]
    /// Options this reader does not know (reported, never silently dropped).
    public let unknownOptions: [String]

    /// The module's own limit for the file (it refuses larger ones).
    public static let maxSize = 64 * 1024
    /// The module's window when WINDOW_SIZE is absent: the current step and one either side.
    public static let defaultWindowSize = 3
    public static let scratchCodeLength = 8

    init(secret: SecretBytes, mode: Mode?, windowSize: Int?, usedSteps: [Int64]?, timeSkew: Int64?,
         rateLimit: (attempts: Int, seconds: Int)?, otpDisabled: Bool, scratchCodes: [SecretBytes], unknownOptions: [String]) {
        self.secret = secret
        self.mode = mode
        self.windowSize = windowSize
        self.usedSteps = usedSteps
        self.timeSkew = timeSkew
        self.rateLimit = rateLimit
        self.otpDisabled = otpDisabled
        self.scratchCodes = scratchCodes
        self.unknownOptions = unknownOptions
    }

    /// Parses the file's bytes (the caller wipes them). The first occurrence of an option
    /// counts, as in the module. A line that is neither an option nor a scratch code is an
    /// error: an importer must not guess what a damaged file meant.
    public static func parse(_ bytes: [UInt8]) throws(GoogleAuthenticatorFileError) -> GoogleAuthenticatorFile {
        guard !bytes.isEmpty else { throw .empty }
        guard !bytes.contains(0) else { throw .nulByte }
        let lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            .map { $0.last == UInt8(ascii: "\r") ? $0.dropLast() : $0 }
        guard var secret = decodeSecret(lines[0]) else { throw .badSecret }
        defer { Crypto.wipe(&secret) }

        var options: [String: (line: Int, value: [Substring])] = [:]
        var unknown: [String] = []
        var scratch: [SecretBytes] = []
        for (index, line) in lines.enumerated().dropFirst() {
            let number = index + 1
            if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }) { continue }
            if line.first == UInt8(ascii: "\"") {
                // `" NAME value...`; the name is upper case with an underscore.
                let text = String(decoding: line.dropFirst(), as: UTF8.self)
                guard text.hasPrefix(" ") else { throw .badLine(number) }
                let words = text.split(whereSeparator: { $0 == " " || $0 == "\t" })
                // Upper case, digits and underscores only: nothing else reaches a terminal.
                guard let name = words.first.map(String.init),
                      name.utf8.allSatisfy({ ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "_") })
                else { throw .badLine(number) }
                if options[name] == nil { options[name] = (number, Array(words.dropFirst())) }
                continue
            }
            var digits = Array(line)
            defer { Crypto.wipe(&digits) }
            guard digits.count == scratchCodeLength, OTP.isDecimal(digits),
                  digits[0] != UInt8(ascii: "0") else { throw .badLine(number) }
            scratch.append(SecretBytes(digits))
        }

        func number<T: FixedWidthInteger>(_ name: String, _ range: ClosedRange<T>) throws(GoogleAuthenticatorFileError) -> T? {
            guard let (line, value) = options[name] else { return nil }
            guard value.count == 1, let n = T(value[0]), range.contains(n) else { throw .badOption(line: line, name: name) }
            return n
        }
        let hotpCounter: UInt64? = try number("HOTP_COUNTER", 1...UInt64(Int64.max))
        let stepSize: Int = try number("STEP_SIZE", 1...60) ?? 30
        let mode: Mode?
        if let hotpCounter {
            mode = .hotp(nextCounter: hotpCounter)
        } else if options["TOTP_AUTH"] != nil {
            mode = .totp(stepSize: stepSize)
        } else {
            mode = nil
        }
        let windowSize: Int? = try number("WINDOW_SIZE", 1...100)
        let timeSkew: Int64? = try number("TIME_SKEW", -1_000_000...1_000_000)
        var usedSteps: [Int64]? = nil
        if let (line, value) = options["DISALLOW_REUSE"] {
            usedSteps = []
            for word in value {
                guard let step = Int64(word), step >= 0 else { throw .badOption(line: line, name: "DISALLOW_REUSE") }
                usedSteps!.append(step)
            }
        }
        var rateLimit: (attempts: Int, seconds: Int)? = nil
        if let (line, value) = options["RATE_LIMIT"] {
            // `n m` and then the module's own record of recent attempts (undocumented).
            guard value.count >= 2, let n = Int(value[0]), (1...100).contains(n),
                  let m = Int(value[1]), (1...3600).contains(m) else { throw .badOption(line: line, name: "RATE_LIMIT") }
            rateLimit = (n, m)
        }
        let known: Set<String> = ["TOTP_AUTH", "HOTP_COUNTER", "STEP_SIZE", "WINDOW_SIZE", "DISALLOW_REUSE",
                                  "TIME_SKEW", "RATE_LIMIT", "OTP_DISABLED", "RESETTING_TIME_SKEW"]
        unknown = options.keys.filter { !known.contains($0) }.sorted()
        return GoogleAuthenticatorFile(secret: SecretBytes(secret), mode: mode, windowSize: windowSize, usedSteps: usedSteps,
                                       timeSkew: timeSkew, rateLimit: rateLimit, otpDisabled: options["OTP_DISABLED"] != nil,
                                       scratchCodes: scratch, unknownOptions: unknown)
    }

    /// The module's Base32, as pam_google_authenticator decodes it: A-Z and 2-7, upper or
    /// lower case, with 0, 1 and 8 read as O, L and B (digits people type for those
    /// letters); spaces, tabs, hyphens and a carriage return are ignored; any length, the
    /// bits of a last partial byte dropped. The secret never becomes a String.
    static func decodeSecret(_ line: ArraySlice<UInt8>) -> [UInt8]? {
        var out: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        defer { buffer = 0 }
        for b in line {
            let value: UInt8
            switch b {
            case UInt8(ascii: " "), UInt8(ascii: "-"), UInt8(ascii: "\t"), UInt8(ascii: "\r"): continue
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = b - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = b - UInt8(ascii: "a")
            case UInt8(ascii: "2")...UInt8(ascii: "7"): value = b - UInt8(ascii: "2") + 26
            case UInt8(ascii: "0"): value = UInt8(ascii: "O") - UInt8(ascii: "A")
            case UInt8(ascii: "1"): value = UInt8(ascii: "L") - UInt8(ascii: "A")
            case UInt8(ascii: "8"): value = UInt8(ascii: "B") - UInt8(ascii: "A")
            default:
                Crypto.wipe(&out)
                return nil
            }
            buffer = (buffer << 5 | UInt32(value)) & 0x1fff
            bits += 5
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
            }
        }
        return out.isEmpty ? nil : out
    }
}
