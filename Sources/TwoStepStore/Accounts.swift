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

#if TWOSTEP_LEAN
/// twostep-verify's one account: the login's user, as /etc/passwd answers for it
/// (`PasswdFileCache.lookUpOnce`). Its LoginSession sets it before the login, and hands any
/// login whose user the file cannot answer for to twostep-helper.
public nonisolated(unsafe) var filesOnlyAccount: (name: [UInt8], lookup: AccountLookup)?
#endif

public func lookUpAccount(_ name: String) -> AccountLookup {
    guard isValidUserName(name) else { return .unknown }
    #if TWOSTEP_LEAN
    // twostep-verify is linked statically and calls no NSS: a static glibc would load the
    // modules of sources after `files` (systemd, sss, ldap) with dlopen, which is not safe in
    // a static process. Any other name is a lookup that failed.
    if let account = filesOnlyAccount, account.name.elementsEqual(name.utf8) { return account.lookup }
    return .failed
    #else
    if let cache = PasswdFileCache.shared, let answer = cache.lookUp(name) { return answer }
    switch lookUpPasswd({ getpwnam_r(name, &$0, $1, $2, &$3) },
                        found: { AccountLookup.found(name: String(cString: $0.pw_name), gid: $0.pw_gid) }) {
    case .found(let account): return account
    case .notFound: return .unknown
    case .failed: return .failed
    }
    #endif
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
    #if TWOSTEP_LEAN
    // No NSS in twostep-verify (above): a login under `require = GROUPS` is twostep-helper's.
    return nil
    #else
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
    #endif
}
