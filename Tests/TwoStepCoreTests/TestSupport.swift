// SPDX-License-Identifier: Apache-2.0
import XCTest

func hex(_ text: String) -> [UInt8] {
    precondition(text.count % 2 == 0)
    var out: [UInt8] = []
    var i = text.startIndex
    while i < text.endIndex {
        let j = text.index(i, offsetBy: 2)
        out.append(UInt8(text[i..<j], radix: 16)!)
        i = j
    }
    return out
}

func hexString(_ bytes: [UInt8]) -> String {
    bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
}

func ascii(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Asserts that `body` throws an error equal to `expected`.
func XCTAssertThrowsError<E: Error & Equatable, T>(_ body: @autoclosure () throws -> T, equals expected: E, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try body(), file: file, line: line) { error in
        XCTAssertEqual(error as? E, expected, "got \(error)", file: file, line: line)
    }
}
