// SPDX-License-Identifier: Apache-2.0
// PAMShim: the C seam between libpam/libc and the Swift relay in TwoStepPAM.
//
// It exports the three pam_sm_* entry points (the only symbols the export map keeps) and
// wraps what Swift cannot call well: PAM's variadic logger, the conversation callback,
// item getters, posix_spawn, and the connect to a running helper (socket=). Every symbol
// is prefixed `twostep_`; macro values Swift needs are exported as constants below. None of this holds or sees a TOTP secret; it
// only carries the user's typed answer, which callers wipe with twostep_free_secret().
#pragma once

#include <security/pam_appl.h>
#include <security/pam_modules.h>
#include <stddef.h>
#include <sys/types.h>

// The libc the Swift relay calls. The module is built as Embedded Swift, which has no Glibc
// overlay: these headers are its only view of libc (also in the SwiftPM build, for one
// source of truth).
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

// PAM return codes and message styles, as constants for Swift.
static const int TWOSTEP_PAM_SUCCESS = PAM_SUCCESS;
static const int TWOSTEP_PAM_SERVICE_ERR = PAM_SERVICE_ERR;
static const int TWOSTEP_PAM_SYSTEM_ERR = PAM_SYSTEM_ERR;
static const int TWOSTEP_PAM_BUF_ERR = PAM_BUF_ERR;
static const int TWOSTEP_PAM_AUTH_ERR = PAM_AUTH_ERR;
static const int TWOSTEP_PAM_AUTHINFO_UNAVAIL = PAM_AUTHINFO_UNAVAIL;
static const int TWOSTEP_PAM_USER_UNKNOWN = PAM_USER_UNKNOWN;
static const int TWOSTEP_PAM_MAXTRIES = PAM_MAXTRIES;
static const int TWOSTEP_PAM_CONV_ERR = PAM_CONV_ERR;
static const int TWOSTEP_PAM_IGNORE = PAM_IGNORE;

static const int TWOSTEP_PAM_PROMPT_ECHO_OFF = PAM_PROMPT_ECHO_OFF;
static const int TWOSTEP_PAM_PROMPT_ECHO_ON = PAM_PROMPT_ECHO_ON;
static const int TWOSTEP_PAM_ERROR_MSG = PAM_ERROR_MSG;
static const int TWOSTEP_PAM_TEXT_INFO = PAM_TEXT_INFO;

static const int TWOSTEP_PAM_SILENT = PAM_SILENT;

static const int TWOSTEP_PAM_SERVICE = PAM_SERVICE;
static const int TWOSTEP_PAM_TTY = PAM_TTY;
static const int TWOSTEP_PAM_RHOST = PAM_RHOST;
static const int TWOSTEP_PAM_RUSER = PAM_RUSER;

// syslog priorities (pam_syslog adds the facility).
static const int TWOSTEP_LOG_ERR = 3;
static const int TWOSTEP_LOG_WARNING = 4;
static const int TWOSTEP_LOG_NOTICE = 5;
static const int TWOSTEP_LOG_INFO = 6;
static const int TWOSTEP_LOG_DEBUG = 7;

/// errno of the calling thread (Embedded Swift has no Glibc overlay to read it).
static inline int twostep_errno(void) { return errno; }

/// Implemented in Swift (TwoStepPAM, `@_cdecl`); kept local by exports.map.
int twostep_swift_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv);
int twostep_swift_check_arguments(pam_handle_t *pamh, int argc, const char **argv);

/// pam_syslog(pamh, priority, "%s", msg): the message is never a format string.
void twostep_log(pam_handle_t *pamh, int priority, const char *msg);

/// One message through the application's conversation function. For prompt styles a
/// non-NULL *response (malloc'd) is returned on PAM_SUCCESS; the caller must release it with
/// twostep_free_secret(). For info/error styles *response is always NULL.
int twostep_converse(pam_handle_t *pamh, int style, const char *msg, char **response);

