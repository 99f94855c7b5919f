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
    return readLine(strippingNewline: true)
}

func say(_ s: String) {
    FileHandle.standardOutput.write((s + "\n").data(using: .utf8)!)
}
