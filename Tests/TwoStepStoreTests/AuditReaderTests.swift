// SPDX-License-Identifier: Apache-2.0
import XCTest
import TwoStepCore
@testable import TwoStepStore

final class AuditReaderTests: XCTestCase {
    func testLineWrittenByAuditLogReadsBackFieldForField() {
        let user = "al\"ice\\\n\u{1}é😀"
        let line = "{\"time\":\"2026-11-29T13:56:08Z\",\"user\":\(jsonString(user)),\"n\":12,\"ok\":true,\"x\":null}"
        let e = parseAuditLine(Array(line.utf8))
        XCTAssertEqual(e?["user"], user)
        XCTAssertEqual(e?["n"], "12")
        XCTAssertEqual(e?["ok"], "true")
        XCTAssertEqual(e?.time, 1_795_960_568)
        XCTAssertEqual(e?.fields.map(\.key), ["time", "user", "n", "ok", "x"])
    }

    func testSurrogatePairsDecodeAndLoneHalvesAreRefused() {
        XCTAssertEqual(parseAuditLine(Array(#"{"u":"\ud83d\ude00"}"#.utf8))?["u"], "😀")
        XCTAssertNil(parseAuditLine(Array(#"{"u":"\ud83d"}"#.utf8)))
    }

    func testDamagedLinesAreRefused() {
        for bad in ["", "{", "{\"a\":", "{\"a\":\"b\"", "{\"a\":\"b\"} x", "[1]", "{\"a\":{\"b\":1}}",
                    "{\"a\":\"b\nc\"}", "{\"a\":\"\\q\"}", "{a:1}", "{\"time\":\"2026-11-29T13:56"] {
            XCTAssertNil(parseAuditLine(Array(bad.utf8)), bad)
        }
        XCTAssertNotNil(parseAuditLine(Array("{}".utf8)))
    }

    func testTimesAndRotationNames() {
        XCTAssertEqual(parseAuditTime("2026-11-29"), parseAuditTime("2026-11-29T00:00:00Z"))
        XCTAssertEqual(parseAuditTime("2026-11-29 00:01"), 1_795_910_460)
        XCTAssertNil(parseAuditTime("2026-13-01"))
        XCTAssertNil(parseAuditTime("yesterday"))
        XCTAssertEqual(AuditReader.rotationOrder("audit.jsonl", base: "audit.jsonl"), 0)
        XCTAssertEqual(AuditReader.rotationOrder("audit.jsonl.1", base: "audit.jsonl"), 2)
        XCTAssertEqual(AuditReader.rotationOrder("audit.jsonl.3.gz", base: "audit.jsonl"), 4)
        XCTAssertEqual(AuditReader.rotationOrder("audit.jsonl-20261129.gz", base: "audit.jsonl"), 1)
        XCTAssertNil(AuditReader.rotationOrder("audit.jsonl.bak", base: "audit.jsonl"))
        XCTAssertNil(AuditReader.rotationOrder("audit.jsonlx", base: "audit.jsonl"))
    }

    func testMailAddressesAndMessages() throws {
        XCTAssertTrue(isSendableMailAddress("alice@example.org"))
        for bad in ["alice", "a@b@c", "a@b\nBcc: x@y", "a,b@c", "a@.c", "a@c.", "a@b..c", "\"a\"@b"] {
            XCTAssertFalse(isSendableMailAddress(bad), bad)
        }
        XCTAssertEqual(maskedMailAddress("alice@example.org"), "a***@example.org")
        let m = MailMessage(from: "twostep@h", to: "a@h", subject: "Grüße", text: "x",
                            attachments: [.init(fileName: "qr.png", contentType: "image/png", bytes: [1, 2, 3])])
        let text = String(decoding: try m.rendered(date: 0, hostName: "h"), as: UTF8.self)
        XCTAssertTrue(text.contains("Subject: =?UTF-8?B?R3LDvMOfZQ==?=\n"))
        XCTAssertTrue(text.contains("Date: Thu, 1 Jan 1970 00:00:00 +0000\n"))
        XCTAssertTrue(text.contains("Content-Disposition: attachment; filename=\"qr.png\"\n"))
        // A line break in the subject is encoded, never a header of its own.
        var sneaky = m
        sneaky.subject = "x\nBcc: evil@h"
        let sneakyText = String(decoding: try sneaky.rendered(date: 0, hostName: "h"), as: UTF8.self)
        XCTAssertFalse(sneakyText.contains("\nBcc:"))
        var bad = m
        bad.to = "a@h\nBcc: evil@h"
        XCTAssertThrowsError(try bad.rendered(date: 0, hostName: "h"))
    }
}
