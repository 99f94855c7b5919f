// SPDX-License-Identifier: Apache-2.0
#if !TWOSTEP_LEAN
import CPAM
#endif
import Glibc
import TwoStepCrypto

/// The user on the other end: the PAM conversation (relayed by the module), the CLI's
/// terminal, or a libpam stack asking through `PAMConversation`.
public protocol Conversation: AnyObject {
    /// The user's answer, or nil when they could not be asked (the session ends). The
    /// answer stays in SecretBytes (wiped when released) up to the comparison.
    func ask(_ prompt: String, echo: Bool) -> SecretBytes?
    func info(_ text: String)
    func error(_ text: String)
}

#if !TWOSTEP_LEAN  // twostep-verify (the lean login helper) links no libpam
/// The one `pam_conv` callback of the helper and the CLI: libpam's prompts go to a
/// Conversation, its answers come back in malloc'd C strings (libpam frees them), and on
/// any failure every answer already copied is wiped before it is freed. Used by the
/// password check (pam.d/twostep) and by `twostep try`.
public final class PAMConversation {
    let conversation: Conversation
    /// Set when a prompt got no answer (the user's side of the conversation ended).
    public internal(set) var abandoned = false

    public init(_ conversation: Conversation) { self.conversation = conversation }

    /// Runs `body` with a pam_conv that speaks to this conversation.
    public func withPAMConv<R>(_ body: (inout pam_conv) -> R) -> R {
        let box = Unmanaged.passRetained(self)
        defer { box.release() }
        var conv = pam_conv(conv: pamConversationCallback, appdata_ptr: box.toOpaque())
        return body(&conv)
    }

    /// Wipes and frees a C string that held an answer.
    static func wipeAndFree(_ p: UnsafeMutablePointer<CChar>?) {
        guard let p else { return }
        explicit_bzero(p, strlen(p))
        free(p)
    }

    /// A malloc'd, NUL-terminated copy of the answer; nil if it holds a NUL or malloc fails.
    static func cString(_ answer: SecretBytes) -> UnsafeMutablePointer<CChar>? {
        answer.withBytes { bytes in
            guard !bytes.contains(0), let p = malloc(bytes.count + 1)?.bindMemory(to: CChar.self, capacity: bytes.count + 1) else {
                return nil
            }
            for (i, b) in bytes.enumerated() { p[i] = CChar(bitPattern: b) }
            p[bytes.count] = 0
            return p
        }
    }
}

private let pamConversationCallback: @convention(c) (
    Int32, UnsafeMutablePointer<UnsafePointer<pam_message>?>?,
    UnsafeMutablePointer<UnsafeMutablePointer<pam_response>?>?, UnsafeMutableRawPointer?
) -> Int32 = { count, messages, responses, appdata in
    guard count > 0, count <= 32, let messages, let responses, let appdata else { return PAM_CONV_ERR }
    let bridge = Unmanaged<PAMConversation>.fromOpaque(appdata).takeUnretainedValue()
    guard let replies = calloc(Int(count), MemoryLayout<pam_response>.stride)?
        .bindMemory(to: pam_response.self, capacity: Int(count)) else { return PAM_BUF_ERR }
    func fail() -> Int32 {
        for j in 0..<Int(count) { PAMConversation.wipeAndFree(replies[j].resp) }
        free(replies)
        return PAM_CONV_ERR
    }
    for i in 0..<Int(count) {
        guard let m = messages[i] else { return fail() }
        let text = m.pointee.msg.map { String(cString: $0) } ?? ""
        switch m.pointee.msg_style {
        case PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON:
            guard let answer = bridge.conversation.ask(text, echo: m.pointee.msg_style == PAM_PROMPT_ECHO_ON) else {
                bridge.abandoned = true
                return fail()
            }
            guard let copy = PAMConversation.cString(answer) else { return fail() }
            replies[i].resp = copy
        case PAM_ERROR_MSG:
            bridge.conversation.error(text)
        default:
            bridge.conversation.info(text)
        }
    }
    responses.pointee = replies
    return PAM_SUCCESS
}
#endif

/// The sheet of new backup codes shown once, at enrolment or at a mailed invitation's first
/// code (here, not in Wizard.swift, so the lean login helper has it without the QR code).
public func backupCodesText(_ codes: [String]) -> String {
    var text = "Step 3 of 3: your backup codes. Each works once, in place of a code, if you lose\n"
    text += "your phone. Store them somewhere safe: they are shown only now.\n\n"
    for pair in stride(from: 0, to: codes.count, by: 2) {
        text += "    " + codes[pair] + (pair + 1 < codes.count ? "    " + codes[pair + 1] : "") + "\n"
    }
    return text
}
