// SPDX-License-Identifier: Apache-2.0
import CTwoStepSys
import Glibc
import TwoStepCrypto
import TwoStepSystem

/// Reads one line from the terminal (or standard input when it is not one). With
/// `echo: false` and a terminal, typing is not shown. The line stays in SecretBytes.
func readAnswer(prompt: String, echo: Bool) -> SecretBytes? {
    let tty = isatty(0) != 0
    writeStderr(prompt)
    // Echo off through CTwoStepSys (twostep_hidden.h): a Ctrl-C, Ctrl-Z or kill while the
    // input is hidden puts the terminal back before it takes effect.
    let hide = tty && !echo && twostep_hidden_begin(0) == 0
    defer {
        if hide {
            twostep_hidden_end()
            writeStderr("\n")
        }
    }
    return readLineUnbuffered()
}

/// One line from fd 0, read a byte at a time: a buffered reader would swallow input that
/// belongs to the next prompt (or to the PAM conversation that follows) when stdin is a pipe.
func readLineUnbuffered(limit: Int = 4096) -> SecretBytes? {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(limit)   // no regrowth: no copies of the line left behind
    defer { Crypto.wipe(&bytes) }
    var byte: UInt8 = 0
    while bytes.count < limit {
        let n = Sys.retry { read(0, &byte, 1) }
        if n <= 0 {
            if bytes.isEmpty { return nil }
            break
        }
        if byte == UInt8(ascii: "\n") { break }
        bytes.append(byte)
    }
    byte = 0
    if bytes.last == UInt8(ascii: "\r") { bytes[bytes.count - 1] = 0; bytes.removeLast() }
    return SecretBytes(bytes)
}

func say(_ s: String) {
    writeStdout(s + "\n")
}
