// SPDX-License-Identifier: Apache-2.0

/// Whether the system clock can be trusted for TOTP, decided from what adjtimex(2) says
/// (read by TwoStepSystem; injected here so the decision is tested with any value).
/// The plan's limit: at most 30 s of error.
public enum ClockHealth: Equatable {
    case synchronised
    /// No time service has the clock in hand (STA_UNSYNC): codes still work while it is right.
    case unsynchronised
    /// The kernel's own estimate of the error exceeds the limit: codes will fail.
    case tooFarOff(seconds: Int64)

    /// The largest estimated error accepted, in seconds.
    public static let maxErrorSeconds: Int64 = 30

    /// Beyond the limit is a failure whatever the status says; an unsynchronised clock is a
    /// warning (the kernel caps an unsynchronised clock's own estimate at 16 s).
    public static func assess(unsynchronised: Bool, maxErrorMicroseconds: Int64) -> ClockHealth {
        if maxErrorMicroseconds > maxErrorSeconds * 1_000_000 {
            return .tooFarOff(seconds: maxErrorMicroseconds / 1_000_000)
        }
        return unsynchronised ? .unsynchronised : .synchronised
    }
}
