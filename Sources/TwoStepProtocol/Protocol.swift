// SPDX-License-Identifier: Apache-2.0
// The frame protocol between pam_twostep.so (or the CLI) and twostep-helper.
//
// A frame is one type byte, a 4-byte big-endian payload length, then the payload.
// The set of types is closed; every length is capped; anything unknown, oversized or
// out of order ends the session (see docs/ARCHITECTURE.md, "Frame protocol").
// Standard library only, typed throws, no existentials: the PAM module links this target
// and it must build as Embedded Swift (tests/test_layout.py checks that it does).
//
// The codec here is pure (bytes in, frames out); each side wraps it with its own
// syscalls: HelperConnection in the module, FrameStream in TwoStepSystem.

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
    case request = 0x01       // a LoginRequest or a SelfServiceRequest (Messages.swift)
    case answer = 0x02        // the user's reply to the last prompt
    case conversationFailed = 0x03  // the caller could not ask the user; the helper gives up

    // Helper to caller.
    case promptEchoOff = 0x10
    case promptEchoOn = 0x11
    case info = 0x12
    case error = 0x13
    case result = 0x1F        // one byte: a Verdict; ends the session
    case data = 0x1E          // CLI only: a ServiceData (before result)

    /// A name for logs, spelled out rather than reflected.
    public var name: String {
        switch self {
        case .request: return "request"
        case .answer: return "answer"
        case .conversationFailed: return "conversationFailed"
        case .promptEchoOff: return "promptEchoOff"
        case .promptEchoOn: return "promptEchoOn"
        case .info: return "info"
        case .error: return "error"
        case .result: return "result"
        case .data: return "data"
        }
    }
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

    public var name: String {
        switch self {
        case .success: return "success"
        case .failure: return "failure"
        case .ignore: return "ignore"
        case .notEnrolled: return "notEnrolled"
        case .lockedOut: return "lockedOut"
        case .systemError: return "systemError"
        case .conversationError: return "conversationError"
        case .denied: return "denied"
        }
    }
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

    /// The 5-byte header for a payload of `count` bytes.
    public static func header(_ type: FrameType, count: Int) -> [UInt8] {
        // Callers keep payloads within maxPayload; clamping keeps this total (no trap) if not.
        let n = UInt32(clamping: count)
        return [type.rawValue, UInt8(n >> 24), UInt8((n >> 16) & 0xff), UInt8((n >> 8) & 0xff), UInt8(n & 0xff)]
    }

    public func encoded() -> [UInt8] {
        var out = Frame.header(type, count: payload.count)
        out.append(contentsOf: payload)
        return out
    }
}

public enum FrameError: Error, Equatable, Sendable {
    case unknownType(UInt8)
    case tooLarge(FrameType, Int)
    case badResult(Int)           // a result frame whose payload is not one byte
    case malformedFields          // not `key NUL value NUL` pairs, or too many
    case unknownField(String)
    case missingField(String)
    case duplicateField(String)
    case badValue(String)         // the field whose value is not allowed
    case unexpected(FrameType)    // a type not allowed at this point of the dialogue

    /// What was wrong, for a log line.
    public var message: String {
        switch self {
        case .unknownType(let t): return "unknown frame type " + String(t)
        case .tooLarge(let t, let n): return t.name + " of " + String(n) + " bytes is too large"
        case .badResult(let n): return "result frame of " + String(n) + " bytes"
        case .malformedFields: return "malformed fields"
        case .unknownField(let k): return "unknown field " + k
        case .missingField(let k): return "missing field " + k
        case .duplicateField(let k): return "duplicated field " + k
        case .badValue(let k): return "bad value for field " + k
        case .unexpected(let t): return "unexpected " + t.name + " frame"
        }
    }
}

extension FrameError {
    /// Every FrameError outside this file is thrown through here. A `throw` of a typed
    /// error references its type descriptor; from another object file that reference goes
    /// through the GOT and the descriptor lands in pam_twostep.so's dynamic symbol table
    /// (tests/test_pam_module.py checks that only pam_sm_* are there).
    @inline(never)
    static func raise(_ error: FrameError) throws(FrameError) -> Never {
        throw error
    }
}

/// Validates a frame header. Returns the type and payload length.
func parseFrameHeader(_ h: ArraySlice<UInt8>) throws(FrameError) -> (FrameType, Int) {
    let b = h.startIndex
    guard let type = FrameType(rawValue: h[b]) else { throw .unknownType(h[b]) }
    let n = Int(h[b + 1]) << 24 | Int(h[b + 2]) << 16 | Int(h[b + 3]) << 8 | Int(h[b + 4])
    guard n <= ProtocolLimits.maxPayload else { throw .tooLarge(type, n) }
    if type == .answer && n > ProtocolLimits.maxAnswer { throw .tooLarge(type, n) }
    if type == .result && n != 1 { throw .badResult(n) }
    return (type, n)
}

/// The one frame reader, over bytes: feed it what a descriptor gave, take whole frames
/// out. A header is checked as soon as its five bytes are in, before any payload is
/// awaited, so an oversized or unknown frame is refused without reading it.
///
/// `bytesNeeded` says how much more makes the next frame whole; readers that ask for
/// exactly that never buffer past one frame, and the buffer is zeroed once a frame is
/// taken out (answers pass through it).
public struct FrameDecoder {
    private var buffer: [UInt8] = []
    private var expected: Int? = nil   // payload length once the header is in

    public init() {}

    /// Bytes that would complete the frame being read (never 0).
    public var bytesNeeded: Int {
        if let expected { return max(1, ProtocolLimits.headerSize + expected - buffer.count) }
        return ProtocolLimits.headerSize - buffer.count
    }

    /// True when nothing of a frame has arrived: end of stream here is a clean end.
    public var isAtFrameBoundary: Bool { buffer.isEmpty }

    /// Appends bytes and returns the next whole frame, nil while one is incomplete.
    /// Bytes past the first whole frame stay buffered for the next call (with an empty
    /// `bytes`). A malformed header throws; the decoder is then unusable.
    /// (Not generic: a generic entry point with a typed error would make the module carry
    /// this module's type descriptors in its dynamic symbol table.)
    public mutating func feed(_ bytes: ArraySlice<UInt8>) throws(FrameError) -> Frame? {
        buffer.append(contentsOf: bytes)
        return try next()
    }

    public mutating func feed(_ bytes: [UInt8]) throws(FrameError) -> Frame? {
        try feed(bytes[...])
    }

    public mutating func next() throws(FrameError) -> Frame? {
        if expected == nil {
            guard buffer.count >= ProtocolLimits.headerSize else { return nil }
            expected = try parseFrameHeader(buffer[0..<ProtocolLimits.headerSize]).1
        }
        guard let length = expected, buffer.count >= ProtocolLimits.headerSize + length,
              let type = FrameType(rawValue: buffer[0]) else { return nil }
        let end = ProtocolLimits.headerSize + length
        let frame = Frame(type, Array(buffer[ProtocolLimits.headerSize..<end]))
        let rest = Array(buffer[end...])
        wipe()
        buffer.append(contentsOf: rest)
        return frame
    }

    /// Zeroes and empties the buffer.
    public mutating func wipe() {
        for i in buffer.indices { buffer[i] = 0 }
        buffer.removeAll(keepingCapacity: true)
        expected = nil
    }
}
