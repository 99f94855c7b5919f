// SPDX-License-Identifier: Apache-2.0

/// `T(text)` for decimal text, read from bytes without making a String: an optional `+` or
/// `-`, then one or more ASCII digits and nothing else; nil when the value does not fit
/// (so an unsigned type takes `-0` and no other negative). The state file's numbers are
/// read with it on every login.
@inlinable
public func decimalInteger<T: FixedWidthInteger, C: Collection>(_ bytes: C, as _: T.Type = T.self) -> T?
    where C.Element == UInt8 {
    var i = bytes.startIndex
    guard i != bytes.endIndex else { return nil }
    var negative = false
    if bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") {
        negative = bytes[i] == UInt8(ascii: "-")
        i = bytes.index(after: i)
        guard i != bytes.endIndex else { return nil }
    }
    var value: T = 0
    while i != bytes.endIndex {
        let digit = bytes[i] &- UInt8(ascii: "0")
        guard digit < 10 else { return nil }
        let (shifted, o1) = value.multipliedReportingOverflow(by: 10)
        // Negative values are built downwards, so the type's minimum is reached too.
        let (next, o2) = negative ? shifted.subtractingReportingOverflow(T(digit))
                                  : shifted.addingReportingOverflow(T(digit))
        guard !o1, !o2 else { return nil }
        value = next
        i = bytes.index(after: i)
    }
    return value
}
