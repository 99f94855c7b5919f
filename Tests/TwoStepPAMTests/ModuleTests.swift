// SPDX-License-Identifier: Apache-2.0
import Glibc
import PAMShim
@testable import TwoStepPAM
import TwoStepProtocol
import XCTest

/// The module's argument table: every token it knows, and refusal of anything else.
final class ModuleOptionsTests: XCTestCase {
    private func parse(_ args: [String]) -> Result<ModuleOptions, OptionError> { parseModuleOptions(args) }

    func testDefaultsWithoutArguments() throws {
        let o = try parse([]).get()
        XCTAssertEqual(o.config, "/etc/twostep/twostep.conf")
        XCTAssertEqual(o.helper, "/usr/libexec/twostep/twostep-verify")
        // The running helper first (systemd socket activation); spawning is the fallback.
        XCTAssertEqual(o.socket, "/run/twostep/verify.sock")
        XCTAssertFalse(o.nullok)
        XCTAssertFalse(o.debug)
        XCTAssertEqual(o.timeoutSeconds, 30)
    }

    func testEveryKnownArgumentIsApplied() throws {
        let o = try parse(["config=/etc/x.conf", "helper=/opt/h", "socket=/run/t.sock", "timeout=600",
                           "nullok", "debug"]).get()
        XCTAssertEqual(o.config, "/etc/x.conf")
        XCTAssertEqual(o.helper, "/opt/h")
        XCTAssertEqual(o.socket, "/run/t.sock")
        XCTAssertEqual(o.timeoutSeconds, 600)
        XCTAssertTrue(o.nullok)
        XCTAssertTrue(o.debug)
    }

    func testSocketNoneAlwaysSpawns() throws {
        XCTAssertNil(try parse(["socket=none"]).get().socket)
        XCTAssertNil(try parse(["socket=/run/t.sock", "socket=none"]).get().socket)
    }

    func testUnknownOrMalformedArgumentsAreRefused() {
        let refused = ["nulok", "config", "config=relative.conf", "helper=bin/h", "socket=run/s",
                       "socket=/" + String(repeating: "s", count: 107), "timeout=0", "timeout=601",
                       "timeout=+5", "timeout=1000", "timeout=", "nullok=1", "debug=yes", "=x", ""]
        for arg in refused {
            guard case .failure = parse([arg]) else { return XCTFail("\(arg) accepted") }
        }
        guard case .failure(.unknown("nulok")) = parse(["nullok", "nulok"]) else {
            return XCTFail("an unknown argument after a known one must still fail")
        }
    }
}

/// The relay's dispatch table: what the helper may send the module, and what it becomes.
final class RelayTableTests: XCTestCase {
    func testOnlyHelperFramesAreAccepted() {
        let allowed: [FrameType] = [.promptEchoOff, .promptEchoOn, .info, .error, .result]
        let refused: [FrameType] = [.request, .answer, .conversationFailed, .data]
        for t in allowed { XCTAssertNotNil(HelperFrameAction(t), t.name) }
        for t in refused { XCTAssertNil(HelperFrameAction(t), t.name) }
    }

    func testPromptsAndMessagesKeepTheirPAMStyle() {
        guard case .prompt(let off)? = HelperFrameAction(.promptEchoOff),
              case .prompt(let on)? = HelperFrameAction(.promptEchoOn),
              case .message(let info)? = HelperFrameAction(.info),
              case .message(let error)? = HelperFrameAction(.error),
              case .result? = HelperFrameAction(.result) else { return XCTFail("table changed shape") }
        XCTAssertEqual(off, TWOSTEP_PAM_PROMPT_ECHO_OFF)
        XCTAssertEqual(on, TWOSTEP_PAM_PROMPT_ECHO_ON)
        XCTAssertEqual(info, TWOSTEP_PAM_TEXT_INFO)
        XCTAssertEqual(error, TWOSTEP_PAM_ERROR_MSG)
    }

