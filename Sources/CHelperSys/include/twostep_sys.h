#pragma once
/* Process hygiene the Swift Glibc overlay does not reach. */
/* Forbids core dumps and same-uid ptrace of this process. Returns 0 on success. */
int twostep_sys_disable_dumps(void);
