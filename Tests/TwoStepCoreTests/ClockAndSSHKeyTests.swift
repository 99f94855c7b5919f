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
    // ssh-keygen -s CA -I id -n alice on an ed25519, an RSA (1024) and an ECDSA (P-256) key;
    // `ssh-keygen -lf` printed each key's fingerprint for the key and for its certificate alike.
    let certificates: [(type: String, blob: String, fingerprint: String)] = [
        ("ssh-ed25519-cert-v01@openssh.com",
         "AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIAopSzV/t/eEEMkiLrYUFx65czW9TWhPmHHouUBbOUQ3AAAAIJX+68V9yHuPRsAhWqkbaUbdyCkpQdfSA7KHYJDyKLq0AAAAAAAAAAAAAAABAAAAAmlkAAAACQAAAAVhbGljZQAAAABrDahIAAAAAGztipcAAAAAAAAAggAAABVwZXJtaXQtWDExLWZvcndhcmRpbmcAAAAAAAAAF3Blcm1pdC1hZ2VudC1mb3J3YXJkaW5nAAAAAAAAABZwZXJtaXQtcG9ydC1mb3J3YXJkaW5nAAAAAAAAAApwZXJtaXQtcHR5AAAAAAAAAA5wZXJtaXQtdXNlci1yYwAAAAAAAAAAAAAAMwAAAAtzc2gtZWQyNTUxOQAAACBcde9szF6uHdXO5z1YdmqhrEwP/sZo4zAqX+XnuNZtrwAAAFMAAAALc3NoLWVkMjU1MTkAAABAhBUnQ0Q4Tjz3TvKWcbVGe8upO59/+a/LtRM37igIiTNhyxV3Q6hOICrajPwO51bbq2Be2DVi0D/f11nuumtqDg==",
         "SHA256:ql0iUoUcS+rjAheKAF4ol38vNlV66oIGRJkywTDLVPA"),
        ("ssh-rsa-cert-v01@openssh.com",
         "AAAAHHNzaC1yc2EtY2VydC12MDFAb3BlbnNzaC5jb20AAAAgMQCgC9xFpcf3ED1RjMMH7tX/robQDSa7c5a19Ev0rDgAAAADAQABAAAAgQDgmhYM9CIjdCwSUwMvLWagYA52u0oz0ZLuJ/e1e/15p2kkM/YGu0TRKpbDTKakx4BT2ZZ9F9fvf81F0k4aS16/YIyworILcplLenu3tFFE35iFhhnYMQF6+6c0gd+5qu+L2yzKUdqr81cE0ssu/yY4mCoa7pocLKdWdAQexWCcpQAAAAAAAAAAAAAAAQAAAAJpZAAAAAkAAAAFYWxpY2UAAAAAaw2oSAAAAABs7YqXAAAAAAAAAIIAAAAVcGVybWl0LVgxMS1mb3J3YXJkaW5nAAAAAAAAABdwZXJtaXQtYWdlbnQtZm9yd2FyZGluZwAAAAAAAAAWcGVybWl0LXBvcnQtZm9yd2FyZGluZwAAAAAAAAAKcGVybWl0LXB0eQAAAAAAAAAOcGVybWl0LXVzZXItcmMAAAAAAAAAAAAAADMAAAALc3NoLWVkMjU1MTkAAAAgXHXvbMxerh3Vzuc9WHZqoaxMD/7GaOMwKl/l57jWba8AAABTAAAAC3NzaC1lZDI1NTE5AAAAQD9DmoqTII+kAQbfHvqVqp+uLdPx60lVTjpR67XReiOCKHH9hp42psXk54cs79iQUwol6yiM8dTdVMozqc+RZww=",
         "SHA256:61cQNxVllvwdsOpuVroEu8K9TYtQbxRt2yqgaYDl8Kg"),
        ("ecdsa-sha2-nistp256-cert-v01@openssh.com",
         "AAAAKGVjZHNhLXNoYTItbmlzdHAyNTYtY2VydC12MDFAb3BlbnNzaC5jb20AAAAgIKYFNnKQV4Xi0opzcomtE5xejkplFxWVS7RGqCX5LmsAAAAIbmlzdHAyNTYAAABBBMKz6+qsPtEsNto828rkoQeFMMobwJdyv08f2y7ABHld3c3IxIZfTn1udF8llFJ+gc0whIqUvml0/QxBKdcNL+cAAAAAAAAAAAAAAAEAAAACaWQAAAAJAAAABWFsaWNlAAAAAGsNqEgAAAAAbO2KlwAAAAAAAACCAAAAFXBlcm1pdC1YMTEtZm9yd2FyZGluZwAAAAAAAAAXcGVybWl0LWFnZW50LWZvcndhcmRpbmcAAAAAAAAAFnBlcm1pdC1wb3J0LWZvcndhcmRpbmcAAAAAAAAACnBlcm1pdC1wdHkAAAAAAAAADnBlcm1pdC11c2VyLXJjAAAAAAAAAAAAAAAzAAAAC3NzaC1lZDI1NTE5AAAAIFx172zMXq4d1c7nPVh2aqGsTA/+xmjjMCpf5ee41m2vAAAAUwAAAAtzc2gtZWQyNTUxOQAAAEBGd229EKsOdp81nAGwb9gob+qcU+cLSaLg0yHm6dyXIl6WFYGanW+CZoA5LDxx92ZqIDKk8JBcP6TJXAZkwSwH",
         "SHA256:JUisXRTIvFnvpVtuwwraMCHh4hK4XlVVKbg0HHcQU2s"),
    ]

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

    func testACertificateIsFingerprintedByTheKeyInsideIt() {
        for c in certificates {
            XCTAssertEqual(SSHAuthInfo.publicKeyFingerprints("publickey \(c.type) \(c.blob)"), [c.fingerprint], c.type)
        }
    }

    func testACertificateCutShortOrOfAnUnknownKindProvesNothing() throws {
        let whole = try Base64.decode(certificates[0].blob)
        for length in [40, 71, 100] {   // inside the nonce, at its end, inside the key
            let cut = Base64.encode(Array(whole.prefix(length)))
            XCTAssertEqual(SSHAuthInfo.publicKeyFingerprints("publickey \(certificates[0].type) \(cut)"), [], "\(length)")
        }
        // The same certificate with its type renamed to one no key kind has.
        let renamed = Array("ssh-nokind-cert-v01@openssh.com".utf8)
        let typeLength = Int(whole[3])
        let other = [0, 0, 0, UInt8(renamed.count)] + renamed + whole[(4 + typeLength)...]
        XCTAssertEqual(SSHAuthInfo.publicKeyFingerprints("publickey x \(Base64.encode(other))"), [])
    }
}
