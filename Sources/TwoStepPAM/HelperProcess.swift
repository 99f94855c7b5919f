// SPDX-License-Identifier: Apache-2.0
// Starting and reaping twostep-helper. The verdict comes from the socket, never from the
// exit status: a host may ignore SIGCHLD (children auto-reaped) or reap them itself.
import PAMShim

enum SpawnFailure: Error {
    case socketpair(Int32)
    case spawn(Int32)
}

final class HelperProcess {
    let pid: pid_t
    /// Our end of the socketpair; -1 once closed.
    private(set) var socket: Int32
    /// A pidfd when the kernel offers one: exact signalling and exit notification.
    private var pidfd: Int32
    /// The child is known to be gone (reaped by us or by the host).
    private var gone = false

    private init(pid: pid_t, socket: Int32, pidfd: Int32, gone: Bool) {
        self.pid = pid
        self.socket = socket
        self.pidfd = pidfd
        self.gone = gone
    }

    /// Spawns `path` as `twostep-helper pam` with one end of a fresh socketpair on its fd 0
    /// and 1. The child's end is closed here before returning.
    static func start(path: String) -> Result<HelperProcess, SpawnFailure> {
        var fds: [Int32] = [-1, -1]
        let rc = fds.withUnsafeMutableBufferPointer { twostep_socketpair($0.baseAddress) }
        guard rc == 0, fds.count == 2 else { return .failure(.socketpair(errno)) }
        let parentEnd = fds[0], childEnd = fds[1]

        var pid: pid_t = 0
        let spawnError = spawnHelper(path: path, childEnd: childEnd, pid: &pid)
        close(childEnd)
        guard spawnError == 0, pid > 0 else {
            close(parentEnd)
            return .failure(.spawn(spawnError == 0 ? ECHILD : spawnError))
        }
        let pidfd = twostep_pidfd_open(pid)
        // ESRCH: the child already exited and the host reaped it; nothing to signal.
        let gone = pidfd < 0 && errno == ESRCH
        return .success(HelperProcess(pid: pid, socket: parentEnd, pidfd: pidfd, gone: gone))
    }

    private static func spawnHelper(path: String, childEnd: Int32, pid: inout pid_t) -> Int32 {
        // argv: [path, "pam", NULL], as C strings that live across the call. argv[0] is the
        // absolute path, never a bare name: the Swift runtime resolves its crash backtracer
        // (libexec/swift/...) relative to argv[0]'s directory, which for a bare name would be
        // the caller's working directory.
        guard let arg0 = strdup(path) else { return ENOMEM }
        defer { free(arg0) }
        guard let arg1 = strdup("pam") else { return ENOMEM }
        defer { free(arg1) }
        var argv: [UnsafeMutablePointer<CChar>?] = [arg0, arg1, nil]
        return path.withCString { cPath in
            argv.withUnsafeMutableBufferPointer { twostep_spawn(cPath, $0.baseAddress, childEnd, &pid) }
        }
    }

    func closeSocket() {
        if socket >= 0 {
            close(socket)
            socket = -1
        }
    }

    /// Ends the session: after a verdict the helper gets `graceMilliseconds` to close its
    /// end and exit; after an error, or when the grace runs out, it is killed. Always reaps.
    func finish(graceMilliseconds: Int64) {
        if graceMilliseconds > 0, socket >= 0 {
            let deadline = monotonicMilliseconds() + graceMilliseconds
            shutdown(socket, Int32(SHUT_WR))
            if HelperConnection(fd: socket).drainUntilClosed(deadline: deadline) {
                waitForExit(deadline: deadline)
            }
        }
        closeSocket()
        if !gone && !reap(blocking: false) {
            _ = twostep_kill_child(pidfd, pid)
            _ = reap(blocking: true)
        }
        if pidfd >= 0 {
            close(pidfd)
            pidfd = -1
        }
    }

    /// With a pidfd, waits (bounded) until the child has exited; without one, returns.
    private func waitForExit(deadline: Int64) {
        guard pidfd >= 0 else { return }
        while true {
            let remaining = deadline - monotonicMilliseconds()
            if remaining <= 0 { return }
            var pfd = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
            let rc = poll(&pfd, 1, Int32(clamping: remaining))
            if rc < 0 && errno == EINTR { continue }
            return
        }
    }

    /// True when the child is gone: reaped now, or ECHILD (the host reaped it, or it
    /// ignores SIGCHLD). False only when a non-blocking check finds it still running.
    private func reap(blocking: Bool) -> Bool {
        guard twostep_reap_child(pidfd, pid, blocking ? 1 : 0) != 0 else { return false }
        gone = true
        return true
    }

    deinit {
        // Every path calls finish(); this only guards against a forgotten one.
        if socket >= 0 || pidfd >= 0 || !gone { finish(graceMilliseconds: 0) }
    }
}
