// Frames over the socket to the helper, with a deadline on every read.
// Every libc call on the socket is here; EINTR is retried in one place.
import PAMShim
import TwoStepProtocol

/// Why talking to the helper stopped before a verdict. Each maps to PAM_SYSTEM_ERR.
enum ChannelFailure: Error {
    case timedOut
    case endOfStream            // EOF at a frame boundary: the helper quit without a result
    case truncated              // EOF inside a frame
    case malformed(String)      // what was wrong, for the log
    case io(String, Int32)      // syscall name, errno

    var message: String {
        switch self {
        case .timedOut: return "helper timed out"
        case .endOfStream: return "helper closed the connection before a result"
        case .truncated: return "helper sent a truncated frame"
        case .malformed(let e): return "helper sent a malformed frame (\(e))"
        case .io(let call, let err): return "\(call) on helper socket failed: errno \(err)"
        }
    }
}

/// Milliseconds on the monotonic clock.
func monotonicMilliseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) &* 1000 &+ Int64(ts.tv_nsec) / 1_000_000
}

struct HelperChannel {
    let fd: Int32

    // MARK: Writing

    func send(_ frame: Frame) -> Result<Void, ChannelFailure> {
        let bytes = frame.encoded()
        return bytes.withUnsafeBytes { sendAll($0) }
    }

    /// Sends an `answer` frame built in a private buffer that is wiped before it is freed,
    /// so the user's answer never lands in a Swift array.
    func sendAnswer(_ answer: UnsafeBufferPointer<UInt8>) -> Result<Void, ChannelFailure> {
        guard answer.count <= ProtocolLimits.maxAnswer else {
            return .failure(.malformed("answer of \(answer.count) bytes too large"))
        }
        let total = ProtocolLimits.headerSize + answer.count
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: total, alignment: 1)
        defer {
            twostep_wipe(buffer.baseAddress, total)
            buffer.deallocate()
        }
        let n = UInt32(answer.count)
        buffer[0] = FrameType.answer.rawValue
        buffer[1] = UInt8(truncatingIfNeeded: n >> 24)
        buffer[2] = UInt8(truncatingIfNeeded: n >> 16)
        buffer[3] = UInt8(truncatingIfNeeded: n >> 8)
        buffer[4] = UInt8(truncatingIfNeeded: n)
        if let src = answer.baseAddress, answer.count > 0,
           let dst = buffer.baseAddress?.advanced(by: ProtocolLimits.headerSize) {
            dst.copyMemory(from: src, byteCount: answer.count)
        }
        return sendAll(UnsafeRawBufferPointer(buffer))
    }

    private func sendAll(_ bytes: UnsafeRawBufferPointer) -> Result<Void, ChannelFailure> {
        guard let base = bytes.baseAddress else { return .success(()) }
        var offset = 0
        while offset < bytes.count {
            // A stream socket with the helper draining it; a write cannot block for long,
            // and a dead helper gives EPIPE (MSG_NOSIGNAL: no SIGPIPE in the host).
            let n = twostep_send(fd, base.advanced(by: offset), bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(.io("send", errno))
            }
            if n == 0 { return .failure(.io("send", EPIPE)) }
            offset += n
        }
        return .success(())
    }

    // MARK: Reading

    /// Reads one whole frame before `deadline` (monotonic ms). The header is validated by
    /// the protocol's own parser before any payload is read.
    func receive(deadline: Int64) -> Result<Frame, ChannelFailure> {
        var header = [UInt8](repeating: 0, count: ProtocolLimits.headerSize)
        let got = header.withUnsafeMutableBytes { readExactly(into: $0, deadline: deadline) }
        switch got {
        case .failure(let f): return .failure(f)
        case .success(0): return .failure(.endOfStream)
        case .success(let n) where n < ProtocolLimits.headerSize: return .failure(.truncated)
        case .success: break
        }
        let type: FrameType
        let length: Int
        // The error is not cast back to FrameError: a dynamic cast would pull the
        // protocol module's type metadata into the dynamic symbol table. The header says
        // what was wrong just as well.
        guard let parsed = try? parseFrameHeader(header) else {
            return .failure(.malformed(describeBadHeader(header)))
        }
        (type, length) = parsed
        guard length >= 0, length <= ProtocolLimits.maxPayload else {
            return .failure(.malformed("length \(length) too large"))
        }
        var payload = [UInt8](repeating: 0, count: length)
        if length > 0 {
            let n = payload.withUnsafeMutableBytes { readExactly(into: $0, deadline: deadline) }
            switch n {
            case .failure(let f): return .failure(f)
            case .success(let n) where n < length: return .failure(.truncated)
            case .success: break
            }
        }
        return .success(Frame(type, payload))
    }

    private func describeBadHeader(_ h: [UInt8]) -> String {
        guard h.count == ProtocolLimits.headerSize, let first = h.first else { return "short header" }
        guard let type = FrameType(rawValue: first) else { return "unknown type \(first)" }
        let n = h.dropFirst().reduce(0) { ($0 << 8) | Int($1) }
        return "\(frameName(type)) with bad length \(n)"
    }

    /// Fills `buffer` unless EOF comes first; returns how many bytes were read.
    private func readExactly(into buffer: UnsafeMutableRawBufferPointer,
                             deadline: Int64) -> Result<Int, ChannelFailure> {
        guard let base = buffer.baseAddress else { return .success(0) }
        var filled = 0
        while filled < buffer.count {
            switch waitReadable(deadline: deadline) {
            case .failure(let f): return .failure(f)
            case .success: break
            }
            let n = read(fd, base.advanced(by: filled), buffer.count - filled)
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return .failure(.io("read", errno))
            }
            if n == 0 { break }
            filled += n
        }
        return .success(filled)
    }

    /// Waits until the socket is readable (data, EOF or error) or the deadline passes.
    func waitReadable(deadline: Int64) -> Result<Void, ChannelFailure> {
        while true {
            let remaining = deadline - monotonicMilliseconds()
            if remaining <= 0 { return .failure(.timedOut) }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let rc = poll(&pfd, 1, Int32(clamping: remaining))
            if rc < 0 {
                if errno == EINTR { continue }
                return .failure(.io("poll", errno))
            }
            if rc == 0 { continue }  // re-check the clock; the loop ends on the deadline
            return .success(())      // POLLIN, POLLHUP or POLLERR: read() says which
        }
    }

    /// After the verdict: discards anything still coming and waits for EOF, at most until
    /// `deadline`. Returns true when the helper closed its end.
    func drainUntilClosed(deadline: Int64) -> Bool {
        var scratch = [UInt8](repeating: 0, count: 512)
        var discarded = 0
        while discarded <= ProtocolLimits.maxPayload {
            guard case .success = waitReadable(deadline: deadline) else { return false }
            let n = scratch.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return false
            }
            if n == 0 { return true }
            discarded += n
        }
        return false
    }
}
