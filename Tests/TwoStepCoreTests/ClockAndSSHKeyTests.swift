// SPDX-License-Identifier: Apache-2.0
import TwoStepCore
import XCTest

/// The doctor's and the helper's clock decision, with the values adjtimex could return.
final class ClockHealthTests: XCTestCase {
    func testSynchronisedWithinThirtySecondsIsOK() {
        XCTAssertEqual(ClockHealth.assess(unsynchronised: false, maxErrorMicroseconds: 0), .synchronised)
        XCTAssertEqual(ClockHealth.assess(unsynchronised: false, maxErrorMicroseconds: 30_000_000), .synchronised)
    }

    func testUnsynchronisedIsAWarningNotAFailure() {
        // The kernel caps an unsynchronised clock's maxerror at 16 s (NTP_PHASE_LIMIT).
        XCTAssertEqual(ClockHealth.assess(unsynchronised: true, maxErrorMicroseconds: 16_000_000), .unsynchronised)
        XCTAssertEqual(ClockHealth.assess(unsynchronised: true, maxErrorMicroseconds: 0), .unsynchronised)
    }

    func testEstimatedErrorBeyondThirtySecondsFails() {
        XCTAssertEqual(ClockHealth.assess(unsynchronised: false, maxErrorMicroseconds: 30_000_001), .tooFarOff(seconds: 30))
        XCTAssertEqual(ClockHealth.assess(unsynchronised: true, maxErrorMicroseconds: 45_000_000), .tooFarOff(seconds: 45))
    }
}

/// SSH_AUTH_INFO_0 as sshd writes it, and fingerprints as `ssh-keygen -lf` prints them.
final class SSHAuthInfoTests: XCTestCase {
    // ssh-keygen -t ed25519; `ssh-keygen -lf` printed the fingerprint below.
    let blob = "AAAAC3NzaC1lZDI1NTE5AAAAIL1QYjSktkLga5+GMc5CUz5NMaTopA3fKVQnVQKUkY+O"
    let fingerprint = "SHA256:zfQbqTRAI0X/EaSEWhD/QKeXuHWPEjnLRTD7Ki5pUU4"

    func testFingerprintMatchesSSHKeygen() {
        XCTAssertEqual(SSHAuthInfo.publicKeyFingerprints("publickey ssh-ed25519 \(blob)\n"), [fingerprint])
        XCTAssertTrue(SSHAuthInfo.isFingerprint(fingerprint))
        XCTAssertFalse(SSHAuthInfo.isFingerprint("MD5:" + fingerprint.dropFirst(7)))
        XCTAssertFalse(SSHAuthInfo.isFingerprint(fingerprint + "="))
    }

    func testOnlyPublickeyLinesCountAndEachOnce() {
        let info = "password\nkeyboard-interactive\npublickey ssh-ed25519 \(blob)\npublickey ssh-ed25519 \(blob)\n" +
                   "publickey ssh-ed25519 not*base64\nhostbased ssh-ed25519 \(blob)"
        XCTAssertEqual(SSHAuthInfo.publicKeyFingerprints(info), [fingerprint])
        XCTAssertEqual(SSHAuthInfo.publicKeyFingerprints(""), [])
        XCTAssertEqual(SSHAuthInfo.publicKeyFingerprints("publickey"), [])
    }
}