/// pam_get_user without a prompt; *user stays owned by libpam.
int twostep_get_user(pam_handle_t *pamh, const char **user);

/// pam_get_item for string items (PAM_SERVICE, PAM_RHOST, ...); *value may be NULL.
int twostep_get_string_item(pam_handle_t *pamh, int item, const char **value);

/// pam_getenv; NULL when unset. The string stays owned by libpam.
const char *twostep_getenv(pam_handle_t *pamh, const char *name);

/// pam_fail_delay.
/// Sets PAM_AUTHTOK (for the next module's use_first_pass) from `len` bytes, not
/// NUL-terminated; the shim's temporary copy is wiped. forward_pass only.
int twostep_set_authtok(pam_handle_t *pamh, const unsigned char *bytes, size_t len);

int twostep_fail_delay(pam_handle_t *pamh, unsigned int usec);

/// Zeroes len bytes in a way the optimizer cannot drop.
void twostep_wipe(void *p, size_t len);

/// Wipes a NUL-terminated secret and frees it; NULL is fine.
void twostep_free_secret(char *s);

/// A connected AF_UNIX stream socketpair with close-on-exec on both ends; 0 or -1 (errno).
int twostep_socketpair(int fds[2]);

/// send(fd, buf, len, MSG_NOSIGNAL): a dead helper must not SIGPIPE the host.
ssize_t twostep_send(int fd, const void *buf, size_t len);

/// recv(fd, buf, len, MSG_PEEK | MSG_DONTWAIT): what has arrived, left to be read.
ssize_t twostep_peek(int fd, void *buf, size_t len);

/// Starts `path` with `argv`; the child's fd 0 and 1 are `child_fd`, fd 2 is /dev/null, no
/// other descriptor is inherited, the signal mask is empty and every signal has its default
/// action, the environment is only a fixed PATH. Returns 0 or an errno value.
int twostep_spawn(const char *path, char *const argv[], int child_fd, pid_t *pid);

/// A pidfd for `pid` (Linux 5.3+), or -1 with errno set (ESRCH: the child is already gone,
/// e.g. reaped by a host that ignores SIGCHLD). Lets the module signal and wait for exactly
/// its own child, with no pid-reuse race.
int twostep_pidfd_open(pid_t pid);

/// SIGKILL the child: through the pidfd when there is one, else by pid.
int twostep_kill_child(int pidfd, pid_t pid);

/// Reaps the child: 1 when it has exited and been reaped, or is not ours to wait for any
/// more (the host reaped it); 0 when it still runs (only without `blocking`). With a pidfd
/// it waits for exactly that process (waitid P_PIDFD, Linux 5.4+): if the host has reaped
/// our child and its pid went to another of the host's children, that one is left alone,
/// where waitpid(pid) would wait for it and take its exit status. By pid otherwise.
int twostep_reap_child(int pidfd, pid_t pid, int blocking);

/// Connects a close-on-exec AF_UNIX stream socket to `path` (a running
/// `twostep-helper serve`). When the listener's backlog is full, connect() waits at most
/// `timeout_ms` (SO_SNDTIMEO, which then also bounds every later send) and fails with
/// EAGAIN. Returns 0 with *fd set, or an errno value: ENOENT / ECONNREFUSED mean no
/// server is running; ENAMETOOLONG a path that does not fit sun_path.
int twostep_connect_unix(const char *path, int timeout_ms, int *fd);

/// The uid of the process at the other end of a connected AF_UNIX socket (SO_PEERCRED:
/// for a server, whoever created its listening socket). 0 or -1 (errno). The call itself
/// is written once, in CTwoStepSys/include/twostep_peercred.h.
int twostep_peer_uid(int fd, uid_t *uid);

/// 1 for the first call in this process, 0 for every later one (atomic). Lets a notice
/// that would repeat on every login be logged once per host process.
int twostep_first_socket_fallback(void);

#ifdef __cplusplus
}
#endif
