import Glibc
import TwoStepProtocol

/// Frames over one descriptor (a socket or pipe), blocking, EINTR retried, with an
/// overall deadline: a peer that stops talking cannot hold the helper for ever.
public final class FrameChannel {
    let readFD: Int32
    let writeFD: Int32
    public var deadline: Int64?   // CLOCK_MONOTONIC seconds

    public init(readFD: Int32, writeFD: Int32) {
        self.readFD = readFD
        self.writeFD = writeFD
    }

    public func send(_ frame: Frame) throws {
        let bytes = frame.encoded()
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { p -> Int in
                guard let base = p.baseAddress else { return -1 }
                // MSG_NOSIGNAL on sockets; plain write on pipes (SIGPIPE is ignored in the helper).
                let r = Glibc.send(writeFD, base + off, p.count - off, Int32(MSG_NOSIGNAL))
                if r < 0 && errno == ENOTSOCK { return write(writeFD, base + off, p.count - off) }
                return r
            }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw ChannelError.closed }
            off += n
        }
    }

    public func receive() throws -> Frame {
        let header = try readExactly(ProtocolLimits.headerSize)
        let (type, length) = try parseFrameHeader(header)
        return Frame(type, try readExactly(length))
    }

    func readExactly(_ count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var off = 0
        while off < count {
            try waitReadable()
            let n = out.withUnsafeMutableBytes { p in read(readFD, p.baseAddress! + off, count - off) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN { continue }
            guard n > 0 else { throw ChannelError.closed }
            off += n
        }
        return out
    }

    func waitReadable() throws {
        guard let deadline else { return }
        while true {
            let left = deadline - monotonicSeconds()
            guard left > 0 else { throw ChannelError.timedOut }
            var pfd = pollfd(fd: readFD, events: Int16(POLLIN), revents: 0)
            let r = poll(&pfd, 1, Int32(min(left, 3600) * 1000))
            if r < 0 && errno == EINTR { continue }
            if r < 0 { throw ChannelError.closed }
            if r > 0 { return }
        }
    }
}

public enum ChannelError: Error { case closed, timedOut, unexpected(FrameType) }

public func monotonicSeconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec)
}
