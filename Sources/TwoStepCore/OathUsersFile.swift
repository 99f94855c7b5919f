// SPDX-License-Identifier: Apache-2.0
// pam_oath's usersfile (liboath's UsersFile format), read for migration. Pure: bytes in,
// lines out; the caller opens the file and turns the timestamp into a time.
import TwoStepCrypto

/// One usersfile: every line that names a token, whether twostep can take it over or not.
/// Format, whitespace separated, `#` comments:
///
///     TYPE USER PIN HEXSECRET [COUNTER [LASTOTP [TIME]]]
///
/// TYPE is `HOTP`, `HOTP/E[/d]` (counter based), `HOTP/T30[/d]` or `HOTP/T60[/d]` (time
/// based, 30 or 60 s), d the number of digits (6, 7 or 8; 6 when left out). PIN `-` means
/// none and `+` that it is checked elsewhere; anything else is a password. COUNTER is the
/// HOTP counter of the last accepted code (or the first one to accept when LASTOTP is
/// absent), LASTOTP the last accepted code, TIME when it was accepted
/// (`YYYY-MM-DDTHH:MM:SSL`, local time).
public struct OathUsersFile {
    public enum Kind: Equatable {
        case hotp(digits: Int)
        case totp(period: Int, digits: Int)

        public var digits: Int {
            switch self {
            case .hotp(let d), .totp(_, let d): return d
            }
        }
    }

    public enum PIN: Equatable {
        /// `-`
        case none
        /// `+`: checked by something else (pam_oath then takes any password).
        case external
        /// A password; its value is never kept.
        case password
    }

    /// Local time as written in the file; the caller converts it (mktime).
    public struct Timestamp: Equatable {
        public var year, month, day, hour, minute, second: Int
    }

    public final class Entry {
        public let line: Int
        public let kind: Kind
        public let user: String
        public let pin: PIN
        public let secret: SecretBytes
        public let counter: UInt64?
        /// The last accepted code (digits), nil when absent.
        public let lastOTP: [UInt8]?
        public let time: Timestamp?

        init(line: Int, kind: Kind, user: String, pin: PIN, secret: SecretBytes, counter: UInt64?, lastOTP: [UInt8]?, time: Timestamp?) {
            self.line = line
            self.kind = kind
            self.user = user
            self.pin = pin
            self.secret = secret
            self.counter = counter
            self.lastOTP = lastOTP
            self.time = time
        }
    }

    /// A line that could not be read. `user` is set when the line got that far, so the
    /// importer can hold that user back rather than import a part of their tokens.
    public struct Problem: Equatable {
        public let line: Int
        public let user: String?
        public let reason: String
    }

    public let entries: [Entry]
    public let problems: [Problem]

    /// liboath decodes secrets into a 32-byte buffer; longer ones never worked there.
    public static let maxSecretBytes = 32

    public static func parse(_ bytes: [UInt8]) -> OathUsersFile {
        var entries: [Entry] = []
        var problems: [Problem] = []
        let space: (UInt8) -> Bool = { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\r") }
        for (index, line) in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            let fields = line.split(whereSeparator: space)
            guard let first = fields.first, first.first != UInt8(ascii: "#") else { continue }
            let type = String(decoding: first, as: UTF8.self)
            let user = fields.count > 1 ? String(decoding: fields[1], as: UTF8.self) : nil
            func problem(_ why: String) { problems.append(Problem(line: number, user: user, reason: why)) }
            guard let kind = parseKind(type) else {
                problem("unknown token type \(printable(type))")
                continue
            }
            guard let user, fields.count >= 4 else {
                problem("needs at least TYPE USER PIN SECRET")
                continue
            }
            guard fields.count <= 7 else {
                problem("more than 7 fields")
                continue
            }
            let pin: PIN
            // Compared in place: a password never gets a copy.
            if fields[2].elementsEqual([UInt8(ascii: "-")]) {
                pin = .none
            } else if fields[2].elementsEqual([UInt8(ascii: "+")]) {
                pin = .external
            } else {
                pin = .password
            }
            guard var secret = decodeHex(fields[3]) else {
                problem("the secret is not hexadecimal")
                continue
            }
            defer { Crypto.wipe(&secret) }
            guard secret.count <= maxSecretBytes else {
                problem("the secret is longer than \(maxSecretBytes) bytes (pam_oath cannot use it either)")
                continue
            }
            var counter: UInt64? = nil
            if fields.count > 4 {
                guard let c = UInt64(String(decoding: fields[4], as: UTF8.self)) else {
                    problem("the counter is not a number")
                    continue
                }
                counter = c
            }
            var lastOTP: [UInt8]? = nil
            if fields.count > 5 {
                let otp = Array(fields[5])
                guard !otp.isEmpty, otp.count <= 10, OTP.isDecimal(otp) else {
                    problem("the last code is not a number")
                    continue
                }
                lastOTP = otp
            }
            var time: Timestamp? = nil
            if fields.count > 6 {
                guard let t = parseTimestamp(fields[6]) else {
                    problem("the time is not YYYY-MM-DDTHH:MM:SSL")
                    continue
                }
                time = t
            }
            entries.append(Entry(line: number, kind: kind, user: user, pin: pin, secret: SecretBytes(secret),
                                 counter: counter, lastOTP: lastOTP, time: time))
        }
        return OathUsersFile(entries: entries, problems: problems)
    }

    /// `HOTP`, `HOTP/E`, `HOTP/E/d`, `HOTP/T30`, `HOTP/T30/d`, `HOTP/T60`, `HOTP/T60/d`; d 6, 7 or 8.
    public static func parseKind(_ type: String) -> Kind? {
        let parts = type.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.first == "HOTP", parts.count <= 3 else { return nil }
        var digits = 6
        if parts.count == 3 {
            guard let d = Int(parts[2]), (6...8).contains(d) else { return nil }
            digits = d
        }
        switch parts.count > 1 ? parts[1] : "E" {
        case "E": return .hotp(digits: digits)
        case "T30": return .totp(period: 30, digits: digits)
        case "T60": return .totp(period: 60, digits: digits)
        default: return nil
        }
    }

    /// `2026-11-29T13:05:09L`
    static func parseTimestamp(_ field: ArraySlice<UInt8>) -> Timestamp? {
        let text = Array(field)
        guard text.count == 20, text[19] == UInt8(ascii: "L"), text[4] == UInt8(ascii: "-"), text[7] == UInt8(ascii: "-"),
              text[10] == UInt8(ascii: "T"), text[13] == UInt8(ascii: ":"), text[16] == UInt8(ascii: ":") else { return nil }
        func n(_ from: Int, _ count: Int) -> Int? {
            let digits = text[from..<from + count]
            guard OTP.isDecimal(digits) else { return nil }
            return Int(String(decoding: digits, as: UTF8.self))
        }
        guard let y = n(0, 4), let mo = n(5, 2), (1...12).contains(mo), let d = n(8, 2), (1...31).contains(d),
              let h = n(11, 2), h < 24, let mi = n(14, 2), mi < 60, let s = n(17, 2), s <= 60 else { return nil }
        return Timestamp(year: y, month: mo, day: d, hour: h, minute: mi, second: s)
    }

    static func printable(_ s: String) -> String {
        let clean = String(s.unicodeScalars.prefix(32).map { $0.value < 0x20 || $0.value >= 0x7f ? "?" : Character($0) })
        return "\"" + clean + "\""
    }
}
