// SPDX-License-Identifier: Apache-2.0
import Foundation
import TwoStepCore
import TwoStepCrypto
import TwoStepStore
import XCTest

/// The record and state formats with several authenticators (v2), and the v1 formats
/// written before them.
final class AuthenticatorRecordTests: XCTestCase {
    let phone = Array("12345678901234567890".utf8)
    let token = Array("abcdefghijabcdefghij".utf8)

    func twoAuthenticators() -> UserRecord {
        UserRecord(authenticators: [
            Authenticator(secret: phone, parameters: .standard, added: 100),
            Authenticator(name: "yubikey", kind: .hotp, secret: token, parameters: OTPParameters(algorithm: .sha256, digits: 8), added: 200),
        ], created: 100, backupKey: Array(repeating: 7, count: 32), backupHashes: [])
    }

    func testSeveralAuthenticatorsRoundTrip() throws {
        let r = twoAuthenticators()
        r.extensions = [("trusted_key", "SHA256:abc 1800000000"), ("trusted_key", "SHA256:def 1")]
        var plain = r.serialized()
        defer { Crypto.wipe(&plain) }
        let text = String(decoding: plain, as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("v=2\n"), text)
        XCTAssertTrue(text.contains("authenticator=yubikey hotp SHA256 8 - 200 "), text)
        let back = try UserRecord.parse(plain, path: "t")
        XCTAssertEqual(back.authenticators.map(\.name), ["default", "yubikey"])
        XCTAssertEqual(back.authenticators.map(\.kind), [.totp, .hotp])
        XCTAssertEqual(back.authenticator(named: "yubikey")?.secret.bytes, token)
        XCTAssertEqual(back.authenticator(named: "yubikey")?.parameters.algorithm, .sha256)
        XCTAssertEqual(back.primary.secret.bytes, phone)
        // Other features' lines survive a rewrite by this version, in order.
        XCTAssertEqual(back.extensions.map(\.key), ["trusted_key", "trusted_key"])
        XCTAssertEqual(back.extensions.map(\.value), ["SHA256:abc 1800000000", "SHA256:def 1"])
    }

    func testVersionOneRecordIsOneTOTPAuthenticatorNamedDefault() throws {
        let v1 = "v=1\nsecret=\(Base32.encode(phone))\nalgorithm=SHA256\ndigits=8\nperiod=60\ncreated=5\n" +
                 "backup_key=\(String(repeating: "ab", count: 32))\nbackup=\n"
        let r = try UserRecord.parse(Array(v1.utf8), path: "t")
        XCTAssertEqual(r.authenticators.count, 1)
        XCTAssertEqual(r.primary.name, "default")
        XCTAssertEqual(r.primary.kind, .totp)
        XCTAssertEqual(r.primary.parameters, OTPParameters(algorithm: .sha256, digits: 8, period: 60))
        XCTAssertEqual(r.primary.added, 5)
        XCTAssertEqual(r.secret.bytes, phone)
    }

