// SPDX-License-Identifier: Apache-2.0
import TwoStepCore
import XCTest

/// Found by the fuzzer (Fuzz/corpus/totp/far-future*): at the far end of time the window
/// must neither trap nor wrap around and refuse the right code.
final class TOTPFarFutureTests: XCTestCase {
    func testWindowAtTheEndOfTimeNeitherTrapsNorWraps() throws {
        let secret = Array("a".utf8)
        let p = OTPParameters(algorithm: .sha1, digits: 6, period: 1)
        for window in [0, 1, 5] {
            let code = try OTP.totp(secret: secret, at: .max, parameters: p)
            XCTAssertEqual(try OTP.matchTOTP(code: code, secret: secret, at: .max, parameters: p, window: window), .max)
        }
    }
}
