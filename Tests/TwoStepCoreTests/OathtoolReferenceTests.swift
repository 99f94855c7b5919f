// SPDX-License-Identifier: Apache-2.0
// Cross-checks against oath-toolkit's oathtool, an independent implementation.
import Foundation
import XCTest
import TwoStepCore
import TwoStepCrypto

final class OathtoolReferenceTests: XCTestCase {
    let oathtool = "/usr/bin/oathtool"

    func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: oathtool)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "oathtool \(arguments)")
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func testTOTPAgreesWithOathtool() throws {
        guard FileManager.default.isExecutableFile(atPath: oathtool) else { throw XCTSkip("\(oathtool) not installed") }
        let times: [Int64] = [0, 59, 1_111_111_109, 1_700_000_000, 1_795_000_000, 4_102_444_800]
        for algorithm in HashAlgorithm.allCases {
            for (digits, period) in [(6, 30), (8, 60), (7, 15)] {
                let secret = try SecretGenerator.newSecret(bytes: 20 + Int.random(in: 0...12))
                let parameters = OTPParameters(algorithm: algorithm, digits: digits, period: period)
                for time in times {
                    let reference = try run(["--totp=\(algorithm.rawValue)", "-d", "\(digits)", "-s", "\(period)s",
                                             "-N", "@\(time)", hexString(secret)])
                    XCTAssertEqual(try OTP.totp(secret: secret, at: time, parameters: parameters), reference,
                                   "\(algorithm) \(digits) digits, \(period)s, t=\(time)")
                }
            }
        }
    }

    func testHOTPAgreesWithOathtool() throws {
        guard FileManager.default.isExecutableFile(atPath: oathtool) else { throw XCTSkip("\(oathtool) not installed") }
        let secret = try SecretGenerator.newSecret()
        // One call lists counters 1000...1009 (-w 9).
        let reference = try run(["--hotp", "-d", "6", "-c", "1000", "-w", "9", hexString(secret)])
            .split(separator: "\n").map(String.init)
        XCTAssertEqual(reference.count, 10)
        for (i, code) in reference.enumerated() {
            XCTAssertEqual(try OTP.hotp(secret: secret, counter: UInt64(1000 + i), digits: 6, algorithm: .sha1), code)
        }
    }

    func testBase32SecretAgreesWithOathtool() throws {
        guard FileManager.default.isExecutableFile(atPath: oathtool) else { throw XCTSkip("\(oathtool) not installed") }
        let secret = try SecretGenerator.newSecret()
        let encoded = Base32.encode(secret)
        let reference = try run(["--totp", "-b", "-N", "@1700000000", encoded])
        XCTAssertEqual(try OTP.totp(secret: try Base32.decode(encoded), at: 1_700_000_000, parameters: .standard), reference)
    }
}
