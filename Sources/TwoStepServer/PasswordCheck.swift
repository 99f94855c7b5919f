// SPDX-License-Identifier: Apache-2.0
import CPAM
import Glibc
import TwoStepService

/// Confirms a user's password through a PAM service (pam.d/twostep: usually pam_unix),
/// relaying its prompts to the user's Conversation. The helper runs as root, so pam_unix
/// reads the shadow file itself; nothing about the password is kept.
public enum PasswordCheck {
    public static func confirm(user: String, service: String, conversation: Conversation) -> Bool {
        PAMConversation(conversation).withPAMConv { conv in
            var handle: OpaquePointer?
            guard pam_start(service, user, &conv, &handle) == PAM_SUCCESS, let pamh = handle else { return false }
            var rc = pam_authenticate(pamh, Int32(PAM_DISALLOW_NULL_AUTHTOK))
            if rc == PAM_SUCCESS { rc = pam_acct_mgmt(pamh, 0) }
            pam_end(pamh, rc)
            return rc == PAM_SUCCESS
        }
    }
}
