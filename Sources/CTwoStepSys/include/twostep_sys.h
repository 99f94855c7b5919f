// SPDX-License-Identifier: Apache-2.0
#pragma once
#include <sys/types.h>
/* Process and socket calls the Swift Glibc overlay does not reach (they need _GNU_SOURCE).
   Shared by the helper, the CLI and the PAM module (SO_PEERCRED); no secrets here. */

/* Forbids core dumps and same-uid ptrace of this process. Returns 0 on success. */
int twostep_sys_disable_dumps(void);
/* The uid of the process at the other end of a Unix socket (SO_PEERCRED: for a
   server, whoever created its listening socket). 0, or -1 with errno set. */
int twostep_sys_peer_uid(int fd, uid_t *uid);
/* Asks the kernel to SIGTERM this process when its parent exits; returns -1 if the parent
   is already gone (reparented), else 0. */
int twostep_sys_die_with_parent(pid_t parent);
/* A pre-forked worker's SIGTERM (the server stopping: systemd's stop of the main process,
   or PR_SET_PDEATHSIG once it is gone) ends it only while it waits for a connection: it
   is blocked from here on (default action), and twostep_sys_accept_idle unblocks it for
   the accept alone. So an idle worker ends at once, and one serving a login (a user at
   the code prompt) answers it first and ends after. 0, or -1 with errno set. */
int twostep_sys_worker_signals(void);
/* accept4(fd, NULL, NULL, SOCK_CLOEXEC) with SIGTERM unblocked during the wait: a
   pending or arriving SIGTERM ends the process here. */
int twostep_sys_accept_idle(int fd);
/* Takes an exclusive open-file-description lock (fcntl F_OFD_SETLK) on the one byte at
   `offset` of `fd`, without waiting. It is the open file description's: it ends when the
   last descriptor of it is closed (when the process ends at the latest). 1 taken, 0 held
   by another open file description, -1 with errno set. */
int twostep_sys_ofd_trylock(int fd, long long offset);
/* The kernel's NTP view of the clock (adjtimex(2) with modes 0: reads, changes nothing).
   *unsynchronised: STA_UNSYNC set or the clock state TIME_ERROR; *maxerror_us: the kernel's
   maximum error estimate in microseconds. Returns 0, or -1 with errno set. */
int twostep_sys_clock_status(int *unsynchronised, long *maxerror_us);
/* syslog(priority, "%s", message). */
void twostep_sys_syslog(int priority, const char *message);
/* realpath(path, NULL): the resolved path, malloc'd, or NULL with errno set. */
char *twostep_sys_realpath(const char *path);
