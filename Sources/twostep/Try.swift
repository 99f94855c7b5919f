// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import CPAM
import Glibc
import TwoStepService

struct Try: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a real PAM login against a service, to prove a stack works before you log out.",
        discussion: """
        Runs pam_authenticate and then pam_acct_mgmt for USER against SERVICE, as sshd or sudo \
        would, and relays every prompt to this terminal (answers to hidden prompts are not shown). \
        With --pam-dir the service file is read from that folder instead of /etc/pam.d \
        (pam_start_confdir). The service needs `account` lines as well as `auth` lines (e.g. \
        `account required pam_permit.so`): libpam refuses the account check of a stack without \
        them, as it would for sshd. Exit status: 0 accepted, 1 refused, 2 error.
        """)

    @Option(help: "The PAM service to try.") var service: String = "sshd"
    @Option(help: "Read the service from this folder instead of /etc/pam.d.") var pamDir: String?
    @Option(help: "The user who logs in (default: you).") var user: String?
    @Option(help: .hidden) var rounds: Int = 1

    func run() throws {
        let name = user ?? invokingUser()
        var status: Int32 = 0
        for _ in 0..<max(1, rounds) {
            status = runOnce(name)
        }
        if status != 0 { throw ExitCode(status) }
    }

    func runOnce(_ name: String) -> Int32 {
        // The terminal, through the one pam_conv bridge (answers wiped on every path).
        PAMConversation(TerminalConversation()).withPAMConv { conv in login(name, conv: &conv) }
    }

    func login(_ name: String, conv: inout pam_conv) -> Int32 {
        var handle: OpaquePointer?
        let started: Int32
        // libpam falls back to `other` for a service with no file; in a folder of the
        // caller's own, a missing file is more likely a typo: say which.
        if let dir = pamDir, access(dir + "/" + service, F_OK) != 0, access(dir + "/other", F_OK) != 0 {
            say("twostep try: no service file \(dir)/\(service) (and no \(dir)/other)")
            return 2
        }
        if let dir = pamDir {
            started = pam_start_confdir(service, name, &conv, dir, &handle)
        } else {
            started = pam_start(service, name, &conv, &handle)
        }
        guard started == PAM_SUCCESS, let pamh = handle else {
            say("twostep try: pam_start failed (\(started))")
            return 2
        }
        var rc = pam_authenticate(pamh, 0)
        var stage = "authentication"
        if rc == PAM_SUCCESS {
            rc = pam_acct_mgmt(pamh, 0)
            stage = "account check"
        }
        let message = String(cString: pam_strerror(pamh, rc))
        pam_end(pamh, rc)
        if rc == PAM_SUCCESS {
            say("twostep try: \(name) accepted by service \(service)")
            return 0
        }
        let hint = stage == "account check" && rc == PAM_PERM_DENIED
            ? " (a service with no `account` lines is refused here too)" : ""
        say("twostep try: \(name) refused by service \(service) at \(stage): \(message)\(hint)")
        return rc == PAM_AUTH_ERR || rc == PAM_MAXTRIES || rc == PAM_PERM_DENIED || rc == PAM_USER_UNKNOWN
            || rc == PAM_ACCT_EXPIRED || rc == PAM_NEW_AUTHTOK_REQD || rc == PAM_CRED_INSUFFICIENT ? 1 : 2
    }
}
