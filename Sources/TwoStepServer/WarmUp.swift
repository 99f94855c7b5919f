// SPDX-License-Identifier: Apache-2.0
import Glibc
import TwoStepCrypto
import TwoStepPostgres
import TwoStepProtocol
import TwoStepStore

/// What a socket worker does before accept(), so that the first login it serves pays for
/// none of it: the time zone read, the syslog connection opened, the NSS modules loaded,
/// OpenSSL's tables touched after the fork, and one pass through the frame codec and the
/// store's read path (their code paged in, the state directory's inode cached). Nothing
/// is written.
enum WarmUp {
    static func worker(_ config: Config) {
        Crypto.warmUp()
        tzset()
        var t = time(nil)
        var tm = Glibc.tm()
        _ = localtime_r(&t, &tm)
        AuditLog.connectSyslog()
        // NSS: every passwd source of nsswitch.conf loaded (a name no source has goes
        // through them all, e.g. libnss_systemd's dlopen), as a login's lookup needs them.
        _ = getpwnam("twostep-warm-up")
        PasswdFileCache.shared?.refresh()
        let request = LoginRequest.encode(user: "warm-up", service: "warm-up", rhost: "", ruser: "", tty: "",
                                          authInfo: "", config: config.path, nullok: false, debug: false)
        var decoder = FrameDecoder()
        _ = try? decoder.feed(Frame(.request, request).encoded())
        _ = try? HelperRequest.decode(request)
        _ = try? UserState.parse(UserState(lastStep: 1, failures: [1]).serialized(), path: "")
        UserStores.prepare(config)
        if let store = try? UserStores.open(config) {
            _ = try? store.hasRecord("warm-up")
            _ = try? store.loadState("warm-up")
        }
    }
}
