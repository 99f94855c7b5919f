// SPDX-License-Identifier: Apache-2.0
import TwoStepProtocol
import XCTest

private func fields(_ pairs: [(String, String)]) -> [UInt8] {
    var out: [UInt8] = []
    for (k, v) in pairs { out += Array(k.utf8) + [0] + Array(v.utf8) + [0] }
    return out
}

private let login: [(String, String)] = [("version", "1"), ("mode", "pam"), ("user", "alice"), ("service", "sshd")]
private let selfService: [(String, String)] = [("version", "1"), ("mode", "self"), ("command", "status")]

final class TypedRequestTests: XCTestCase {
    func testLoginRequestRoundTrips() throws {
        let request = LoginRequest(user: "alice", service: "sshd", rhost: "10.0.0.1", ruser: "", tty: "ssh",
                                   authInfo: "publickey ssh-ed25519 AAAA", config: "/etc/x.conf", nullok: true, debug: false)
        XCTAssertEqual(try HelperRequest.decode(request.encoded()), .login(request))
    }

    func testSelfServiceRequestRoundTrips() throws {
        for command in SelfServiceCommand.allCases {
            var request = SelfServiceRequest(command: command, user: "bob", json: true, replace: command == .enroll,
                                             name: command == .devicesRemove ? "phone" : "")
            if command == .forget { request.fingerprint = "all" }
            XCTAssertEqual(try HelperRequest.decode(request.encoded()), .selfService(request))
        }
        let add = SelfServiceRequest(command: .enroll, name: "phone2")
        XCTAssertEqual(try HelperRequest.decode(add.encoded()), .selfService(add))
    }

    func testAuthenticatorNameGoesOnlyWhereItMeansSomething() {
        // devices-remove needs one; enroll takes one only without replace; others never.
        let cases: [(SelfServiceRequest, FrameError)] = [
            (SelfServiceRequest(command: .devicesRemove), .missingField("name")),
            (SelfServiceRequest(command: .enroll, replace: true, name: "x"), .badValue("name")),
            (SelfServiceRequest(command: .disable, name: "x"), .badValue("name")),
        ]
        for (request, error) in cases {
            XCTAssertThrowsError(try HelperRequest.decode(request.encoded())) { XCTAssertEqual($0 as? FrameError, error) }
        }
    }

    func testMinimalRequestsTakeDefaults() throws {
        XCTAssertEqual(try HelperRequest.decode(fields(login)), .login(LoginRequest(user: "alice", service: "sshd")))
        XCTAssertEqual(try HelperRequest.decode(fields(selfService)), .selfService(SelfServiceRequest(command: .status)))
    }

    func testUnknownFieldIsRefused() {
        XCTAssertThrowsError(try HelperRequest.decode(fields(login + [("shell", "/bin/sh")]))) {
            XCTAssertEqual($0 as? FrameError, .unknownField("shell"))
        }
        // A field of the other kind of request is unknown here too.
        XCTAssertThrowsError(try HelperRequest.decode(fields(login + [("command", "disable")]))) {
            XCTAssertEqual($0 as? FrameError, .unknownField("command"))
        }
        XCTAssertThrowsError(try HelperRequest.decode(fields(selfService + [("nullok", "1")]))) {
            XCTAssertEqual($0 as? FrameError, .unknownField("nullok"))
        }
    }

    func testMissingFieldIsRefused() {
        for required in ["version", "mode", "user", "service"] {
            XCTAssertThrowsError(try HelperRequest.decode(fields(login.filter { $0.0 != required })), required) {
                XCTAssertEqual($0 as? FrameError, .missingField(required))
            }
        }
        XCTAssertThrowsError(try HelperRequest.decode(fields(selfService.filter { $0.0 != "command" }))) {
            XCTAssertEqual($0 as? FrameError, .missingField("command"))
        }
    }

    func testDuplicatedFieldIsRefused() {
        XCTAssertThrowsError(try HelperRequest.decode(fields(login + [("user", "root")]))) {
            XCTAssertEqual($0 as? FrameError, .duplicateField("user"))
        }
    }

    func testValuesOutsideTheirSetAreRefused() {
        let cases: [([(String, String)], String)] = [
            (login.map { $0.0 == "version" ? ("version", "2") : $0 }, "version"),
            (login.map { $0.0 == "mode" ? ("mode", "admin") : $0 }, "mode"),
            (login + [("nullok", "yes")], "nullok"),
            (login.map { $0.0 == "user" ? ("user", "") : $0 }, "user"),
            (login.map { $0.0 == "service" ? ("service", "") : $0 }, "service"),
            (selfService.map { $0.0 == "command" ? ("command", "reset") : $0 }, "command"),
            (selfService + [("replace", "1")], "replace"),  // only enroll replaces
        ]
        for (pairs, field) in cases {
            XCTAssertThrowsError(try HelperRequest.decode(fields(pairs)), field) {
                XCTAssertEqual($0 as? FrameError, .badValue(field))
            }
        }
    }

