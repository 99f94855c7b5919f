// SPDX-License-Identifier: Apache-2.0
import Glibc
import TwoStepSystem

/// What NSS says about an account: its canonical name, or that it does not know it, or
/// that it could not answer (a directory that is down). Lookups use the `_r` calls, so
/// "no such entry" and "lookup failed" are told apart.
public enum AccountLookup: Equatable {
    case found(name: String, gid: gid_t)
    case unknown
    case failed
}

public func lookUpAccount(_ name: String) -> AccountLookup {
    guard isValidUserName(name) else { return .unknown }
    if let cache = PasswdFileCache.shared, let answer = cache.lookUp(name) { return answer }
    switch lookUpPasswd({ getpwnam_r(name, &$0, $1, $2, &$3) },
                        found: { AccountLookup.found(name: String(cString: $0.pw_name), gid: $0.pw_gid) }) {
    case .found(let account): return account
    case .notFound: return .unknown
    case .failed: return .failed
    }
}

/// The name the store keys `name` by: NSS's `pw_name` (so `ALICE` and `alice` in a
/// case-insensitive directory are one record); nil when NSS does not know the name.
public func canonicalUserName(_ name: String) -> String? {
    if case .found(let canonical, _) = lookUpAccount(name), isValidUserName(canonical) { return canonical }
    return nil
}

/// The names of every group `user` belongs to (primary and supplementary); nil when
/// NSS cannot say (unknown user, or a lookup that failed), so callers can fail closed.
public func groupNames(of user: String) -> [String]? {
    guard case .found(let canonical, let primary) = lookUpAccount(user) else { return nil }
    var count: Int32 = 64
    var gids = [gid_t](repeating: 0, count: Int(count))
    if getgrouplist(canonical, primary, &gids, &count) < 0 {
        gids = [gid_t](repeating: 0, count: Int(count))
        guard getgrouplist(canonical, primary, &gids, &count) >= 0 else { return nil }
    }
    var names: [String] = []
    for gid in gids.prefix(Int(count)) {
        var gr = group()
        var result: UnsafeMutablePointer<group>?
        var size = 4096
        var rc: Int32 = 0
        repeat {
            var buf = [CChar](repeating: 0, count: size)
            rc = getgrgid_r(gid, &gr, &buf, size, &result)
            if rc == 0, let g = result { names.append(String(cString: g.pointee.gr_name)) }
            size *= 4
        } while rc == ERANGE && size <= 1 << 22
        if rc != 0 && rc != ENOENT && rc != ESRCH { return nil }  // could not ask: fail closed
    }
    return names
}
