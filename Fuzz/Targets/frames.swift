// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the frame protocol, as both ends read it.
//   The one FrameDecoder, fed the input in pieces whose sizes the input itself picks (the
//   first byte seeds them): the frames must be the same as when fed all at once, each
//   within its limits, and a bad header must end both runs alike. Every request frame goes
//   through HelperRequest.decode and every data frame through ServiceData.decode: what is
//   accepted survives encode -> decode unchanged; nothing traps.
import TwoStepProtocol

/// Decodes `bytes` fed in pieces of the given sizes (cycled; 0 means "all the rest").
func decodeAll(_ bytes: [UInt8], pieces: [Int]) -> (frames: [Frame], failed: FrameError?) {
    var decoder = FrameDecoder()
    var frames: [Frame] = []
    var offset = 0
    var i = 0
    do {
        while offset < bytes.count {
            let size = pieces.isEmpty || pieces[i % pieces.count] == 0 ? bytes.count - offset : pieces[i % pieces.count]
            i += 1
            let end = min(bytes.count, offset + size)
            var next = try decoder.feed(bytes[offset..<end])
            offset = end
            while let frame = next {
                frames.append(frame)
                next = try decoder.next()
            }
        }
    } catch {
        return (frames, error)
    }
    return (frames, nil)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = (data == nil || size == 0) ? [] : Array(UnsafeBufferPointer(start: data, count: size))

    let whole = decodeAll(bytes, pieces: [])
    let seed = Int(bytes.first ?? 0)
    let pieces = [1 + seed % 7, 1, 5, 2 + seed % 13, 4096]
    let split = decodeAll(bytes, pieces: pieces)
    precondition(split.frames == whole.frames, "frames differ when the input arrives in pieces")
    precondition(split.failed == whole.failed, "a split input ends differently")

    for frame in whole.frames {
        precondition(frame.payload.count <= ProtocolLimits.maxPayload)
        precondition(frame.type != .answer || frame.payload.count <= ProtocolLimits.maxAnswer)
        precondition(frame.type != .result || frame.payload.count == 1)
        precondition(Array(frame.encoded()[0..<ProtocolLimits.headerSize]) == Frame.header(frame.type, count: frame.payload.count))
    }

    // Typed messages: the whole input as a payload, and every frame's payload.
    for payload in [bytes] + whole.frames.map(\.payload) {
        if let request = try? HelperRequest.decode(payload) {
            let again: [UInt8]
            switch request {
            case .login(let r): again = r.encoded()
            case .selfService(let r): again = r.encoded()
            }
            precondition((try? HelperRequest.decode(again)) == request, "request does not round-trip")
        }
        if let answer = try? ServiceData.decode(payload) {
            precondition((try? ServiceData.decode(answer.encoded())) == answer, "data does not round-trip")
        }
    }
    return 0
}
