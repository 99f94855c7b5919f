import Glibc
import TwoStepHelperKit
import TwoStepStore

/// Reads one line from the terminal (or standard input when it is not one). With
/// `echo: false` and a terminal, typing is not shown.
func readAnswer(prompt: String, echo: Bool) -> String? {
    let tty = isatty(0) != 0
    writeStderr(prompt)
    var saved = termios()
    let hide = tty && !echo && tcgetattr(0, &saved) == 0
    if hide {
        var t = saved
        t.c_lflag &= ~tcflag_t(ECHO)
        _ = tcsetattr(0, TCSAFLUSH, &t)
    }
    defer {
        if hide {
            _ = tcsetattr(0, TCSAFLUSH, &saved)
            writeStderr("\n")
        }
    }
    return readLineUnbuffered()
}

/// One line from fd 0, read a byte at a time: a buffered reader would swallow input that
/// belongs to the next prompt (or to the PAM conversation that follows) when stdin is a pipe.
func readLineUnbuffered(limit: Int = 4096) -> String? {
    var bytes: [UInt8] = []
    var byte: UInt8 = 0
    while bytes.count < limit {
        let n = read(0, &byte, 1)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self) }
        if byte == UInt8(ascii: "\n") { break }
        bytes.append(byte)
    }
    if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
    defer { for i in bytes.indices { bytes[i] = 0 } }
    return String(decoding: bytes, as: UTF8.self)
}

func say(_ s: String) {
    writeStdout(s + "\n")
}

func writeStdout(_ s: String) {
    var bytes = Array(s.utf8)
    var off = 0
    while off < bytes.count {
        let n = bytes.withUnsafeMutableBytes { write(1, $0.baseAddress! + off, $0.count - off) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return }
        off += n
    }
}

/// JSON text for the CLI's answers (strings, integers, booleans, arrays and objects),
/// keys sorted, two-space indented.
func jsonText(_ value: Any, indent: String = "") -> String {
    let inner = indent + "  "
    switch value {
    case let s as String: return jsonString(s)
    case let b as Bool: return b ? "true" : "false"
    case let i as Int: return String(i)
    case let i as Int64: return String(i)
    case let a as [Any]:
        if a.isEmpty { return "[]" }
        return "[\n" + a.map { inner + jsonText($0, indent: inner) }.joined(separator: ",\n") + "\n" + indent + "]"
    case let o as [String: Any]:
        if o.isEmpty { return "{}" }
        return "{\n" + o.keys.sorted().map { k in
            inner + jsonString(k) + " : " + jsonText(o[k] as Any, indent: inner)
        }.joined(separator: ",\n") + "\n" + indent + "}"
    default: return "null"
    }
}