    /// Found by fuzz-frames in CI: a login with an empty service decoded, but its encoding
    /// left the service out, so it no longer decoded. The encoder now always sends the
    /// service and the decoder refuses an empty one: the helper sees what the module had.
    func testALoginWithoutServiceIsRefusedAsSuchAfterEncoding() {
        let encoded = LoginRequest(user: "alice", service: "").encoded()
        XCTAssertThrowsError(try HelperRequest.decode(encoded)) {
            XCTAssertEqual($0 as? FrameError, .badValue("service"))
        }
        let module = LoginRequest.encode(user: "alice", service: "", rhost: "", ruser: "", tty: "", authInfo: "",
                                         config: LoginRequest.defaultConfig, nullok: false, debug: false)
        XCTAssertEqual(module, encoded)
    }

    func testMalformedFieldBytesAreRefused() {
        XCTAssertThrowsError(try HelperRequest.decode(Array("version".utf8)))          // no NUL
        XCTAssertThrowsError(try HelperRequest.decode(Array("version\0".utf8)))        // key without value
        let tooMany = (0..<40).map { ("k\($0)", "v") }
        XCTAssertThrowsError(try HelperRequest.decode(fields(tooMany))) {
            XCTAssertEqual($0 as? FrameError, .malformedFields)
        }
    }

    /// Bytes that are not UTF-8 are refused, not repaired: `x\xe9` and `x\xe8` would both
    /// decode to "x\u{FFFD}", one user where NSS has two.
    func testFieldsThatAreNotUTF8AreRefused() throws {
        let good = LoginRequest(user: "alice", service: "sshd").encoded()
        XCTAssertNoThrow(try HelperRequest.decode(good))
        for bad: [UInt8] in [[0x78, 0xE9], [0x78, 0xFF], [0xC0, 0xAF], [0xED, 0xA0, 0x80]] {   // lone, invalid, overlong, surrogate
            var payload = Array("version\01\0mode\0pam\0user\0".utf8) + bad + [0]
            payload += Array("service\0sshd\0".utf8)
            XCTAssertThrowsError(try HelperRequest.decode(payload), "\(bad)") {
                XCTAssertEqual($0 as? FrameError, .malformedFields)
            }
        }
        // In a key, too.
        XCTAssertThrowsError(try HelperRequest.decode([0xFF, 0, 0x31, 0])) {
            XCTAssertEqual($0 as? FrameError, .malformedFields)
        }
        // U+FFFD itself, written as UTF-8, is a character like any other.
        let replacement = LoginRequest(user: "x\u{FFFD}", service: "sshd").encoded()
        XCTAssertNoThrow(try HelperRequest.decode(replacement))
    }

    func testServiceDataIsAClosedSet() throws {
        let data = ServiceData([(.user, "alice"), (.enrolled, "true"), (.backupCodes, "a,b")])
        XCTAssertEqual(try ServiceData.decode(data.encoded()), data)
        XCTAssertThrowsError(try ServiceData.decode(fields([("user", "a"), ("secret", "JBSW")]))) {
            XCTAssertEqual($0 as? FrameError, .unknownField("secret"))
        }
        XCTAssertThrowsError(try ServiceData.decode(fields([("user", "a"), ("user", "b")]))) {
            XCTAssertEqual($0 as? FrameError, .duplicateField("user"))
        }
    }
}

final class FrameDecoderTests: XCTestCase {
    func testFramesSplitAtEveryByteAreReassembled() throws {
        let frames = [Frame(.promptEchoOff, text: "Verification code: "), Frame(.info, text: ""), Frame(.result, [0])]
        let bytes = frames.flatMap { $0.encoded() }
        var decoder = FrameDecoder()
        var out: [Frame] = []
        for b in bytes {
            if let f = try decoder.feed([b]) { out.append(f) }
        }
        XCTAssertEqual(out, frames)
        XCTAssertTrue(decoder.isAtFrameBoundary)
    }

    func testSeveralFramesInOneChunkComeOutOneByOne() throws {
        let frames = [Frame(.info, text: "a"), Frame(.error, text: "b")]
        var decoder = FrameDecoder()
        XCTAssertEqual(try decoder.feed(frames.flatMap { $0.encoded() }), frames[0])
        XCTAssertEqual(try decoder.next(), frames[1])
        XCTAssertNil(try decoder.next())
    }

