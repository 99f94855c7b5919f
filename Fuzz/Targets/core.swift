// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the text decoders of TwoStepCore, each on the same input.
//   Base32.decode (secrets typed or pasted by users, `admin import`),
//   Base64.decode (CONFIG_ENCRYPTION_KEY), OTPAuthURI(parsing:) (`admin import --uri`),
//   BackupCodes.normalize (every answer at the prompt, imported scratch codes too).
// Only each one's own error type may come out, and what is accepted must round-trip.
import TwoStepCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = (data == nil || size == 0) ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    let text = String(decoding: bytes, as: UTF8.self)

    do {
        let raw = try Base32.decode(text)
        let plain = try Base32.decode(Base32.encode(raw))
        let padded = try Base32.decode(Base32.encode(raw, padding: true))
        precondition(plain == raw && padded == raw, "Base32 round trip")
    } catch let e as Base32Error { _ = e.description } catch { preconditionFailure("Base32: \(error)") }

    do {
        let raw = try Base64.decode(text)
        // The decoder is strict (canonical only), so encoding gives the input back.
        var trimmed = Array(text.utf8)
        while let l = trimmed.last, l == 0x20 || l == 0x0a || l == 0x0d || l == 0x09 { trimmed.removeLast() }
        precondition(Array(Base64.encode(raw).utf8) == trimmed, "Base64 is not canonical")
    } catch let e as Base64Error { _ = e.description } catch { preconditionFailure("Base64: \(error)") }

    do {
        let uri = try OTPAuthURI(parsing: text)
        precondition(!uri.account.isEmpty && !uri.secret.isEmpty)
        try uri.parameters.validate()
        precondition(uri.kind == .totp || uri.counter != nil)
        let again = try OTPAuthURI(parsing: uri.uriString)
        precondition(again == uri, "otpauth round trip: \(uri.uriString)")
    } catch let e as OTPAuthURIError { _ = e.description } catch { preconditionFailure("OTPAuthURI: \(error)") }

    if let code = BackupCodes.normalize(text) {
        // A backup code, or an imported 8-digit google-authenticator scratch code.
        precondition(code.utf8.count == BackupCodes.length ||
                     (code.utf8.count == BackupCodes.scratchCodeLength && code.utf8.allSatisfy { $0 >= 48 && $0 <= 57 }))
        precondition(code.utf8.allSatisfy { BackupCodes.alphabet.utf8.contains($0) })
        precondition(BackupCodes.normalize(code) == code)
        precondition(BackupCodes.looksLikeBackupCode(text))
    }
    return 0
}
