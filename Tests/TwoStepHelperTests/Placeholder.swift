import XCTest
final class PlaceholderTwoStepHelperTests: XCTestCase { func testNothing() {} }