    func testMalformedAuthenticatorsAreRefused() throws {
        let base = "v=2\ncreated=1\nbackup_key=\(String(repeating: "ab", count: 32))\nbackup=\n"
        let s = Base32.encode(phone)
        let bad = [
            "",                                                  // none at all
            "authenticator=Phone totp SHA1 6 30 1 \(s)\n",        // name outside [a-z0-9-]
            "authenticator=a totp SHA1 7 30 1 \(s)\n",            // digits
            "authenticator=a totp SHA1 6 5 1 \(s)\n",             // period
            "authenticator=a hotp SHA1 6 30 1 \(s)\n",            // HOTP has no period
            "authenticator=a totp SHA1 6 30 1 \(s)\nauthenticator=a totp SHA1 6 30 1 \(s)\n",  // twice
            "authenticator=a totp SHA1 6 30 1 MZXW6\n",          // short secret
            "authenticator=a totp SHA1 6 30 1 \(s)\nsecret=\(s)\n", // v1 line in v2
            "authenticator=a totp SHA1 6 30 1 \(s)\ncreated=2\n",    // own key twice
            "authenticator=a totp SHA1 6 30 1 \(s)\nBad-Key=1\n",    // not an extension key
            "authenticator=a  totp SHA1 6 30 1 \(s)\n",          // an empty field
            "authenticator=a totp SHA1 6 30 1  \(s)\n",
            "authenticator=a totp SHA1 6 30 \(s)\n",             // a field missing
            "authenticator=a totp SHA1 6 30 1 2 \(s)\n",         // one too many
            "authenticator=a totp SHA1 6 ３0 1 \(s)\n",          // digits from another script
            "authenticator=a totp SHA1 6\u{301} 30 1 \(s)\n",   // a combining mark
            "authenticator=a totp SHA1 6 30 1\u{301} \(s)\n",
            "authenticator=é totp SHA1 6 30 1 \(s)\n",
            "authenticator=a hotp SHA1 6 -1 1 \(s)\n",           // HOTP's period is "-" exactly
            "authenticator=a totp SHA1 6 30 1 \(s.lowercased())\n",
        ]
        for extra in bad {
            XCTAssertThrowsError(try UserRecord.parse(Array((base + extra).utf8), path: "t"), extra)
        }
        let many = (0...Authenticator.maxCount).map { "authenticator=a\($0) totp SHA1 6 30 1 \(s)\n" }.joined()
        XCTAssertThrowsError(try UserRecord.parse(Array((base + many).utf8), path: "t"))
        XCTAssertNoThrow(try UserRecord.parse(Array((base + "authenticator=a totp SHA1 6 30 1 \(s)\nemail=a@b.example\n").utf8), path: "t"))
        // What the record's writer never makes but the reader has always taken.
        let odd = try UserRecord.parse(Array((base + "authenticator=a-2 hotp sha-256 +8 - -7 \(s)\n").utf8), path: "t")
        XCTAssertEqual(odd.primary.name, "a-2")
        XCTAssertEqual(odd.primary.kind, .hotp)
        XCTAssertEqual(odd.primary.parameters, OTPParameters(algorithm: .sha256, digits: 8, period: 30))
        XCTAssertEqual(odd.primary.added, -7)
    }

    func testAddReplaceRemoveAndTheCap() throws {
        let r = twoAuthenticators()
        XCTAssertThrowsError(try r.add(Authenticator(secret: token, parameters: .standard, added: 1)),
                             equals: RecordChangeError.exists("default"))
        try r.add(Authenticator(secret: token, parameters: .standard, added: 1), replace: true)
        XCTAssertEqual(r.primary.secret.bytes, token)
        for i in 2..<Authenticator.maxCount { try r.add(Authenticator(name: "p\(i)", secret: phone, parameters: .standard, added: 1)) }
        XCTAssertThrowsError(try r.add(Authenticator(name: "one-more", secret: phone, parameters: .standard, added: 1)),
                             equals: RecordChangeError.full)
        for i in 2..<Authenticator.maxCount { try r.remove(named: "p\(i)") }
        try r.remove(named: "default")
        XCTAssertThrowsError(try r.remove(named: "yubikey"), equals: RecordChangeError.last("yubikey"))
        XCTAssertThrowsError(try r.remove(named: "nope"), equals: RecordChangeError.missing("nope"))
    }

    func testNames() {
        for good in ["default", "a", "phone-2", String(repeating: "x", count: 32)] { XCTAssertTrue(Authenticator.isValidName(good), good) }
        for bad in ["", "Phone", "a b", "a_b", "é", String(repeating: "x", count: 33), "a=b"] { XCTAssertFalse(Authenticator.isValidName(bad), bad) }
    }

    func testStateRoundTripsPerAuthenticator() throws {
        var st = UserState(failures: [1, 2], lockedUntil: 9, recordGeneration: 3)
        st.devices["default"] = AuthenticatorState(lastStep: 60_000_000, drift: -2, lastUsed: 1_800_000_000)
        st.devices["yubikey"] = AuthenticatorState(counter: 512, lastUsed: 5)
        let bytes = st.serialized()
        XCTAssertEqual(try UserState.parse(bytes, path: "t"), st)
        let text = String(decoding: bytes, as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("v=2\n"))
        XCTAssertTrue(text.contains("device=yubikey -1 512 0 5\n"), text)
    }

    func testVersionOneStateMapsToDefault() throws {
        let st = try UserState.parse(Array("v=1\nlast_step=59865727\nlocked_until=0\nfailures=\nrecord_generation=2\n".utf8), path: "t")
        XCTAssertEqual(st.device("default"), AuthenticatorState(lastStep: 59_865_727))
        XCTAssertEqual(st.lastStep, 59_865_727)
        XCTAssertEqual(st.recordGeneration, 2)
    }

