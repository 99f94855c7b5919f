// SPDX-License-Identifier: Apache-2.0
import CPAM
import Glibc
import TwoStepService

/// Confirms a user's password through a PAM service (pam.d/twostep: usually pam_unix),
/// relaying its prompts to the user's Conversation. The helper runs as root, so pam_unix
/// reads the shadow file itself; nothing about the password is kept.
public enum PasswordCheck {
    /// What the stack returns when the conversation could not go on: pam_unix says
    /// PAM_AUTHTOK_ERR (libpam's pam_get_authtok turns a failed prompt into it), others
    /// PAM_CONV_ERR or PAM_ABORT.
    static let conversationEnded: Set<Int32> = [PAM_CONV_ERR, PAM_ABORT, PAM_INCOMPLETE, PAM_CONV_AGAIN,
                                                 PAM_AUTHTOK_ERR, PAM_AUTHTOK_RECOVERY_ERR]

    /// `.confirmed` when pam_authenticate and pam_acct_mgmt both succeed. `.cancelled` only
    /// when the user's side left at a prompt (no answer came) and pam_authenticate ended
    /// with a conversation error because of it; any other refusal (PAM_AUTH_ERR, an account
    /// refused, a module's error, a wrong password followed by an abandoned prompt of a
    /// later module) is `.wrong`, so it counts against the limiter.
    public static func confirm(user: String, service: String, conversation: Conversation) -> PasswordOutcome {
        let bridge = PAMConversation(conversation)
        return bridge.withPAMConv { conv in
            var handle: OpaquePointer?
            guard pam_start(service, user, &conv, &handle) == PAM_SUCCESS, let pamh = handle else { return .wrong }
            var rc = pam_authenticate(pamh, Int32(PAM_DISALLOW_NULL_AUTHTOK))
            let cancelled = rc != PAM_SUCCESS && bridge.abandoned && conversationEnded.contains(rc)
            if rc == PAM_SUCCESS { rc = pam_acct_mgmt(pamh, 0) }
            pam_end(pamh, rc)
            if rc == PAM_SUCCESS { return .confirmed }
            return cancelled ? .cancelled : .wrong
        }
    }
}
