// SPDX-License-Identifier: Apache-2.0
import Glibc
import TwoStepProtocol

/// Frames over one descriptor (a socket or pipe), for the helper and the CLI: blocking,
/// with an overall deadline, so a peer that stops talking cannot hold the helper for ever.
/// The bytes are read through the protocol's one FrameDecoder; the module wraps the same
/// decoder with its own calls (TwoStepPAM/HelperConnection.swift).
public final class FrameStream {
    let readFD: Int32
    let writeFD: Int32
    /// CLOCK_MONOTONIC seconds; nil: no deadline (a person is typing).
    public var deadline: Int64?
    private var decoder = FrameDecoder()

    public init(readFD: Int32, writeFD: Int32) {
        self.readFD = readFD
        self.writeFD = writeFD
    }

    deinit { decoder.wipe() }

    public func send(_ frame: Frame) throws(FrameStreamError) {
        guard Sys.writeAll(writeFD, frame.encoded()) else { throw .closed }
    }

    /// The next whole frame. Reads no further than the frame's end.
    public func receive() throws(FrameStreamError) -> Frame {
        // Not zeroed first (only the bytes read are ever looked at), and only those are
        // wiped after: an answer passes through here. Two 4 KiB passes per frame were
        // about 4% of a login's instructions in the running helper.
        var chunk = [UInt8](unsafeUninitializedCapacity: 4096) { _, count in count = 4096 }
        var used = 0
        defer { chunk.withUnsafeMutableBytes { $0.baseAddress.map { explicit_bzero($0, used) } } }
        while true {
            do {
                if let frame = try decoder.next() { return frame }
            } catch {
                throw .malformed(error)
            }
            guard Sys.waitReadable(readFD, deadline: deadline) else { throw .timedOut }
            let want = min(decoder.bytesNeeded, chunk.count)
            let n = chunk.withUnsafeMutableBytes { Sys.read(readFD, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<want])) }
            guard n > 0 else { throw .closed }
            used = max(used, n)
            do {
                if let frame = try decoder.feed(chunk[0..<n]) { return frame }
            } catch {
                throw .malformed(error)
            }
        }
    }
}

public enum FrameStreamError: Error, CustomStringConvertible {
    case closed
    case timedOut
    case malformed(FrameError)

    public var description: String {
        switch self {
        case .closed: return "connection closed"
        case .timedOut: return "timed out"
        case .malformed(let e): return e.message
        }
    }
}
