// SPDX-License-Identifier: Apache-2.0
import TwoStepCrypto
import TwoStepProtocol
import TwoStepService
import TwoStepSystem

/// The helper's end of one dialogue with the module or the CLI: frames through the
/// protocol's Dialogue table (which frame is allowed when), spoken as a Conversation.
/// Anything the table refuses ends the dialogue; the caller then gets a system error.
public final class HelperLink: Conversation {
    let stream: FrameStream
    var dialogue = Dialogue()
    public private(set) var broken = false

    /// Where the request comes from when not from `stream`: a pipe from twostep-verify,
    /// which read the module's request and handed the login over (`pam --request-fd`).
    let requestStream: FrameStream?

    /// `requestSeconds`: how long the caller may take to send its request.
    init(_ stream: FrameStream, requestSeconds: Int64, requestStream: FrameStream? = nil) {
        self.stream = stream
        self.requestStream = requestStream
        stream.deadline = Sys.monotonicSeconds() + requestSeconds
        requestStream?.deadline = stream.deadline
    }

    /// The caller's request, or nil (logged by the caller's caller) when it is missing,
    /// malformed or not a request.
    func receiveRequest() -> HelperRequest? {
        do {
            let frame = try (requestStream ?? stream).receive()
            try dialogue.received(frame.type)
            let request = try HelperRequest.decode(frame.payload)
            if case .selfService = request { dialogue.allowsData = true }
            return request
        } catch {
            broken = true
            return nil
        }
    }

    /// Sends a frame the table allows now; false (and the dialogue is over) otherwise.
    @discardableResult
    func send(_ frame: Frame) -> Bool {
        guard !broken else { return false }
        do {
            try dialogue.sending(frame.type)
            try stream.send(frame)
            return true
        } catch {
            broken = true
            return false
        }
    }

    /// The verdict, whatever state the dialogue is in.
    func finish(_ verdict: Verdict) {
        broken = false
        _ = try? dialogue.sending(.result)
        try? stream.send(Frame(.result, [verdict.rawValue]))
    }

    func sendData(_ data: ServiceData) { send(Frame(.data, data.encoded())) }

    // MARK: Conversation

    public func ask(_ prompt: String, echo: Bool) -> SecretBytes? {
        guard send(Frame(echo ? .promptEchoOn : .promptEchoOff, text: prompt)) else { return nil }
        do {
            var reply = try stream.receive()
            try dialogue.received(reply.type)
            guard reply.type == .answer else {
                broken = true   // conversationFailed: the caller could not ask
                return nil
            }
            // `reply` is the payload's only owner: the wipe reaches the bytes themselves.
            let answer = SecretBytes(reply.payload)
            Crypto.wipe(&reply.payload)
            return answer
        } catch {
            broken = true
            return nil
        }
    }

    public func info(_ text: String) { send(Frame(.info, text: text)) }
    public func error(_ text: String) { send(Frame(.error, text: text)) }
}
