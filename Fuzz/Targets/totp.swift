// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: OTP.matchTOTP with an arbitrary code string (what the user types at
// the prompt), an arbitrary secret, window 0...10 (the config's range), digits 6...8,
// any allowed period and any time, including before the epoch and near Int64's ends.
// Input layout: window, digits, period (2 bytes), time (8 bytes), secret length, secret,
// then the code text. Only OTPError may come out; a match must be inside the window and
// be the code for that step; the right code for now must always match.
import TwoStepCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = (data == nil || size == 0) ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    guard bytes.count >= 13 else { return 0 }
    let window = Int(bytes[0] % 11)
    let digits = 6 + Int(bytes[1] % 3)
    let period = 1 + (Int(bytes[2]) << 8 | Int(bytes[3])) % 3600
    var t: UInt64 = 0
    for b in bytes[4..<12] { t = t << 8 | UInt64(b) }
    let now = Int64(bitPattern: t)
    let secretLength = min(Int(bytes[12] % 65), bytes.count - 13)
    let secret = Array(bytes[13..<(13 + secretLength)])
    let code = String(decoding: bytes[(13 + secretLength)...], as: UTF8.self)
    let algorithm: HashAlgorithm = [.sha1, .sha256, .sha512][Int(bytes[1] / 3 % 3)]
    let p = OTPParameters(algorithm: algorithm, digits: digits, period: period)

    do {
        if let step = try OTP.matchTOTP(code: code, secret: secret, at: now, parameters: p, window: window) {
            let current = OTP.timeStep(at: now, period: period)
            precondition(step >= 0 && step >= current - Int64(window) && step <= current + Int64(window))
            let expected = try OTP.hotp(secret: secret, counter: UInt64(step), digits: digits, algorithm: algorithm)
            precondition(expected == String(code.utf8.filter { $0 != 0x20 }.map { Character(Unicode.Scalar($0)) }))
        }
    } catch let e as OTPError { _ = e.description } catch { preconditionFailure("matchTOTP: \(error)") }

    // The code an app shows now is always accepted, at the current step or a later one.
    if !secret.isEmpty, now >= 0, let right = try? OTP.totp(secret: secret, at: now, parameters: p) {
        do {
            let step = try OTP.matchTOTP(code: right, secret: secret, at: now, parameters: p, window: window)
            precondition(step != nil && step! >= OTP.timeStep(at: now, period: period), "current code refused")
        } catch { preconditionFailure("matchTOTP on the right code: \(error)") }
    }
    return 0
}
