import Glibc

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
        }
    }
}

/// User names we accept: anything NSS may resolve (directory users such as
/// `alice@corp.example.com` or `CORP\\alice`), 1 to 256 bytes, no control characters.
/// File names come from `UserFileName`, never from the name itself.
public func isValidUserName(_ name: String) -> Bool {
    let bytes = Array(name.utf8)
    guard !bytes.isEmpty, bytes.count <= 256 else { return false }
    return !bytes.contains { $0 < 0x20 || $0 == 0x7f }
}

/// The names every earlier version accepted (POSIX portable set, no leading '-' or '.',
/// at most 32 bytes): they keep their file names unchanged.
public func isPlainUserName(_ name: String) -> Bool {
    let bytes = Array(name.utf8)
    guard !bytes.isEmpty, bytes.count <= 32, bytes[0] != UInt8(ascii: "-"), bytes[0] != UInt8(ascii: ".") else {
        return false
    }
    return bytes.allSatisfy(isPlainByte)
}

func isPlainByte(_ b: UInt8) -> Bool {
    switch b {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
         UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "."):
        return true
    default:
        return false
    }
}
