import Foundation

/// Reads one line from the terminal (or standard input when it is not one). With
/// `echo: false` and a terminal, typing is not shown.
func readAnswer(prompt: String, echo: Bool) -> String? {
    let tty = isatty(0) != 0
    FileHandle.standardError.write(prompt.data(using: .utf8)!)
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
            FileHandle.standardError.write("\n".data(using: .utf8)!)
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
    FileHandle.standardOutput.write((s + "\n").data(using: .utf8)!)
}
