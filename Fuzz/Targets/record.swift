// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: what the helper reads from the state directory.
//   SealedRecord.keyID(of:) on the raw file (before any key is touched),
//   UserRecord.parse on a record's plaintext, UserState.parse on a state's payload, and
//   StateFile.payload on a whole .state file (two checksummed slots, or the older text).
// Only StoreError may come out; what parses must serialise and parse back to the same.
import TwoStepCore
import TwoStepCrypto
import TwoStepStore

func bytesEqual(_ a: SecretBytes, _ b: SecretBytes) -> Bool {
    a.withBytes { x in b.withBytes { y in x == y } }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = (data == nil || size == 0) ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    let path = "/var/lib/twostep/fuzz.record"
    do {
        let id = try SealedRecord.keyID(of: bytes, path: path)
        precondition((1...64).contains(id.utf8.count))
        precondition(id.utf8.count == Int(bytes[4]))
    } catch let e as StoreError { _ = "\(e)" } catch { preconditionFailure("keyID: \(error)") }

    do {
        let r = try UserRecord.parse(bytes, path: path)
        precondition(r.parameters.digits == 6 || r.parameters.digits == 8)
        let again = try UserRecord.parse(r.serialized(), path: path)
        precondition(bytesEqual(r.secret, again.secret) && bytesEqual(r.backupKey, again.backupKey))
        precondition(r.parameters == again.parameters && r.created == again.created)
        precondition(r.backupHashes == again.backupHashes)
        precondition(r.authenticators.count == again.authenticators.count && (1...Authenticator.maxCount).contains(r.authenticators.count))
        for (a, b) in zip(r.authenticators, again.authenticators) {
            precondition(a.name == b.name && a.kind == b.kind && a.parameters == b.parameters && a.added == b.added)
            precondition(bytesEqual(a.secret, b.secret) && Authenticator.isValidName(a.name))
        }
        precondition(r.extensions.map(\.key) == again.extensions.map(\.key) && r.extensions.map(\.value) == again.extensions.map(\.value))
    } catch let e as StoreError { _ = "\(e)" } catch { preconditionFailure("UserRecord: \(error)") }

    do {
        let s = try UserState.parse(bytes, path: path)
        precondition(s.failures.count <= 1_000 && s.devices.count <= Authenticator.maxCount)
        let again = try UserState.parse(s.serialized(), path: path)
        precondition(again == s, "UserState round trip")
    } catch let e as StoreError { _ = "\(e)" } catch { preconditionFailure("UserState: \(error)") }

    if let payload = StateFile.payload(of: bytes) {
        precondition(payload.count <= bytes.count)
        do { _ = try UserState.parse(payload, path: path) }
        catch let e as StoreError { _ = "\(e)" } catch { preconditionFailure("StateFile: \(error)") }
    }
    return 0
}
