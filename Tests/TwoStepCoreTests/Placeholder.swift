import XCTest
final class PlaceholderTwoStepCoreTests: XCTestCase { func testNothing() {} }
