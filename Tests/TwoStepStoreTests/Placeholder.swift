import XCTest
final class PlaceholderTwoStepStoreTests: XCTestCase { func testNothing() {} }
