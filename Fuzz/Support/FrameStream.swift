// The reference stream decoder both channel implementations must agree with: read a
// 5-byte header, check it with parseFrameHeader, read the payload; stop at the first
// problem. Byte-for-byte the rule of FrameChannel (helper) and HelperChannel (module),
// without a descriptor in between.
import TwoStepProtocol

enum StreamEnd: Equatable {
    case cleanEOF             // at a frame boundary
    case truncated            // EOF inside a header or a payload
    case badHeader            // parseFrameHeader threw
}

struct FrameStream {
    let bytes: [UInt8]
    var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// The next frame, or why the stream ends.
    mutating func next() -> Result<Frame, StreamEndError> {
        let left = bytes.count - offset
        if left == 0 { return .failure(StreamEndError(end: .cleanEOF)) }
        if left < ProtocolLimits.headerSize { return .failure(StreamEndError(end: .truncated)) }
        let header = Array(bytes[offset..<(offset + ProtocolLimits.headerSize)])
        guard let (type, length) = try? parseFrameHeader(header) else {
            return .failure(StreamEndError(end: .badHeader))
        }
        precondition(length >= 0 && length <= ProtocolLimits.maxPayload, "header accepted length \(length)")
        let start = offset + ProtocolLimits.headerSize
        guard bytes.count - start >= length else { return .failure(StreamEndError(end: .truncated)) }
        let frame = Frame(type, Array(bytes[start..<(start + length)]))
        // A decoded frame encodes back to exactly the bytes it came from.
        precondition(frame.encoded()[...] == bytes[offset..<(start + length)], "frame does not re-encode")
        offset = start + length
        return .success(frame)
    }

    /// Every frame up to the end, and how the stream ended.
    mutating func all() -> ([Frame], StreamEnd) {
        var frames: [Frame] = []
        while true {
            switch next() {
            case .success(let f): frames.append(f)
            case .failure(let e): return (frames, e.end)
            }
        }
    }
}

struct StreamEndError: Error { let end: StreamEnd }

/// What a receiver does with each frame's payload: request fields are decoded, a result
/// byte becomes a Verdict, text is decoded. Checks the invariants the callers rely on.
func consume(_ frame: Frame) {
    switch frame.type {
    case .request, .data:
        if let fields = try? decodeFields(frame.payload) {
            precondition(fields.count <= ProtocolLimits.maxFields)
            _ = fields[RequestField.user.rawValue]
        }
    case .result:
        precondition(frame.payload.count == 1, "result frame with \(frame.payload.count) bytes")
        _ = Verdict(rawValue: frame.payload[0])
    case .answer:
        precondition(frame.payload.count <= ProtocolLimits.maxAnswer)
        _ = frame.text
    default:
        _ = frame.text
    }
}
