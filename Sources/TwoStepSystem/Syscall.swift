// SPDX-License-Identifier: Apache-2.0
// The one syscall seam for the helper, the store and the CLI (the module has its own in
// TwoStepPAM, which may not link this): EINTR is retried here and nowhere else.
import CTwoStepSys
import Glibc

public enum Sys {
    /// Calls `body` again while it fails with EINTR. For calls that return -1 and set errno.
    @inline(__always)
    @inlinable
    public static func retry<T: BinaryInteger>(_ body: () -> T) -> T {
        while true {
            let r = body()
            if r < 0 && errno == EINTR { continue }
            return r
        }
    }

    /// Writes every byte (a short write continues). False on an error or a closed peer;
    /// errno says which. On a socket MSG_NOSIGNAL keeps a vanished peer from raising SIGPIPE.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        var off = 0
        var socket = true
        while off < bytes.count {
            var n = socket ? retry { send(fd, base + off, bytes.count - off, Int32(MSG_NOSIGNAL)) } : -1
            if n < 0 && socket && errno == ENOTSOCK {
                socket = false
            }
            if !socket { n = retry { write(fd, base + off, bytes.count - off) } }
            guard n > 0 else { return false }
            off += n
        }
        return true
    }

    /// An exclusive open-file-description lock on the byte at `offset` of `fd`, not waited
    /// for (fcntl F_OFD_SETLK): true taken, false held through another open of the file,
    /// nil on an error (errno). Released when the last descriptor of this open is closed.
    public static func tryLockByte(_ fd: Int32, at offset: Int64) -> Bool? {
        switch twostep_sys_ofd_trylock(fd, offset) {
        case 1: return true
        case 0: return false
        default: return nil
        }
    }

    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { writeAll(fd, $0) }
    }

    /// One read(2), EINTR and EAGAIN retried (EAGAIN after poll said readable).
    public static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            return n
        }
    }

    /// Waits until `fd` is readable (data, EOF or error) or the monotonic `deadline`
    /// (seconds) passes; nil: wait for ever. False on timeout or a poll error.
    public static func waitReadable(_ fd: Int32, deadline: Int64?) -> Bool {
        guard let deadline else { return true }
        while true {
            let left = deadline - monotonicSeconds()
            guard left > 0 else { return false }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = retry { poll(&pfd, 1, Int32(min(left, 3600) * 1000)) }
            if r < 0 { return false }
            if r > 0 { return true }
        }
    }

    public static func monotonicSeconds() -> Int64 { monotonicMilliseconds() / 1000 }

    public static func monotonicMilliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    /// Sleeps `seconds` whole, resuming after a signal whose handler returns.
    public static func sleepUninterrupted(seconds: UInt32) {
        var left = timespec(tv_sec: Int(seconds), tv_nsec: 0)
        var rest = timespec()
        while nanosleep(&left, &rest) != 0 && errno == EINTR { left = rest }
    }

    /// This host's name; nil when it has none.
    public static func hostName() -> String? {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else { return nil }
        let name = String(cString: buf)
        return name.isEmpty ? nil : name
    }

    /// The system's error text for `err`.
    public static func describe(_ err: Int32) -> String { String(cString: strerror(err)) }
}

extension Sys {
    /// adjtimex(2), read only: (unsynchronised, maximum error in µs), or nil when it fails.
    public static func clockStatus() -> (unsynchronised: Bool, maxErrorMicroseconds: Int64)? {
        var unsync: Int32 = 0
        var maxError = 0
        guard twostep_sys_clock_status(&unsync, &maxError) == 0 else { return nil }
        return (unsync != 0, Int64(maxError))
    }
}

extension Sys {
    /// One syslog line; `message` is data, never a format.
    public static func syslog(_ priority: Int32, _ message: String) {
        message.withCString { twostep_sys_syslog(priority, $0) }
    }

    /// The absolute path `path` names, every symbolic link resolved; nil (errno set) when
    /// some part does not exist.
    public static func realPath(_ path: String) -> String? {
        guard let p = twostep_sys_realpath(path) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }
}

/// What stat says about a file's identity and last change: device, inode, size, and mtime
/// and ctime to the nanosecond. Equal stamps mean the file was neither replaced nor
/// written (a rename over it changes the inode; a write, chmod or chown the times).
public struct FileStamp: Equatable, Sendable {
    public let dev: UInt64, ino: UInt64, size: Int64
    public let mtime: Int, mtimeNs: Int, ctime: Int, ctimeNs: Int

    public init(_ st: stat) {
        dev = UInt64(st.st_dev); ino = UInt64(st.st_ino); size = Int64(st.st_size)
        mtime = st.st_mtim.tv_sec; mtimeNs = st.st_mtim.tv_nsec
        ctime = st.st_ctim.tv_sec; ctimeNs = st.st_ctim.tv_nsec
    }

    /// The stamp of what `path` names (symbolic links followed), or nil when stat fails.
    public init?(path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        self.init(st)
    }
}
