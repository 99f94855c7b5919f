// SPDX-License-Identifier: Apache-2.0
import Glibc
import TwoStepCore

/// Everything the store can refuse, each with a message an admin can act on.
public enum StoreError: Error, CustomStringConvertible, Equatable {
    case io(path: String, operation: String, errno: Int32)
    case unsafe(path: String, reason: String)
    case damaged(path: String, reason: String)
    case tooLarge(path: String, limit: Int)
    case keyMissing(id: String)
    case badKey(String)
    case invalidUser(String)
    case config(path: String, line: Int, message: String)
    case notEnrolled(String)
    case alreadyEnrolled(String)
    /// An operation declined for the reason given (the whole message).
    case refused(String)

    public var description: String {
        switch self {
        case let .io(path, op, e):
            return "\(path): \(op) failed: \(String(cString: strerror(e)))"
        case let .unsafe(path, reason):
            return "\(path): refusing unsafe file: \(reason)"
        case let .damaged(path, reason):
            return "\(path): damaged: \(reason)"
        case let .tooLarge(path, limit):
            return "\(path): larger than \(limit) bytes"
        case let .keyMissing(id):
            return "master key \(id) not found (neither in key_dir nor CONFIG_ENCRYPTION_KEY)"
        case let .badKey(why):
            return "master key: \(why)"
        case let .invalidUser(name):
            return "invalid user name \(jsonString(String(name.prefix(64))))"
        case let .config(path, line, message):
            return line > 0 ? "\(path):\(line): \(message)" : "\(path): \(message)"
        case let .notEnrolled(user):
            return "\(user) is not enrolled"
        case let .alreadyEnrolled(user):
            return "\(user) is already enrolled"
        case let .refused(why):
            return why
        }
    }
}

extension StoreError {
    /// A record of an older generation than its state names: a restored copy (both stores).
    public static func restoredCopy(path: String, generation: UInt64, stateGeneration: UInt64) -> StoreError {
        .damaged(path: path, reason: "older than its state (generation \(generation), state has \(stateGeneration)): " +
                                     "a restored copy is refused")
    }

    /// A damaged state met by a record write, which must not start a fresh one (both stores).
    public static func damagedStateNeedsUnlock(path: String, reason: String, user: String) -> StoreError {
        .damaged(path: path, reason: reason + " (`twostep admin unlock \(user)` repairs it)")
    }
}
