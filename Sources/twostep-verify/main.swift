// SPDX-License-Identifier: Apache-2.0
import Glibc
import TwoStepCrypto
import TwoStepServer
import TwoStepStore
import TwoStepSystem

// twostep-verify: the helper pam_twostep.so spawns when no running helper answers. It does
// one login and nothing else, from the same sources as twostep-helper's `pam` mode, linked
// fully static (no libpam, libqrencode, libpng or shared C++ runtime) so that exec to main
// costs little. Enrolment at first login and a database store are handed to twostep-helper.
guard resetInheritedState() else {
    writeStderr("twostep-verify: cannot drop the caller's ids\n")
    exit(1)
}
// One argument, read from argv itself (CommandLine.arguments builds a [String] of them all).
let argument = CommandLine.argc == 2 ? CommandLine.unsafeArgv[1].map { String(cString: $0) } : nil
if argument == "--version" {
    writeStdout("twostep-verify 0.1.0\n")
    exit(0)
}
guard argument == "pam" else {
    writeStderr("usage: twostep-verify pam   (started by pam_twostep.so; see twostep-helper(8))\n")
    exit(2)
}
leaveCallerSession()
// Before any other OpenSSL call: no openssl.cnf, no fetch-all of the default provider's
// ciphers. When it declines (FIPS mode), logins go to twostep-helper (LeanLogin).
LeanLogin.cryptoReady = Crypto.startForOneLogin()
if let limit = limitTooLow() {
    AuditLog.syslogLine(LOG_ERR, "helper: refusing a login: \(limit) set by the caller is too low and cannot be raised")
    exit(1)
}
exit(LoginSession.run())