    func testEveryVerdictHasItsPAMCode() {
        let expected: [Verdict: Int32] = [
            .success: TWOSTEP_PAM_SUCCESS, .failure: TWOSTEP_PAM_AUTH_ERR, .ignore: TWOSTEP_PAM_IGNORE,
            .notEnrolled: TWOSTEP_PAM_AUTH_ERR, .lockedOut: TWOSTEP_PAM_MAXTRIES,
            .systemError: TWOSTEP_PAM_AUTHINFO_UNAVAIL, .conversationError: TWOSTEP_PAM_CONV_ERR,
            .denied: TWOSTEP_PAM_AUTH_ERR,
        ]
        for v in Verdict.allCases { XCTAssertEqual(pamCode(for: v), expected[v], v.name) }
    }
}

/// The module's reader over a real socket: frames split across writes, garbage, EOF.
final class HelperConnectionTests: XCTestCase {
    private func pair() -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        return (fds[0], fds[1])
    }

    private func deadline() -> Int64 { monotonicMilliseconds() + 2000 }

    func testFramesArriveWholeAndOneAtATime() throws {
        let (a, b) = pair()
        defer { close(a); close(b) }
        let bytes = Frame(.info, text: "hello").encoded() + Frame(.result, [0]).encoded()
        for byte in bytes { XCTAssertEqual(write(b, [byte], 1), 1) }
        let c = HelperConnection(fd: a)
        XCTAssertEqual(try c.receive(deadline: deadline()).get(), Frame(.info, text: "hello"))
        XCTAssertEqual(try c.receive(deadline: deadline()).get(), Frame(.result, [0]))
        close(b)
        guard case .failure(.endOfStream) = c.receive(deadline: deadline()) else { return XCTFail("clean EOF") }
    }

    func testTruncatedGarbageAndSilenceFailClosed() {
        let (a, b) = pair()
        defer { close(a) }
        let c = HelperConnection(fd: a)
        _ = write(b, [0x7F, 0, 0, 0, 0], 5)
        guard case .failure(.malformed) = c.receive(deadline: deadline()) else { return XCTFail("garbage accepted") }
        let (d, e) = pair()
        defer { close(d) }
        _ = write(e, Array(Frame(.info, text: "cut").encoded().dropLast()), 7)
        close(e)
        guard case .failure(.truncated) = HelperConnection(fd: d).receive(deadline: deadline()) else {
            return XCTFail("a cut frame accepted")
        }
        guard case .failure(.timedOut) = c.receive(deadline: monotonicMilliseconds() + 50) else {
            return XCTFail("silence not timed out")
        }
        close(b)
    }
}

/// forward_pass: where the password ends and the code begins.
final class CombinedAnswerTests: XCTestCase {
    private func split(_ s: String, digits: Int = 6) -> (String, String)? {
        let bytes = Array(s.utf8)
        return bytes.withUnsafeBufferPointer { buf in
            CombinedAnswer.split(buf, digits: digits).map {
                (String(decoding: bytes[$0.password], as: UTF8.self), String(decoding: bytes[$0.code], as: UTF8.self))
            }
        }
    }

    func testTrailingDigitsAreTheCode() {
        XCTAssertTrue(split("s3cret123456")! == ("s3cret", "123456"))
        XCTAssertTrue(split("s3cret 123456")! == ("s3cret", "123456"))
        XCTAssertTrue(split("pass99" + "12345678", digits: 8)! == ("pass99", "12345678"))
        // A password ending in digits keeps them: only `digits` are the code.
        XCTAssertTrue(split("pass991234567890", digits: 8)! == ("pass9912", "34567890"))
        XCTAssertTrue(split("pw12" + "654321")! == ("pw12", "654321"))
        XCTAssertTrue(split("123456")! == ("", "123456"))
    }

    func testBackupCodeAfterASpace() {
        XCTAssertTrue(split("my pass abcde-fghjk")! == ("my pass", "abcde-fghjk"))
    }

    func testNoCodeAtAll() {
        XCTAssertNil(split("password"))
        XCTAssertNil(split("password "))
        XCTAssertNil(split("12345"))
    }

    func testForwardPassIsAFlag() throws {
        XCTAssertTrue(try parseModuleOptions(["forward_pass"]).get().forwardPass)
        XCTAssertFalse(try parseModuleOptions([]).get().forwardPass)
        guard case .failure = parseModuleOptions(["forward_pass=1"]) else { return XCTFail("value accepted") }
    }
}
