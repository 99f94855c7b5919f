import CPAM
import Glibc

/// Confirms a user's password through a PAM service (pam.d/twostep: usually pam_unix),
/// relaying its prompts to the user's Conversation. The helper runs as root, so pam_unix
/// reads the shadow file itself; nothing about the password is kept.
public enum PasswordCheck {
    final class Relay {
        let conversation: Conversation
        init(_ c: Conversation) { conversation = c }
    }

    public static func confirm(user: String, service: String, conversation: Conversation) -> Bool {
        let relay = Relay(conversation)
        let box = Unmanaged.passRetained(relay)
        defer { box.release() }
        var conv = pam_conv(conv: relayConversation, appdata_ptr: box.toOpaque())
        var handle: OpaquePointer?
        guard pam_start(service, user, &conv, &handle) == PAM_SUCCESS, let pamh = handle else { return false }
        var rc = pam_authenticate(pamh, Int32(PAM_DISALLOW_NULL_AUTHTOK))
        if rc == PAM_SUCCESS { rc = pam_acct_mgmt(pamh, 0) }
        pam_end(pamh, rc)
        return rc == PAM_SUCCESS
    }
}

private let relayConversation: @convention(c) (
    Int32, UnsafeMutablePointer<UnsafePointer<pam_message>?>?,
    UnsafeMutablePointer<UnsafeMutablePointer<pam_response>?>?, UnsafeMutableRawPointer?
) -> Int32 = { count, messages, responses, appdata in
    guard count > 0, count <= 32, let messages, let responses, let appdata else { return PAM_CONV_ERR }
    let relay = Unmanaged<PasswordCheck.Relay>.fromOpaque(appdata).takeUnretainedValue()
    guard let replies = calloc(Int(count), MemoryLayout<pam_response>.stride)?
        .bindMemory(to: pam_response.self, capacity: Int(count)) else { return PAM_BUF_ERR }
    func fail() -> Int32 {
        for j in 0..<Int(count) {
            if let r = replies[j].resp {
                explicitWipe(r)
                free(r)
            }
        }
        free(replies)
        return PAM_CONV_ERR
    }
    for i in 0..<Int(count) {
        guard let m = messages[i] else { return fail() }
        let text = m.pointee.msg.map { String(cString: $0) } ?? ""
        switch m.pointee.msg_style {
        case PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON:
            guard let answer = relay.conversation.ask(text, echo: m.pointee.msg_style == PAM_PROMPT_ECHO_ON),
                  let copy = strdup(answer) else { return fail() }
            replies[i].resp = copy
        case PAM_ERROR_MSG:
            relay.conversation.error(text)
        default:
            relay.conversation.info(text)
        }
    }
    responses.pointee = replies
    return PAM_SUCCESS
}

func explicitWipe(_ p: UnsafeMutablePointer<CChar>) {
    let n = strlen(p)
    explicit_bzero(p, n)
}
