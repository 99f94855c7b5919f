// SPDX-License-Identifier: Apache-2.0
import Glibc
import TwoStepCore
import TwoStepStore
import TwoStepSystem

/// When the clock is not synchronised, logins still verify, but the audit log hears of it:
/// one `clock_unsynchronised` event (result `warning`) an hour at most. Spawned helpers
/// share no memory, so the time of the last event is a small file in the state directory
/// (`.clock-warned`, written atomically under `.clock-lock`; a leading dot, which no
/// user's file name has).
public enum ClockWarning {
    public static let interval: Int64 = 3600
    static let file = ".clock-warned"

    /// Until when this process knows an event is on record (a long-lived socket worker
    /// then reads no marker on each login). Only ever skips work: the marker decides.
    nonisolated(unsafe) static var knownUntil: (stateDir: String, until: Int64)?

    /// `health` and `now` are injected by tests; a login passes the kernel's answer.
    public static func note(_ health: ClockHealth, config: Config, audit: AuditLog, service: String, now: Int64) {
        if health != .synchronised, let known = knownUntil, known.stateDir == config.stateDir,
           now >= known.until - interval, now < known.until {
            return
        }
        let detail: String
        switch health {
        case .synchronised: return
        case .unsynchronised: detail = "adjtimex: the clock is not synchronised by a time service"
        case .tooFarOff(let s): detail = "adjtimex: estimated error \(s) s exceeds \(ClockHealth.maxErrorSeconds) s"
        }
        // Best effort: without the marker (state directory unusable) no event is written,
        // rather than one per login; the login itself goes on either way.
        guard let dir = try? Files.openPrivateDirectory(config.stateDir) else { return }
        defer { close(dir) }
        // Whether the marker says an event is on record. Read first without the lock (the
        // marker is replaced by rename, so a read sees the old or the new one whole): every
        // login but one an hour ends here, and a spawned helper takes no lock for it. Read
        // again under the lock before writing, so two writers make one event.
        func onRecord() -> Bool {
            guard let bytes = try? Files.readPrivate(dirfd: dir, dirPath: config.stateDir, name: file, limit: 64),
                  let last = Int64(String(decoding: bytes, as: UTF8.self).filter { $0 != "\n" }),
                  last <= now, now - last < interval else { return false }
            knownUntil = (config.stateDir, last + interval)
            return true
        }
        if onRecord() { return }
        guard let lock = try? FileLock(dirfd: dir, dirPath: config.stateDir, name: ".clock-lock") else { return }
        defer { lock.unlock() }
        if onRecord() { return }
        // Under .clock-lock: one fixed temporary name, so a dead writer's leftover is
        // replaced by the next writer's instead of staying for ever.
        guard (try? Files.writeAtomically(dirfd: dir, dirPath: config.stateDir, name: file,
                                          bytes: Array("\(now)\n".utf8),
                                          temporary: Files.lockedTemporary(of: file))) != nil else { return }
        knownUntil = (config.stateDir, now + interval)
        audit.record(AuditEvent(event: "clock_unsynchronised", user: "-", service: service, result: "warning", detail: detail))
    }

    /// The kernel's view of the clock, as a ClockHealth (nil when adjtimex fails).
    public static func current() -> ClockHealth? {
        Sys.clockStatus().map { ClockHealth.assess(unsynchronised: $0.unsynchronised, maxErrorMicroseconds: $0.maxErrorMicroseconds) }
    }
}
