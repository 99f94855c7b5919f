// SPDX-License-Identifier: Apache-2.0
#pragma once
/* What the helper inherits from whoever started it, reset before anything else runs.
   A setuid host (sudo, su) passes on its caller's resource limits, signal dispositions,
   nice value, scheduling policy, I/O class, CPU mask, timer slack, timers and real uid;
   none of that may steer a root helper. */

/* Returns 0, or -1 with errno when running as euid 0 and the ids could not all be set
   to root (the caller must then stop: fail closed). */
int twostep_sys_reset_inherited(void);
/* Leaves the caller's session and terminal process group (so ^C, ^Z and a hangup on the
   user's terminal no longer reach us). Returns 0 or -1. */
int twostep_sys_new_session(void);
/* After twostep_sys_reset_inherited: the name of a limit still too low for a whole login
   (a root without CAP_SYS_RESOURCE, e.g. in a container, cannot raise a hard limit the
   caller lowered), or NULL. */
const char *twostep_sys_limit_too_low(void);
