// SPDX-License-Identifier: Apache-2.0
// QR codes for enrollment: in the terminal (UTF-8 half blocks) and as PNG bytes.
import CQRCode

public struct QRCodeError: Error, Equatable, CustomStringConvertible {
    /// The TWOSTEP_QR_* status from the C layer.
    public let code: Int32
    public let operation: String

    public init(code: Int32, operation: String) {
        self.code = code
        self.operation = operation
    }

    public var description: String {
        let reason: String
        switch code {
        case TWOSTEP_QR_EINVAL: reason = "invalid argument (empty text, or scale/margin out of range)"
        case TWOSTEP_QR_EENCODE: reason = "the text cannot be encoded (too long for a QR code?)"
        case TWOSTEP_QR_ENOMEM: reason = "out of memory"
        case TWOSTEP_QR_EPNG: reason = "libpng error"
        default: reason = "error \(code)"
        }
        return "QR code \(operation) failed: \(reason)"
    }
}

public enum QRCode {
    /// Modules of quiet zone drawn around the terminal rendering.
    public static let terminalQuietZone = 2

    /// The module matrix: `width` x `width`, row-major, true = dark.
    public static func matrix(_ text: String) throws -> (width: Int, modules: [Bool]) {
        var width: Int32 = 0
        var pointer: UnsafeMutablePointer<UInt8>? = nil
        let rc = twostep_qr_matrix(text, &width, &pointer)
        guard rc == 0, let modules = pointer else { throw QRCodeError(code: rc == 0 ? TWOSTEP_QR_EENCODE : rc, operation: "encoding") }
        defer { twostep_qr_free(modules) }
        let n = Int(width) * Int(width)
        return (Int(width), UnsafeBufferPointer(start: modules, count: n).map { $0 != 0 })
    }

    /// The QR code as text, two module rows per line with UTF-8 half blocks
    /// ("█" "▀" "▄" " "), inside a quiet zone of `terminalQuietZone` modules.
    ///
    /// By default the LIGHT modules and the quiet zone are drawn (in the terminal's
    /// foreground colour) and dark modules are left as spaces (the background). That is
    /// what a phone camera reads on the usual light-on-dark terminal. Pass `invert: true`
    /// for a terminal with dark text on a light background.
    public static func terminal(_ text: String, invert: Bool = false) throws -> String {
        let (width, modules) = try matrix(text)
        let q = terminalQuietZone
        let side = width + 2 * q
        // Whether the cell (x, y) of the padded square gets ink.
        func ink(_ x: Int, _ y: Int) -> Bool {
            guard y < side else { return false }  // below the last row: terminal background
            let mx = x - q, my = y - q
            let dark = mx >= 0 && mx < width && my >= 0 && my < width && modules[my * width + mx]
            return invert ? dark : !dark
        }
        var out = ""
        out.reserveCapacity((side + 1) * (side + 1) / 2 * 3)
        var y = 0
        while y < side {
            for x in 0..<side {
                switch (ink(x, y), ink(x, y + 1)) {
                case (true, true): out += "\u{2588}"   // █
                case (true, false): out += "\u{2580}"  // ▀
                case (false, true): out += "\u{2584}"  // ▄
                case (false, false): out += " "
                }
            }
            out += "\n"
            y += 2
        }
        return out
    }

    /// A 1-bit grayscale PNG: `scale` pixels per module (1...64), `margin` modules of
    /// quiet zone (0...64; 4 is what the QR standard asks for).
    public static func png(_ text: String, scale: Int = 6, margin: Int = 4) throws -> [UInt8] {
        guard (1...Int(TWOSTEP_QR_MAX_SCALE)).contains(scale), (0...Int(TWOSTEP_QR_MAX_MARGIN)).contains(margin) else {
            throw QRCodeError(code: TWOSTEP_QR_EINVAL, operation: "PNG")
        }
        var pointer: UnsafeMutablePointer<UInt8>? = nil
        var length = 0
        let rc = twostep_qr_png(text, Int32(scale), Int32(margin), &pointer, &length)
        guard rc == 0, let png = pointer else { throw QRCodeError(code: rc == 0 ? TWOSTEP_QR_EPNG : rc, operation: "PNG") }
        defer { twostep_qr_free(png) }
        return Array(UnsafeBufferPointer(start: png, count: length))
    }
}
