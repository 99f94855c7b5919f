// The frame protocol between pam_twostep.so (or the CLI) and twostep-helper.
//
// A frame is one type byte, a 4-byte big-endian payload length, then the payload.
// The set of types is closed; every length is capped; anything unknown, oversized or
// out of order ends the session (see docs/ARCHITECTURE.md, "Frame protocol").
// Standard library only: the PAM module links this target.

public enum ProtocolLimits {
    public static let version: UInt8 = 1
    /// Largest payload either side accepts. A terminal QR code fits well inside.
    public static let maxPayload = 32 * 1024
    /// Largest answer a user can send (a code, a password).
    public static let maxAnswer = 512
    /// Largest number of fields in a request.
    public static let maxFields = 32
    public static let headerSize = 5
}

public enum FrameType: UInt8, Sendable {
    // Caller (module or CLI) to helper.
    case request = 0x01       // fields: see RequestField
    case answer = 0x02        // the user's reply to the last prompt
    case conversationFailed = 0x03  // the caller could not ask the user; the helper gives up

    // Helper to caller.
    case promptEchoOff = 0x10
    case promptEchoOn = 0x11
    case info = 0x12
    case error = 0x13
    case result = 0x1F        // one byte: a Verdict; ends the session
    case data = 0x1E          // CLI only: fields of a structured answer (before result)
}

/// The helper's final answer. The module maps it to a PAM return code.
public enum Verdict: UInt8, Sendable, CaseIterable {
    case success = 0
    case failure = 1          // wrong, replayed, expired or used code
    case ignore = 2           // not enrolled, and nullok: let the stack decide
    case notEnrolled = 3      // not enrolled, no nullok
    case lockedOut = 4        // the 2FA limiter refused
    case systemError = 5      // damaged store, bad config, anything unexpected
    case conversationError = 6
    case denied = 7           // self-service: not allowed
}

public struct Frame: Equatable, Sendable {
    public var type: FrameType
    public var payload: [UInt8]

    public init(_ type: FrameType, _ payload: [UInt8] = []) {
        self.type = type
        self.payload = payload
    }

    public init(_ type: FrameType, text: String) {
        self.init(type, Array(text.utf8))
    }

    public var text: String { String(decoding: payload, as: UTF8.self) }

    public func encoded() -> [UInt8] {
        // Callers keep payloads within maxPayload; clamping keeps this total (no trap) if not.
        let n = UInt32(clamping: payload.count)
        var out: [UInt8] = [type.rawValue, UInt8(n >> 24), UInt8((n >> 16) & 0xff),
                            UInt8((n >> 8) & 0xff), UInt8(n & 0xff)]
        out.append(contentsOf: payload)
        return out
    }
}

public enum FrameError: Error, Equatable, Sendable {
    case unknownType(UInt8)
    case tooLarge(Int)
    case truncated
    case malformedFields
    case unexpected(FrameType)
}

/// Parses a frame header. Returns the type and payload length, or throws.
public func parseFrameHeader(_ h: [UInt8]) throws(FrameError) -> (FrameType, Int) {
    guard h.count == ProtocolLimits.headerSize else { throw FrameError.truncated }
    guard let type = FrameType(rawValue: h[0]) else { throw FrameError.unknownType(h[0]) }
    let n = Int(h[1]) << 24 | Int(h[2]) << 16 | Int(h[3]) << 8 | Int(h[4])
    guard n <= ProtocolLimits.maxPayload else { throw FrameError.tooLarge(n) }
    if type == .answer && n > ProtocolLimits.maxAnswer { throw FrameError.tooLarge(n) }
    if type == .result && n != 1 { throw FrameError.malformedFields }
    return (type, n)
}

/// Request fields travel as `key NUL value NUL` pairs. Keys are fixed; values are
/// C strings (PAM items never contain NUL).
public enum RequestField: String, CaseIterable, Sendable {
    case version, mode, user, service, rhost, ruser, tty, authInfo = "auth_info"
    case config, nullok, debug
    case command                 // self-service: which command
}

public func encodeFields(_ fields: [(String, String)]) -> [UInt8] {
    var out: [UInt8] = []
    for (k, v) in fields {
        out.append(contentsOf: k.utf8.filter { $0 != 0 })
        out.append(0)
        out.append(contentsOf: v.utf8.filter { $0 != 0 })
        out.append(0)
    }
    return out
}

public func decodeFields(_ bytes: [UInt8]) throws(FrameError) -> [String: String] {
    var parts: [String] = []
    var cur: [UInt8] = []
    for b in bytes {
        if b == 0 {
            parts.append(String(decoding: cur, as: UTF8.self))
            cur.removeAll(keepingCapacity: true)
        } else {
            cur.append(b)
        }
    }
    guard cur.isEmpty, parts.count % 2 == 0, parts.count / 2 <= ProtocolLimits.maxFields else {
        throw FrameError.malformedFields
    }
    var out: [String: String] = [:]
    var i = 0
    while i < parts.count {
        guard !parts[i].isEmpty, out[parts[i]] == nil else { throw FrameError.malformedFields }
        out[parts[i]] = parts[i + 1]
        i += 2
    }
    return out
}
