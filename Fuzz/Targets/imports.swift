// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the readers of other modules' files, which root runs on files users
// may write: google-authenticator's ~/.google_authenticator and pam_oath's usersfile.
// Only GoogleAuthenticatorFileError may come out; what is accepted must be consistent.
import TwoStepCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = (data == nil || size == 0) ? [] : Array(UnsafeBufferPointer(start: data, count: size))

    do {
        let f = try GoogleAuthenticatorFile.parse(bytes)
        precondition(f.secret.count > 0)
        precondition(f.scratchCodes.allSatisfy { $0.count == GoogleAuthenticatorFile.scratchCodeLength })
        if case .totp(let step)? = f.mode { precondition((1...60).contains(step)) }
        if case .hotp(let counter)? = f.mode { precondition(counter >= 1) }
        if let w = f.windowSize { precondition((1...100).contains(w)) }
        precondition(f.unknownOptions.allSatisfy { name in
            name.utf8.allSatisfy { ($0 >= 65 && $0 <= 90) || ($0 >= 48 && $0 <= 57) || $0 == 95 }
        })
    } catch {
        _ = error.description
    }

    let oath = OathUsersFile.parse(bytes)
    for e in oath.entries {
        precondition(!e.user.isEmpty && e.secret.count <= OathUsersFile.maxSecretBytes)
        precondition((6...8).contains(e.kind.digits))
        precondition(e.lastOTP.map { !$0.isEmpty && $0.allSatisfy { $0 >= 48 && $0 <= 57 } } ?? true)
    }
    precondition(oath.problems.allSatisfy { $0.line >= 1 })
    return 0
}
