import ArgumentParser
import CPAM
import Glibc
import TwoStepHelperKit

struct Try: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a real PAM login against a service, to prove a stack works before you log out.",
        discussion: """
        Runs pam_authenticate and then pam_acct_mgmt for USER against SERVICE, as sshd or sudo \
        would, and relays every prompt to this terminal (answers to hidden prompts are not shown). \
        With --pam-dir the service file is read from that folder instead of /etc/pam.d \
        (pam_start_confdir). Exit status: 0 accepted, 1 refused, 2 error.
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
        var conv = pam_conv(conv: tryConversation, appdata_ptr: nil)
        var handle: OpaquePointer?
        let started: Int32
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
        say("twostep try: \(name) refused by service \(service) at \(stage): \(message)")
        return rc == PAM_AUTH_ERR || rc == PAM_MAXTRIES || rc == PAM_PERM_DENIED || rc == PAM_USER_UNKNOWN
            || rc == PAM_ACCT_EXPIRED || rc == PAM_NEW_AUTHTOK_REQD || rc == PAM_CRED_INSUFFICIENT ? 1 : 2
    }
}

/// The conversation: prompts to the terminal, answers back to PAM in malloc'd memory as
/// libpam expects (it frees them).
private let tryConversation: @convention(c) (
    Int32, UnsafeMutablePointer<UnsafePointer<pam_message>?>?,
    UnsafeMutablePointer<UnsafeMutablePointer<pam_response>?>?, UnsafeMutableRawPointer?
) -> Int32 = { count, messages, responses, _ in
    guard count > 0, count <= 32, let messages, let responses else { return PAM_CONV_ERR }
    guard let replies = calloc(Int(count), MemoryLayout<pam_response>.stride)?
        .bindMemory(to: pam_response.self, capacity: Int(count)) else { return PAM_BUF_ERR }
    for i in 0..<Int(count) {
        guard let m = messages[i] else { free(replies); return PAM_CONV_ERR }
        let text = m.pointee.msg.map { String(cString: $0) } ?? ""
        switch m.pointee.msg_style {
        case PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON:
            guard let answer = readAnswer(prompt: text, echo: m.pointee.msg_style == PAM_PROMPT_ECHO_ON) else {
                for j in 0..<i { free(replies[j].resp) }
                free(replies)
                return PAM_CONV_ERR
            }
            replies[i].resp = strdup(answer)
        case PAM_ERROR_MSG:
            writeStderr(text + "\n")
        default:
            say(text)
        }
    }
    responses.pointee = replies
    return PAM_SUCCESS
}
