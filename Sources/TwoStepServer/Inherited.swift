// SPDX-License-Identifier: Apache-2.0
import CTwoStepSys

/// Resets what the helper inherits from whoever started it (ids, resource limits, signal
/// dispositions and mask, timers, umask, cwd, nice, personality): see CTwoStepSys'
/// twostep_inherit.h. Runs first in `main`; false means stop (ids could not be made root).
public func resetInheritedState() -> Bool {
    twostep_sys_reset_inherited() == 0
}

/// The resource limit still too low for a whole login after the reset (the caller lowered
/// a hard limit and we lack CAP_SYS_RESOURCE), or nil. Checked before anyone is prompted:
/// a limit that only the rarest path would hit (a backup code re-seals the record) must
/// not make a right code fail where a wrong one is counted.
public func limitTooLow() -> String? {
    twostep_sys_limit_too_low().map { String(cString: $0) }
}

/// Leaves the caller's session, so signals from the user's terminal (^C, ^Z, hangup)
/// cannot reach a login in progress.
public func leaveCallerSession() {
    _ = twostep_sys_new_session()
}
