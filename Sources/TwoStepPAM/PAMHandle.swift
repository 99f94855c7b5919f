// SPDX-License-Identifier: Apache-2.0
// The module's one seam to libpam (through PAMShim). Nothing here holds a secret; the
// user's typed answer is handed to the caller as a C buffer that it must wipe and free.
import PAMShim

struct PAMHandle {
    let handle: OpaquePointer
    var debug = false

    func log(_ priority: Int32, _ message: String) {
        message.withCString { twostep_log(handle, priority, $0) }
    }

    func error(_ message: String) { log(TWOSTEP_LOG_ERR, message) }

    func debugLog(_ message: String) {
        if debug { log(TWOSTEP_LOG_DEBUG, message) }
    }

    /// The user being authenticated; PAM's code when it cannot be had. A name that is not
    /// valid UTF-8 is PAM_USER_UNKNOWN: `String(cString:)` would replace its bad bytes with
    /// U+FFFD, so that `x\xe9` and `x\xe8` (two accounts to NSS) became one name to the
    /// helper, and a name the helper cannot look up as given could be neither enrolled nor
    /// required to use two-step login.
    func user() -> Result<String, PAMCode> {
        var p: UnsafePointer<CChar>? = nil
        let rc = twostep_get_user(handle, &p)
        guard rc == TWOSTEP_PAM_SUCCESS else { return .failure(PAMCode(rc)) }
        guard let p, p.pointee != 0 else { return .failure(PAMCode(TWOSTEP_PAM_USER_UNKNOWN)) }
        guard let name = String(validatingCString: p) else { return .failure(PAMCode(TWOSTEP_PAM_USER_UNKNOWN)) }
        return .success(name)
    }

    /// A string item, or "" when unset.
    func stringItem(_ item: Int32) -> String {
        var p: UnsafePointer<CChar>? = nil
        guard twostep_get_string_item(handle, item, &p) == TWOSTEP_PAM_SUCCESS, let p else { return "" }
        return String(cString: p)
    }

    /// A variable from the PAM environment, or "" when unset.
    func environment(_ name: String) -> String {
        guard let p = name.withCString({ twostep_getenv(handle, $0) }) else { return "" }
        return String(cString: p)
    }

    func setFailDelay(microseconds: UInt32) {
        _ = twostep_fail_delay(handle, microseconds)
    }

    /// Shows a message (PAM_TEXT_INFO / PAM_ERROR_MSG). Returns the PAM code.
    func show(style: Int32, _ text: UnsafePointer<CChar>) -> Int32 {
        var reply: UnsafeMutablePointer<CChar>? = nil
        let rc = twostep_converse(handle, style, text, &reply)
        twostep_free_secret(reply)  // the shim never returns one for messages; be sure
        return rc
    }

    /// Asks the user. On success `body` gets the answer; the answer is wiped and freed
    /// afterwards whatever happens.
    func prompt<T>(style: Int32, _ text: UnsafePointer<CChar>,
                   _ body: (UnsafeBufferPointer<UInt8>) -> T) -> Result<T, PAMCode> {
        var reply: UnsafeMutablePointer<CChar>? = nil
        let rc = twostep_converse(handle, style, text, &reply)
        defer { twostep_free_secret(reply) }
        guard rc == TWOSTEP_PAM_SUCCESS, let reply else {
            return .failure(PAMCode(rc == TWOSTEP_PAM_SUCCESS ? TWOSTEP_PAM_CONV_ERR : rc))
        }
        let length = strlen(reply)
        return reply.withMemoryRebound(to: UInt8.self, capacity: length + 1) {
            .success(body(UnsafeBufferPointer(start: $0, count: length)))
        }
    }
}

/// A PAM return code as an Error, so failure paths can carry it through Result.
struct PAMCode: Error, Equatable {
    let rawValue: Int32
    init(_ rawValue: Int32) { self.rawValue = rawValue }
}
