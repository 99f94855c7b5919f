// SPDX-License-Identifier: Apache-2.0
// socket=: asking a running `twostep-helper serve` instead of spawning a helper per login.
// The connection carries the same frames as the socketpair to a spawned helper; there is
// no child to reap, so the session ends by closing the descriptor.
import PAMShim

/// Why the server could not be used. Every case falls back to spawning `helper=`.
enum SocketFailure: Error {
    /// connect() (or socket()) failed with this errno.
    case connect(Int32)
    /// The peer's credentials could not be read (errno).
    case peerCredentials(Int32)
    /// Whoever listens there is not root: not a twostep-helper we trust with a verdict.
    case notRoot(uid_t)

    /// Nothing is listening: the expected case when the server is simply not running.
    var noServer: Bool {
        if case .connect(let err) = self { return err == ENOENT || err == ECONNREFUSED }
        return false
    }

    var message: String {
        switch self {
        case .connect(let err): return "connect failed: \(errnoName(err))"
        case .peerCredentials(let err): return "SO_PEERCRED failed: \(errnoName(err))"
        case .notRoot(let uid): return "its listener belongs to uid \(uid), not root"
        }
    }
}

func errnoName(_ err: Int32) -> String {
    switch err {
    case ENOENT: return "ENOENT"
    case ECONNREFUSED: return "ECONNREFUSED"
    case EACCES: return "EACCES"
    case EAGAIN: return "EAGAIN (server backlog full)"
    case ENOTSOCK: return "ENOTSOCK"
    case ENAMETOOLONG: return "ENAMETOOLONG"
    case EPROTOTYPE: return "EPROTOTYPE"
    default: return "errno \(err)"
    }
}

enum HelperSocket {
    /// A connected descriptor to a root-owned server at `path`, or why not.
    /// `timeoutMilliseconds` bounds the wait when the server's backlog is full.
    static func connect(path: String, timeoutMilliseconds: Int64) -> Result<Int32, SocketFailure> {
        var fd: Int32 = -1
        let rc = path.withCString {
            twostep_connect_unix($0, Int32(clamping: timeoutMilliseconds), &fd)
        }
        guard rc == 0, fd >= 0 else { return .failure(.connect(rc == 0 ? EBADF : rc)) }
        var uid: uid_t = 0
        guard twostep_peer_uid(fd, &uid) == 0 else {
            let err = errno
            close(fd)
            return .failure(.peerCredentials(err))
        }
        guard uid == 0 else {
            close(fd)
            return .failure(.notRoot(uid))
        }
        return .success(fd)
    }
}

/// The other end of the relay: a helper the module spawned, or a server it connected to.
enum HelperLink {
    case spawned(HelperProcess)
    case connected(Int32)

    var fd: Int32 {
        switch self {
        case .spawned(let helper): return helper.socket
        case .connected(let fd): return fd
        }
    }

    /// A server connection has been sent the request already (see openLink).
    var requestSent: Bool {
        switch self {
        case .spawned: return false
        case .connected: return true
        }
    }

    /// Ends the session. A spawned helper gets `graceMilliseconds` to exit and is reaped
    /// (see HelperProcess.finish); a server connection is simply closed.
    func finish(graceMilliseconds: Int64) {
        switch self {
        case .spawned(let helper): helper.finish(graceMilliseconds: graceMilliseconds)
        case .connected(let fd): close(fd)
        }
    }
}
