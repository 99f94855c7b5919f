// SPDX-License-Identifier: Apache-2.0
// The rule a user name must pass before the store takes it (file names: UserFileName).
import TwoStepCore

/// User names we accept: anything NSS may resolve (directory users such as
/// `alice@corp.example.com` or `CORP\\alice`), 1 to 256 bytes, nothing that would act on
/// a terminal or reorder text when the name is printed (`isDisplayControl`).
/// File names come from `UserFileName`, never from the name itself.
public func isValidUserName(_ name: String) -> Bool {
    let count = name.utf8.count
    guard count > 0, count <= 256 else { return false }
    return !name.unicodeScalars.contains { isDisplayControl($0) }
}

/// `text` with every `isDisplayControl` character replaced by `?`: for printing what
/// someone else chose (an audit line's user name, a file's contents) on an admin's terminal.
public func displaySafe(_ text: String) -> String {
    guard text.unicodeScalars.contains(where: isDisplayControl) else { return text }
    var out = String.UnicodeScalarView()
    for c in text.unicodeScalars { out.append(isDisplayControl(c) ? "?" : c) }
    return String(out)
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