    func testBytesNeededNeverReadsPastAFrame() throws {
        var decoder = FrameDecoder()
        XCTAssertEqual(decoder.bytesNeeded, 5)
        XCTAssertNil(try decoder.feed(Frame.header(.info, count: 3)))
        XCTAssertEqual(decoder.bytesNeeded, 3)
        XCTAssertNil(try decoder.feed([65]))
        XCTAssertEqual(decoder.bytesNeeded, 2)
        XCTAssertFalse(decoder.isAtFrameBoundary)
    }

    func testGarbageIsRefusedAtTheHeader() {
        var decoder = FrameDecoder()
        XCTAssertThrowsError(try decoder.feed([0x7F, 0, 0, 0, 0])) { XCTAssertEqual($0 as? FrameError, .unknownType(0x7F)) }
    }

    func testOversizedFramesAreRefusedBeforeTheirPayload() {
        var decoder = FrameDecoder()
        XCTAssertThrowsError(try decoder.feed(Frame.header(.info, count: ProtocolLimits.maxPayload + 1))) {
            XCTAssertEqual($0 as? FrameError, .tooLarge(.info, ProtocolLimits.maxPayload + 1))
        }
        var answers = FrameDecoder()
        XCTAssertThrowsError(try answers.feed(Frame.header(.answer, count: ProtocolLimits.maxAnswer + 1)))
        var results = FrameDecoder()
        XCTAssertThrowsError(try results.feed(Frame.header(.result, count: 2))) { XCTAssertEqual($0 as? FrameError, .badResult(2)) }
    }
}

final class DialogueTableTests: XCTestCase {
    func testALoginDialogueFollowsTheTable() throws {
        var d = Dialogue()
        try d.received(.request)
        try d.sending(.info)
        try d.sending(.promptEchoOff)
        try d.received(.answer)
        try d.sending(.result)
        XCTAssertEqual(d.state, .finished)
    }

    func testFramesOutOfTurnAreRefused() {
        var early = Dialogue()
        XCTAssertThrowsError(try early.received(.answer))         // an answer before any prompt
        var twice = Dialogue()
        XCTAssertNoThrow(try twice.received(.request))
        XCTAssertThrowsError(try twice.received(.request))        // a second request
        var unasked = Dialogue()
        XCTAssertNoThrow(try unasked.received(.request))
        XCTAssertThrowsError(try unasked.received(.answer))       // an answer nobody asked for
        var login = Dialogue()
        XCTAssertNoThrow(try login.received(.request))
        XCTAssertThrowsError(try login.sending(.data))            // data is for self-service
        var prompting = Dialogue()
        XCTAssertNoThrow(try prompting.received(.request))
        XCTAssertNoThrow(try prompting.sending(.promptEchoOn))
        XCTAssertThrowsError(try prompting.sending(.promptEchoOff)) // a second prompt before the answer
        var done = Dialogue()
        XCTAssertNoThrow(try done.sending(.result))
        XCTAssertThrowsError(try done.sending(.info))             // nothing after the result
        XCTAssertThrowsError(try done.received(.request))
    }

    func testSelfServiceMaySendData() throws {
        var d = Dialogue()
        d.allowsData = true
        try d.received(.request)
        try d.sending(.data)
        try d.sending(.result)
    }
}

/// The frame checks that used to run against the helper's reader, now against the one decoder.
final class FrameTests: XCTestCase {
    private func header(_ bytes: [UInt8]) throws -> (FrameType, Int)? {
        var decoder = FrameDecoder()
        _ = try decoder.feed(bytes)
        return bytes.count >= 5 ? (FrameType(rawValue: bytes[0])!, decoder.bytesNeeded) : nil
    }

    func testFrameEncodingAndLimits() throws {
        let f = Frame(.promptEchoOff, text: "Verification code: ")
        let bytes = f.encoded()
        let parsed = try header(Array(bytes[0..<5]))
        XCTAssertEqual(parsed?.0, .promptEchoOff)
        XCTAssertEqual(parsed?.1, 19)
        XCTAssertThrowsError(try header([0x77, 0, 0, 0, 1]))
        XCTAssertThrowsError(try header([0x10, 0x7f, 0xff, 0xff, 0xff]))
        XCTAssertThrowsError(try header([0x02, 0, 0, 0x10, 0]))  // answer over 512 bytes
        XCTAssertThrowsError(try header([0x1f, 0, 0, 0, 2]))     // result must be one byte
        XCTAssertNil(try header([0x10, 0, 0]))                   // a short header is not a frame
        let request = LoginRequest(user: "alice", service: "sshd")
        XCTAssertEqual(try HelperRequest.decode(request.encoded()), .login(request))
        XCTAssertThrowsError(try HelperRequest.decode(Array("user\0alice".utf8)))
        XCTAssertThrowsError(try HelperRequest.decode(Array("version\u{0}1\u{0}mode\u{0}pam\u{0}user\0a\0user\0b\0".utf8)))
    }
}
