// SPDX-License-Identifier: Apache-2.0
// forward_pass: one prompt `Password and verification code:` for clients that show only one.
// The trailing code goes to the helper; the password never does: it becomes PAM_AUTHTOK for
// the next module (`pam_unix.so use_first_pass`). The helper's prompt says how many digits
// its code has (CombinedPrompt), so a password ending in digits is never cut wrongly.
import PAMShim
import TwoStepProtocol

/// Where the password and the code lie in one combined answer.
struct CombinedAnswer: Equatable {
    let password: Range<Int>
    let code: Range<Int>

    /// `digits` trailing digits are the code (one space before them is dropped); otherwise
    /// the word after the last space is (a backup code). nil when there is no code at all.
    static func split(_ answer: UnsafeBufferPointer<UInt8>, digits: Int) -> CombinedAnswer? {
        let n = answer.count
        let space = UInt8(ascii: " ")
        if n >= digits, (n - digits..<n).allSatisfy({ answer[$0] >= UInt8(ascii: "0") && answer[$0] <= UInt8(ascii: "9") }) {
            var end = n - digits
            if end > 0 && answer[end - 1] == space { end -= 1 }
            return CombinedAnswer(password: 0..<end, code: n - digits..<n)
        }
        var i = n
        while i > 0 {
            i -= 1
            if answer[i] == space {
                guard i + 1 < n else { return nil }
                return CombinedAnswer(password: 0..<i, code: i + 1..<n)
            }
        }
        return nil
    }
}

extension Relay {
    /// Asks the combined prompt, sets PAM_AUTHTOK from the password part and sends only the
    /// code part to the helper. With no recognisable code, the helper gets an empty answer
    /// (refused; an answer no code could have is not counted against rate_limit) and
    /// PAM_AUTHTOK stays unset.
    func forwardPassAnswer(_ answer: UnsafeBufferPointer<UInt8>, digits: Int) -> Result<Void, HelperConnectionError> {
        guard let parts = CombinedAnswer.split(answer, digits: digits), let base = answer.baseAddress else {
            return connection.sendAnswer(UnsafeBufferPointer(start: nil, count: 0))
        }
        let rc = twostep_set_authtok(pam.handle, base + parts.password.lowerBound, parts.password.count)
        if rc != TWOSTEP_PAM_SUCCESS { pam.error("cannot set PAM_AUTHTOK (\(rc))") }
        return connection.sendAnswer(UnsafeBufferPointer(rebasing: answer[parts.code]))
    }
}
