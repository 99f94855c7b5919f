// SPDX-License-Identifier: Apache-2.0
// The module's connection to the helper: frames over the socket, with a deadline on every
// read. Bytes go through the protocol's one FrameDecoder; every libc call on the socket is
// here, and EINTR is retried in one place (`retryEINTR`).
import PAMShim
import TwoStepProtocol

/// Why talking to the helper stopped before a verdict. Each maps to PAM_SYSTEM_ERR.
enum HelperConnectionError: Error {
    case timedOut
    case endOfStream            // EOF at a frame boundary: the helper quit without a result
    case truncated              // EOF inside a frame
    // What was wrong, as text: holding the FrameError itself would put the protocol
    // module's type descriptors into the .so's dynamic symbol table.
    case malformed(String)
    case answerTooLong(Int)
    case io(String, Int32)      // syscall name, errno

    var message: String {
        switch self {
        case .timedOut: return "helper timed out"
        case .endOfStream: return "helper closed the connection before a result"
        case .truncated: return "helper sent a truncated frame"
        case .malformed(let why): return "helper sent a malformed frame (" + why + ")"
        case .answerTooLong(let n): return "answer of " + String(n) + " bytes too large"
        case .io(let call, let err): return call + " on helper socket failed: errno " + String(err)
        }
    }
}

/// Milliseconds on the monotonic clock.
func monotonicMilliseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) &* 1000 &+ Int64(ts.tv_nsec) / 1_000_000
}

/// Calls `body` again while it fails with EINTR (the module's one retry loop).
@inline(__always)
func retryEINTR<T: BinaryInteger>(_ body: () -> T) -> T {
    while true {
        let r = body()
        if r < 0 && errno == EINTR { continue }
        return r
    }
}

struct HelperConnection {
    let fd: Int32

    // MARK: Writing

    func send(_ frame: Frame) -> Result<Void, HelperConnectionError> {
        let bytes = frame.encoded()
        return bytes.withUnsafeBytes { sendAll($0) }
    }

    /// Sends an `answer` frame built in a private buffer that is wiped before it is freed,
    /// so the user's answer never lands in a Swift array.
    func sendAnswer(_ answer: UnsafeBufferPointer<UInt8>) -> Result<Void, HelperConnectionError> {
        guard answer.count <= ProtocolLimits.maxAnswer else {
            return .failure(.answerTooLong(answer.count))
        }
        let total = ProtocolLimits.headerSize + answer.count
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: total, alignment: 1)
        defer {
            twostep_wipe(buffer.baseAddress, total)
            buffer.deallocate()
        }
        for (i, b) in Frame.header(.answer, count: answer.count).enumerated() { buffer[i] = b }
        if let src = answer.baseAddress, answer.count > 0,
           let dst = buffer.baseAddress?.advanced(by: ProtocolLimits.headerSize) {
            dst.copyMemory(from: src, byteCount: answer.count)
        }
        return sendAll(UnsafeRawBufferPointer(buffer))
    }

    private func sendAll(_ bytes: UnsafeRawBufferPointer) -> Result<Void, HelperConnectionError> {
        guard let base = bytes.baseAddress else { return .success(()) }
        var offset = 0
        while offset < bytes.count {
            // A stream socket with the helper draining it; a write cannot block for long,
            // and a dead helper gives EPIPE (MSG_NOSIGNAL: no SIGPIPE in the host).
            let n = retryEINTR { twostep_send(fd, base.advanced(by: offset), bytes.count - offset) }
            if n < 0 { return .failure(.io("send", errno)) }
            if n == 0 { return .failure(.io("send", EPIPE)) }
            offset += n
        }
        return .success(())
    }

    // MARK: Reading

    /// Reads one whole frame before `deadline` (monotonic ms). The decoder checks the
    /// header before any payload is awaited, and nothing past the frame is read.
    func receive(deadline: Int64) -> Result<Frame, HelperConnectionError> {
        var decoder = FrameDecoder()
        var chunk = [UInt8](repeating: 0, count: 512)
        while true {
            switch waitReadable(deadline: deadline) {
            case .failure(let f): return .failure(f)
            case .success: break
            }
            let want = min(decoder.bytesNeeded, chunk.count)
            let n = chunk.withUnsafeMutableBytes { p in
                retryEINTR { read(fd, p.baseAddress, want) }
            }
            if n < 0 {
                if errno == EAGAIN { continue }
                return .failure(.io("read", errno))
            }
            if n == 0 { return .failure(decoder.isAtFrameBoundary ? .endOfStream : .truncated) }
            do {
                if let frame = try decoder.feed(chunk[0..<n]) { return .success(frame) }
            } catch {
                return .failure(.malformed(error.message))
            }
        }
    }

    /// Waits until the socket is readable (data, EOF or error) or the deadline passes.
    func waitReadable(deadline: Int64) -> Result<Void, HelperConnectionError> {
        while true {
            let remaining = deadline - monotonicMilliseconds()
            if remaining <= 0 { return .failure(.timedOut) }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let rc = poll(&pfd, 1, Int32(clamping: remaining))
            // EINTR: round the loop, so the clock is read again (retryEINTR would not).
            if rc < 0 && errno == EINTR { continue }
            if rc < 0 { return .failure(.io("poll", errno)) }
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
            let n = scratch.withUnsafeMutableBytes { p in retryEINTR { read(fd, p.baseAddress, p.count) } }
            if n < 0 {
                if errno == EAGAIN { continue }
                return false
            }
            if n == 0 { return true }
            discarded += n
        }
        return false
    }
}
