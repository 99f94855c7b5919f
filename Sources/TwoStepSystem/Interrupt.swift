// SPDX-License-Identifier: Apache-2.0
import CTwoStepSys
import Glibc

/// Ctrl-C (SIGINT) and SIGTERM during long admin work: caught as a flag that the work loop
/// polls between records, so a record is never left half-written and the command can say
/// what was done before it exits non-zero.
public enum Interrupt {
    /// Starts catching SIGINT and SIGTERM for the rest of the process.
    public static func catchSignals() {
        _ = twostep_interrupt_catch()
    }

    /// The signal that asked us to stop (SIGINT or SIGTERM), or nil.
    public static var requested: Int32? {
        let s = twostep_interrupt_pending()
        return s == 0 ? nil : s
    }

    /// The exit status a shell gives a command killed by `signal` (130 for SIGINT).
    public static func exitStatus(_ signal: Int32) -> Int32 { 128 + signal }
}
