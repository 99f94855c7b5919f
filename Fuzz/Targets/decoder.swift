// libFuzzer target: the two real receivers, fed the input through a socketpair.
//   FrameChannel.receive (the helper's, Sources/TwoStepHelperKit/FrameChannel.swift,
//   compiled into this harness) and HelperChannel.receive (the PAM module's, through
//   @testable import of TwoStepPAM) must return the same frames as the reference decoder
//   (Support/FrameStream.swift) and end the same way; neither may trap.
import Glibc
import TwoStepProtocol
@testable import TwoStepPAM

/// Largest input pushed through the socket in one go (stays under the socket buffer, so
/// the single-threaded write cannot block).
let maxInput = 40 * 1024

/// A socketpair holding `bytes`, the writing end shut: the reader sees them, then EOF.
func loadedSocket(_ bytes: [UInt8]) -> Int32 {
    var fds: [Int32] = [-1, -1]
    precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0, "socketpair: errno \(errno)")
    var off = 0
    while off < bytes.count {
        let n = bytes.withUnsafeBytes { write(fds[0], $0.baseAddress! + off, $0.count - off) }
        precondition(n > 0, "write: errno \(errno)")
        off += n
    }
    close(fds[0])
    return fds[1]
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard size <= maxInput else { return 0 }
    let bytes = (data == nil || size == 0) ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    var model = FrameStream(bytes)
    let (expected, end) = model.all()

    // The helper's side.
    let fd1 = loadedSocket(bytes)
    let helper = FrameChannel(readFD: fd1, writeFD: fd1)
    var got: [Frame] = []
    while true {
        do {
            got.append(try helper.receive())
        } catch let e as FrameError {
            precondition(end == .badHeader, "FrameChannel: \(e) where the reference says \(end)")
            break
        } catch let e as ChannelError {
            guard case .closed = e else { preconditionFailure("FrameChannel: \(e)") }
            precondition(end == .cleanEOF || end == .truncated, "FrameChannel: closed where the reference says \(end)")
            break
        } catch {
            preconditionFailure("FrameChannel: unexpected \(error)")
        }
    }
    close(fd1)
    precondition(got == expected, "FrameChannel frames differ from the reference")

    // The module's side.
    let fd2 = loadedSocket(bytes)
    let module = HelperChannel(fd: fd2)
    got = []
    let deadline = monotonicMilliseconds() + 10_000
    loop: while true {
        switch module.receive(deadline: deadline) {
        case .success(let f): got.append(f)
        case .failure(let f):
            _ = f.message
            switch f {
            case .endOfStream: precondition(end == .cleanEOF, "HelperChannel: endOfStream, reference \(end)")
            case .truncated: precondition(end == .truncated, "HelperChannel: truncated, reference \(end)")
            case .malformed: precondition(end == .badHeader, "HelperChannel: malformed, reference \(end)")
            default: preconditionFailure("HelperChannel: \(f.message)")
            }
            break loop
        }
    }
    close(fd2)
    precondition(got == expected, "HelperChannel frames differ from the reference")
    got.forEach(consume)
    return 0
}
