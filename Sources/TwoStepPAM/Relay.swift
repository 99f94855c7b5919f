// SPDX-License-Identifier: Apache-2.0
// The relay: the helper's prompts and messages become conversation calls, the user's
// answers go back, and the helper's one-byte verdict becomes the PAM code. Which frame the
// helper may send is decided by one table; anything else ends the session, fail-closed.
import PAMShim
import TwoStepProtocol

/// What the module does with each frame type the helper is allowed to send.
enum HelperFrameAction {
    case prompt(style: Int32)
    case message(style: Int32)
    case result

    /// nil: the helper may not send this type to the module.
    init?(_ type: FrameType) {
        switch type {
        case .promptEchoOff: self = .prompt(style: TWOSTEP_PAM_PROMPT_ECHO_OFF)
        case .promptEchoOn: self = .prompt(style: TWOSTEP_PAM_PROMPT_ECHO_ON)
        case .info: self = .message(style: TWOSTEP_PAM_TEXT_INFO)
        case .error: self = .message(style: TWOSTEP_PAM_ERROR_MSG)
        case .result: self = .result
        case .request, .answer, .conversationFailed, .data: return nil
        }
    }
}

/// The PAM code for each verdict.
func pamCode(for verdict: Verdict) -> Int32 {
    switch verdict {
    case .success: return TWOSTEP_PAM_SUCCESS
    case .failure: return TWOSTEP_PAM_AUTH_ERR
    case .ignore: return TWOSTEP_PAM_IGNORE
    case .notEnrolled: return TWOSTEP_PAM_AUTH_ERR
    case .lockedOut: return TWOSTEP_PAM_MAXTRIES
    case .systemError: return TWOSTEP_PAM_AUTHINFO_UNAVAIL
    case .conversationError: return TWOSTEP_PAM_CONV_ERR
    case .denied: return TWOSTEP_PAM_AUTH_ERR
    }
}

/// How a relay session ended.
enum RelayEnd {
    /// The helper gave a verdict (or a byte that is not one: nil).
    case verdict(Verdict?, rawByte: UInt8)
    /// The session ended early; `code` is the PAM code to return.
    case aborted(code: Int32, reason: String)
    /// The user could not be asked (or answered too much) and the helper was told so
    /// (conversationFailed); it may close the session on its side, as after a verdict.
    case abandoned(code: Int32, reason: String)
}

struct Relay {
    let pam: PAMHandle
    let connection: HelperConnection
    let timeoutMilliseconds: Int64
    let silent: Bool
    /// forward_pass: the helper's combined prompt is split here (ForwardPass.swift).
    var forwardPass = false

    /// `request`: the encoded LoginRequest, already checked against the payload limit;
    /// `alreadySent` when openLink sent it to a server (which answered in time).
    func run(request: [UInt8], alreadySent: Bool = false) -> RelayEnd {
        if !alreadySent, case .failure(let f) = connection.send(Frame(.request, request)) {
            return .aborted(code: TWOSTEP_PAM_SYSTEM_ERR, reason: f.message)
        }
        pam.debugLog("sent request")
        var deadline = monotonicMilliseconds() + timeoutMilliseconds
        while true {
            let frame: Frame
            switch connection.receive(deadline: deadline) {
            case .success(let f): frame = f
            case .failure(let f): return .aborted(code: TWOSTEP_PAM_SYSTEM_ERR, reason: f.message)
            }
            pam.debugLog("received \(frame.type.name) (\(frame.payload.count) bytes)")
            guard let action = HelperFrameAction(frame.type) else {
                return .aborted(code: TWOSTEP_PAM_SYSTEM_ERR,
                                reason: "helper sent a \(frame.type.name) frame, which it may not send")
            }
            switch action {
            case .result:
                guard frame.payload.count == 1, let byte = frame.payload.first else {
                    return .aborted(code: TWOSTEP_PAM_SYSTEM_ERR, reason: "malformed result frame")
                }
                return .verdict(Verdict(rawValue: byte), rawByte: byte)

            case .message(let style):
                if silent && style == TWOSTEP_PAM_TEXT_INFO { continue }
                let rc = withCText(frame.payload) { pam.show(style: style, $0) }
                if rc != TWOSTEP_PAM_SUCCESS {
                    // Only a message was lost; the dialogue itself can go on.
                    pam.debugLog("conversation failed to show a message (\(rc))")
                }

            case .prompt(let style):
                if let end = relayPrompt(style: style, text: frame.payload) { return end }
                // The user may type slowly; the helper's own silence is what is capped.
                deadline = monotonicMilliseconds() + timeoutMilliseconds
            }
        }
    }

    /// Asks the user and forwards the answer; returns a RelayEnd only when the session ends.
    private func relayPrompt(style: Int32, text: [UInt8]) -> RelayEnd? {
        let combinedDigits = forwardPass ? CombinedPrompt.digits(text) : nil
        let sent = withCText(text) { cText in
            pam.prompt(style: style, cText) { answer -> AnswerOutcome in
                guard answer.count <= ProtocolLimits.maxAnswer else { return .tooLong }
                let result = combinedDigits.map { forwardPassAnswer(answer, digits: $0) } ?? connection.sendAnswer(answer)
                switch result {
                case .success: return .sent
                case .failure(let f): return .channel(f)
                }
            }
        }
        switch sent {
        case .failure(let code):
            return tellHelper(code: TWOSTEP_PAM_CONV_ERR, reason: "conversation failed (\(code.rawValue))")
        case .success(.tooLong):
            // Longer than any code or password the helper accepts: a wrong answer, never relayed.
            return tellHelper(code: TWOSTEP_PAM_AUTH_ERR, reason: "answer too long")
        case .success(.channel(let f)):
            return .aborted(code: TWOSTEP_PAM_SYSTEM_ERR, reason: f.message)
        case .success(.sent):
            pam.debugLog("sent answer")
            return nil
        }
    }
}

extension Relay {
    /// Sends conversationFailed instead of an answer.
    fileprivate func tellHelper(code: Int32, reason: String) -> RelayEnd {
        switch connection.send(Frame(.conversationFailed)) {
        case .success: return .abandoned(code: code, reason: reason)
        case .failure: return .aborted(code: code, reason: reason)
        }
    }
}

private enum AnswerOutcome {
    case sent
    case tooLong
    case channel(HelperConnectionError)
}

/// Calls `body` with the bytes as a NUL-terminated C string (an embedded NUL ends it).
func withCText<T>(_ bytes: [UInt8], _ body: (UnsafePointer<CChar>) -> T) -> T {
    var text = bytes.map { CChar(bitPattern: $0) }
    text.append(0)
    return text.withUnsafeBufferPointer { buf in
        // Never nil: `text` holds at least the terminator.
        guard let base = buf.baseAddress else { return "".withCString(body) }
        return body(base)
    }
}
