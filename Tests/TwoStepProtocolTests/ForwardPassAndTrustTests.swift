// SPDX-License-Identifier: Apache-2.0
import TwoStepProtocol
import XCTest

final class ForwardPassProtocolTests: XCTestCase {
    func testForwardPassFlagRoundTripsAndOldFramesLackIt() throws {
        var request = LoginRequest(user: "alice", service: "sshd")
        XCTAssertFalse(String(decoding: request.encoded(), as: UTF8.self).contains("forward_pass"))
        request.forwardPass = true
        XCTAssertEqual(try HelperRequest.decode(request.encoded()), .login(request))
    }

    func testCombinedPromptCarriesTheCodeLengthAfterItsText() {
        for digits in [6, 8] {
            let payload = Array(CombinedPrompt.encode(digits: digits).utf8)
            XCTAssertEqual(CombinedPrompt.digits(payload), digits)
            // What a module that does not split shows: the text before the NUL.
            XCTAssertEqual(String(decoding: payload.prefix { $0 != 0 }, as: UTF8.self), "Password and verification code: ")
        }
        XCTAssertNil(CombinedPrompt.digits(Array("Verification code: ".utf8)))
        XCTAssertNil(CombinedPrompt.digits(Array("x\u{0}digits=7".utf8)))
        XCTAssertNil(CombinedPrompt.digits(Array("x\u{0}digits=66".utf8)))
    }

    func testForgetNeedsAFingerprintAndOnlyForgetTakesOne() throws {
        var forget = SelfServiceRequest(command: .forget)
        XCTAssertThrowsError(try HelperRequest.decode(forget.encoded()))
        forget.fingerprint = "SHA256:abc"
        XCTAssertEqual(try HelperRequest.decode(forget.encoded()), .selfService(forget))
        var status = SelfServiceRequest(command: .status)
        status.fingerprint = "all"
        XCTAssertThrowsError(try HelperRequest.decode(status.encoded()))
    }
}
