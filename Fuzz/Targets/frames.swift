// libFuzzer target: the frame protocol as pure functions.
//   parseFrameHeader on any 5 bytes (and on any other length: must throw `truncated`),
//   decodeFields on any payload (and the encode/decode round trip of what it accepts),
//   the reference stream decoder (Support/FrameStream.swift) over the whole input.
import TwoStepProtocol

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = (data == nil || size == 0) ? [] : Array(UnsafeBufferPointer(start: data, count: size))

    // Header: exactly five bytes, else `truncated`.
    if bytes.count != ProtocolLimits.headerSize {
        do { _ = try parseFrameHeader(bytes); preconditionFailure("header of \(bytes.count) bytes accepted") }
        catch let e as FrameError { precondition(e == .truncated) }
        catch { preconditionFailure("unexpected error \(error)") }
    }
    if bytes.count >= ProtocolLimits.headerSize {
        do {
            let (type, n) = try parseFrameHeader(Array(bytes[0..<ProtocolLimits.headerSize]))
            precondition(n >= 0 && n <= ProtocolLimits.maxPayload)
            precondition(type != .answer || n <= ProtocolLimits.maxAnswer)
            precondition(type != .result || n == 1)
            precondition(type.rawValue == bytes[0])
        } catch {
            _ = "\(error)"
        }
    }

    // Fields: whatever is accepted survives a round trip.
    do {
        let fields = try decodeFields(bytes)
        precondition(fields.count <= ProtocolLimits.maxFields)
        let again = try decodeFields(encodeFields(fields.sorted { $0.key < $1.key }))
        precondition(again == fields, "fields do not round-trip")
    } catch {
        _ = "\(error)"
    }

    // The stream as a receiver sees it.
    var stream = FrameStream(bytes)
    let (frames, _) = stream.all()
    frames.forEach(consume)
    return 0
}
