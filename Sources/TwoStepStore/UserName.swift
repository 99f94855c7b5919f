// The rule a user name must pass before it names a file in the store.

/// User names we accept: the portable POSIX set, no leading '-' or '.', at most 32 bytes.
/// Anything else never reaches a path.
public func isValidUserName(_ name: String) -> Bool {
    let bytes = Array(name.utf8)
    guard !bytes.isEmpty, bytes.count <= 32, bytes[0] != UInt8(ascii: "-"), bytes[0] != UInt8(ascii: ".") else {
        return false
    }
    for b in bytes {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "."):
            continue
        default:
            return false
        }
    }
    return true
}
