import TwoStepProtocol

/// The user on the other end: the PAM conversation (relayed by the module) or the CLI.
public protocol Conversation: AnyObject {
    /// The user's answer, or nil when they could not be asked (the session ends).
    func ask(_ prompt: String, echo: Bool) -> String?
    func info(_ text: String)
    func error(_ text: String)
}

/// A Conversation over the frame protocol.
public final class FrameConversation: Conversation {
    let channel: FrameChannel
    public private(set) var broken = false

    public init(channel: FrameChannel) { self.channel = channel }

    public func ask(_ prompt: String, echo: Bool) -> String? {
        guard !broken else { return nil }
        do {
            try channel.send(Frame(echo ? .promptEchoOn : .promptEchoOff, text: prompt))
            let reply = try channel.receive()
            switch reply.type {
            case .answer:
                var bytes = reply.payload
                defer { for i in bytes.indices { bytes[i] = 0 } }
                return String(decoding: bytes, as: UTF8.self)
            default:
                broken = true
                return nil
            }
        } catch {
            broken = true
            return nil
        }
    }

    public func info(_ text: String) { send(.info, text) }
    public func error(_ text: String) { send(.error, text) }

    func send(_ type: FrameType, _ text: String) {
        guard !broken else { return }
        do { try channel.send(Frame(type, text: text)) } catch { broken = true }
    }
}
