// SPDX-License-Identifier: Apache-2.0
// Process hygiene and small lookups shared by twostep-helper and the CLI.
import CTwoStepSys
import Glibc

/// Process hygiene before any secret is read: no core dumps, not ptrace-attachable by
/// the same uid, private umask, SIGPIPE ignored (a vanished peer is an error, not death).
public func hardenProcess() {
    _ = twostep_sys_disable_dumps()
    _ = umask(0o077)
    _ = signal(SIGPIPE, SIG_IGN)
}

public func writeStderr(_ s: String) {
    _ = Sys.writeAll(2, Array(s.utf8))
}

public func writeStdout(_ s: String) {
    _ = Sys.writeAll(1, Array(s.utf8))
}

/// The account name of `uid`; nil when it has none, or when the name is not valid UTF-8
/// (decoding would replace bytes, and two names could then read as one).
public func userName(uid: uid_t) -> String? {
    #if TWOSTEP_LEAN
    return nil  // twostep-verify is linked statically and calls no NSS (TwoStepStore's lookUpAccount)
    #else
    guard let pw = getpwuid(uid) else { return nil }
    return String(validatingCString: pw.pointee.pw_name)
    #endif
}

/// What a reentrant passwd lookup came to: the entry (as `found` made it, while its
/// strings are valid), no such entry, or a failure of the name service itself (down).
public enum PasswdLookup<R> {
    case found(R)
    case notFound
    case failed
}

/// One getpwnam_r/getpwuid_r call (`call`), its buffer grown as glibc asks. "No such
/// entry" is rc 0 with no result, or one of the codes glibc's manual lists for it.
public func lookUpPasswd<R>(_ call: (inout passwd, UnsafeMutablePointer<CChar>, Int,
                                     inout UnsafeMutablePointer<passwd>?) -> Int32,
                            found: (passwd) -> R) -> PasswdLookup<R> {
    var pw = passwd()
    var result: UnsafeMutablePointer<passwd>?
    var size = 1024
    while true {
        var buf = [CChar](repeating: 0, count: size)
        let rc = buf.withUnsafeMutableBufferPointer { call(&pw, $0.baseAddress!, size, &result) }
        if rc == ERANGE && size < 1 << 20 { size *= 4; continue }
        if rc == EINTR { continue }
        if result != nil { return withExtendedLifetime(buf) { .found(found(pw)) } }
        return rc == 0 || rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM ? .notFound : .failed
    }
}

/// Whether `uid` has a passwd entry (through NSS: files, LDAP, sssd): true or false, or
/// nil when the lookup itself failed (a name service that is down).
public func hasAccount(uid: uid_t) -> Bool? {
    #if TWOSTEP_LEAN
    return nil  // twostep-verify calls no NSS: a lookup that failed
    #else
    switch lookUpPasswd({ getpwuid_r(uid, &$0, $1, $2, &$3) }, found: { _ in true }) {
    case .found: return true
    case .notFound: return false
    case .failed: return nil
    }
    #endif
}

/// The uid of the process at the other end of a Unix socket (SO_PEERCRED).
public func peerUID(_ fd: Int32) -> uid_t? {
    var uid: uid_t = 0
    return twostep_sys_peer_uid(fd, &uid) == 0 ? uid : nil
}

/// A stream socket connected to the Unix socket at `path`, or the errno of the failure
/// (ENAMETOOLONG when the path does not fit).
public func connectUnixSocket(_ path: String) -> Result<Int32, Errno> {
    guard var addr = unixSocketAddress(path) else { return .failure(Errno(ENAMETOOLONG)) }
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return .failure(Errno(errno)) }
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p in
            Sys.retry { connect(fd, p, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }
    guard rc == 0 else {
        let e = errno
        close(fd)
        return .failure(Errno(e))
    }
    return .success(fd)
}

/// An errno value as an Error.
public struct Errno: Error, Equatable {
    public let code: Int32
    public init(_ code: Int32) { self.code = code }
}

/// The address of a Unix socket at `path`; nil when the path does not fit.
public func unixSocketAddress(_ path: String) -> sockaddr_un? {
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return nil }
    withUnsafeMutableBytes(of: &addr.sun_path) { p in
        for (i, b) in bytes.enumerated() { p[i] = b }
    }
    return addr
}
