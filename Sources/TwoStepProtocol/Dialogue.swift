// SPDX-License-Identifier: Apache-2.0
// Which frame is allowed when, on the helper's side of a dialogue: the OpenSSH monitor's
// dispatch table, for our closed set of frames. The module has its own table for what the
// helper may send it (TwoStepPAM/Relay.swift); this one is the helper's.

public enum DialogueState: Equatable, Sendable {
    /// Nothing received yet: the caller must send one request.
    case awaitingRequest
    /// The helper speaks: messages, prompts, data (self-service only), the result.
    case helperTurn
    /// A prompt is out: the caller must answer it or say it could not ask.
    case awaitingAnswer
    /// The result is sent; nothing more either way.
    case finished
}

public struct Dialogue: Sendable {
    public private(set) var state: DialogueState = .awaitingRequest
    /// Self-service dialogues may send `data` frames; logins may not.
    public var allowsData = false

    public init() {}

    /// What a frame from the caller does in the current state; throws for anything the
    /// table does not allow (the session then ends, fail-closed).
    public mutating func received(_ type: FrameType) throws(FrameError) {
        switch (state, type) {
        case (.awaitingRequest, .request): state = .helperTurn
        case (.awaitingAnswer, .answer), (.awaitingAnswer, .conversationFailed): state = .helperTurn
        default:
            state = .finished
            try FrameError.raise(.unexpected(type))
        }
    }

    /// Whether the helper may send `type` now; advances the state when it may.
    public mutating func sending(_ type: FrameType) throws(FrameError) {
        switch (state, type) {
        case (.helperTurn, .info), (.helperTurn, .error): break
        case (.helperTurn, .data) where allowsData: break
        case (.helperTurn, .promptEchoOff), (.helperTurn, .promptEchoOn): state = .awaitingAnswer
        // A result may end a dialogue at any point but after the end (a refused request
        // still gets its verdict).
        case (.awaitingRequest, .result), (.helperTurn, .result), (.awaitingAnswer, .result): state = .finished
        default: try FrameError.raise(.unexpected(type))
        }
    }
}