    func testMalformedStatesAreRefused() {
        for bad in ["v=2\nlast_step=5\n", "v=1\ndevice=default 1 2 3 4\n", "v=2\ndevice=default 1 2 3\n",
                    "v=2\ndevice=Default 1 2 3 4\n", "v=2\ndevice=a 1 2 3 4\ndevice=a 1 2 3 4\n",
                    "v=2\ndevice=a 1 -2 3 4\n", "v=3\n", "v=2\nv=2\n", "v=2\nlocked_until=1\nlocked_until=2\n",
                    "v=2\n" + (0...Authenticator.maxCount).map { "device=a\($0) 1 2 3 4\n" }.joined()] {
            XCTAssertThrowsError(try UserState.parse(Array(bad.utf8), path: "t"), bad)
        }
    }

    func testStateParseSkipsEmptyLinesAndEmptyFailuresAndRefusesOtherBytes() throws {
        let st = try UserState.parse(Array("v=2\n\nlocked_until=+7\nfailures=,3,,-4,\n\ndevice=a 1 0 -2 9\n".utf8), path: "t")
        XCTAssertEqual(st.lockedUntil, 7)
        XCTAssertEqual(st.failures, [3, -4])
        XCTAssertEqual(st.device("a"), AuthenticatorState(lastStep: 1, counter: 0, drift: -2, lastUsed: 9))
        XCTAssertEqual(try UserState.parse(Array("v=2\nlockouts=1000\n".utf8), path: "t").lockouts, 1000)
        for bad in ["v=2\nlocked_until=\u{FF}\n", "v=2\nlocked_until=1 \n", "v=2\nfailures=1;2\n", "v=2\nlockouts=1001\n",
                    "v=2\nlockouts=-1\n", "v=2\nrecord_generation=-1\n", "v=2\nfoo=1\n", "v=2\nnoequals\n", "locked_until=1\n",
                    "v=2 \n", "v=12\n", "v=2\ndevice=a 1 2 3 4 5\n", "v=2\ndevice=a 1 2 3 99999999999999999999\n",
                    "v=2\nfailures=\nfailures=\n", "v=2\nrecord_generation=1\nrecord_generation=1\n",
                    "v=2\nfailures=" + Array(repeating: "1", count: 1_001).joined(separator: ",") + "\n"] {
            XCTAssertThrowsError(try UserState.parse(Array(bad.utf8), path: "t"), bad)
        }
        XCTAssertThrowsError(try UserState.parse(Array("v=2\nlocked_until=".utf8) + [0xff, 0x0a], path: "t"),
                             equals: StoreError.damaged(path: "t", reason: "bad locked_until"))
        XCTAssertThrowsError(try UserState.parse(Array("v=2\nlast_step=1\n".utf8), path: "t"),
                             equals: StoreError.damaged(path: "t", reason: "bad last_step"))
        XCTAssertThrowsError(try UserState.parse(Array("v=2\nfailures=\nfailures=\n".utf8), path: "t"),
                             equals: StoreError.damaged(path: "t", reason: "failures twice"))
    }

    func testStateStaysSmall() {
        // The state is bounded (issue10's two-slot file holds it as opaque bytes).
        var st = UserState(failures: Array(repeating: Int64.min, count: 999), lockedUntil: .min, recordGeneration: .max)
        for i in 0..<Authenticator.maxCount {
            st.devices[String(repeating: "x", count: 30) + String(format: "%02d", i)] =
                AuthenticatorState(lastStep: .min, counter: .max, drift: .min, lastUsed: .min)
        }
        XCTAssertLessThan(st.serialized().count, 24 * 1024)
    }
}

/// XCTAssertThrowsError with the error's value.
func XCTAssertThrowsError<T, E: Error & Equatable>(_ body: @autoclosure () throws -> T, equals expected: E,
                                                   file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try body(), file: file, line: line) { XCTAssertEqual($0 as? E, expected, file: file, line: line) }
}

final class DeviceConfigTests: XCTestCase {
    func testHOTPWindowAndMaxDrift() throws {
        let defaults = try Config.parse("", path: "c")
        XCTAssertEqual(defaults.hotpWindow, 10)
        XCTAssertEqual(defaults.maxDrift, 3600)
        let c = try Config.parse("hotp_window = 0\nmax_drift = 5m\n", path: "c")
        XCTAssertEqual(c.hotpWindow, 0)
        XCTAssertEqual(c.maxDrift, 300)
        XCTAssertEqual(try Config.parse("max_drift = 0\n", path: "c").maxDrift, 0)
        XCTAssertEqual(try Config.parse("max_drift = 1d\n", path: "c").maxDrift, 86400)
        for bad in ["hotp_window = 101", "hotp_window = -1", "max_drift = 2d", "max_drift = soon"] {
            XCTAssertThrowsError(try Config.parse(bad + "\n", path: "c"), bad)
        }
    }
}
