// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: Config.parse on any text (Config.load decodes the file the same way,
// String(decoding:as: UTF8.self)). Only StoreError may come out; what is accepted must be
// inside the documented ranges.
import TwoStepStore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = (data == nil || size == 0) ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    let text = String(decoding: bytes, as: UTF8.self)
    do {
        let c = try Config.parse(text, path: "/etc/twostep/twostep.conf")
        precondition((0...10).contains(c.window))
        precondition(c.digits == 6 || c.digits == 8)
        precondition((10...300).contains(c.period))
        precondition((1...1000).contains(c.rateLimitFailures))
        precondition(c.rateLimitSeconds >= 1 && c.rateLimitSeconds <= 366 * 86400)
        precondition(c.lockout >= 1 && c.lockout <= 366 * 86400)
        precondition((1...1024).contains(c.maxConnections))
        for p in [c.stateDir, c.keyDir, c.socket] + (c.auditLog.map { [$0] } ?? []) {
            precondition(p.hasPrefix("/") && !p.split(separator: "/").contains(".."), "path \(p)")
        }
        precondition(!c.issuer.contains(":"))
        precondition(isValidUserName(c.passwordService))
        if case .groups(let g)? = c.require { precondition(!g.isEmpty && g.allSatisfy(isValidUserName)) }
    } catch let e as StoreError {
        _ = "\(e)"
    } catch {
        preconditionFailure("unexpected error type: \(error)")
    }
    return 0
}
