// SPDX-License-Identifier: Apache-2.0
// PAM entry points and the libc/libpam wrappers the Swift relay uses. See pamshim.h.
#define _GNU_SOURCE
#include "pamshim.h"
#include "../CTwoStepSys/twostep_peercred.h"

#include <errno.h>
#include <fcntl.h>
#include <security/pam_ext.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

// Swift sees pid_t as Int32 and message styles / item ids as Int32.
_Static_assert(sizeof(pid_t) == sizeof(int32_t), "pid_t must be 32 bits");
_Static_assert(sizeof(int) == sizeof(int32_t), "int must be 32 bits");
// twostep_converse hands the conversation exactly one message.
_Static_assert(sizeof(struct pam_message) >= sizeof(int) + sizeof(const char *),
               "unexpected struct pam_message layout");

// MARK: - Entry points (the only exported symbols)

PAM_EXTERN int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv) {
    return twostep_swift_authenticate(pamh, flags, argc, argv);
}

// Nothing to do but check the line's arguments, as pam_sm_authenticate does.
PAM_EXTERN int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv) {
    (void)flags;
    return twostep_swift_check_arguments(pamh, argc, argv);
}

PAM_EXTERN int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv) {
    (void)flags;
    return twostep_swift_check_arguments(pamh, argc, argv);
}

// MARK: - libpam wrappers

void twostep_log(pam_handle_t *pamh, int priority, const char *msg) {
    pam_syslog(pamh, priority, "%s", msg != NULL ? msg : "(null)");
}

void twostep_wipe(void *p, size_t len) {
    if (p != NULL && len > 0) explicit_bzero(p, len);
}

void twostep_free_secret(char *s) {
    if (s == NULL) return;
    explicit_bzero(s, strlen(s));
    free(s);
}

int twostep_converse(pam_handle_t *pamh, int style, const char *msg, char **response) {
    if (response == NULL) return PAM_BUF_ERR;
    *response = NULL;

    const void *item = NULL;
    int rc = pam_get_item(pamh, PAM_CONV, &item);
    if (rc != PAM_SUCCESS) return rc;
    const struct pam_conv *conv = item;
    if (conv == NULL || conv->conv == NULL) return PAM_CONV_ERR;

    struct pam_message message = { .msg_style = style, .msg = msg != NULL ? msg : "" };
    const struct pam_message *messages[1] = { &message };
    struct pam_response *replies = NULL;
    rc = conv->conv(1, messages, &replies, conv->appdata_ptr);

    char *answer = NULL;
    if (replies != NULL) {
        answer = replies[0].resp;
        replies[0].resp = NULL;
        free(replies);
    }
    int wants_answer = (style == PAM_PROMPT_ECHO_OFF || style == PAM_PROMPT_ECHO_ON);
    if (rc != PAM_SUCCESS || !wants_answer) {
        twostep_free_secret(answer);
        return rc;
    }
    if (answer == NULL) return PAM_CONV_ERR;
    *response = answer;
    return PAM_SUCCESS;
}

int twostep_get_user(pam_handle_t *pamh, const char **user) {
    if (user == NULL) return PAM_BUF_ERR;
    *user = NULL;
    return pam_get_user(pamh, user, NULL);
}

int twostep_get_string_item(pam_handle_t *pamh, int item, const char **value) {
    if (value == NULL) return PAM_BUF_ERR;
    const void *p = NULL;
    int rc = pam_get_item(pamh, item, &p);
    *value = (rc == PAM_SUCCESS) ? p : NULL;
    return rc;
}

const char *twostep_getenv(pam_handle_t *pamh, const char *name) {
    return pam_getenv(pamh, name);
}

int twostep_set_authtok(pam_handle_t *pamh, const unsigned char *bytes, size_t len) {
    if (len > 4096) return PAM_BUF_ERR;
    char *copy = malloc(len + 1);
    if (copy == NULL) return PAM_BUF_ERR;
    if (len > 0) memcpy(copy, bytes, len);
    copy[len] = '\0';
    int rc = pam_set_item(pamh, PAM_AUTHTOK, copy);  /* libpam keeps its own copy */
    explicit_bzero(copy, len + 1);
    free(copy);
    return rc;
}

int twostep_fail_delay(pam_handle_t *pamh, unsigned int usec) {
    return pam_fail_delay(pamh, usec);
}

// MARK: - Sockets and the helper process

int twostep_socketpair(int fds[2]) {
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds);
}

ssize_t twostep_send(int fd, const void *buf, size_t len) {
    return send(fd, buf, len, MSG_NOSIGNAL);
}

ssize_t twostep_peek(int fd, void *buf, size_t len) {
    ssize_t n;
    do { n = recv(fd, buf, len, MSG_PEEK | MSG_DONTWAIT); } while (n < 0 && errno == EINTR);
    return n;
}

int twostep_spawn(const char *path, char *const argv[], int child_fd, pid_t *pid) {
    if (path == NULL || argv == NULL || pid == NULL || child_fd < 0) return EINVAL;

    // A host that closed its standard descriptors may have handed us fd 0..2; move the
    // child's end above them so the dup2s below cannot clobber it before it is copied.
    int fd = child_fd;
    int moved = -1;
    if (fd <= STDERR_FILENO) {
        moved = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
        if (moved < 0) return errno;
        fd = moved;
    }

    static char *const clean_env[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    sigset_t empty, all;
    int rc = posix_spawn_file_actions_init(&actions);
    if (rc != 0) goto out_fd;
    rc = posix_spawnattr_init(&attr);
    if (rc != 0) goto out_actions;

    if ((rc = posix_spawn_file_actions_adddup2(&actions, fd, STDIN_FILENO)) != 0 ||
        (rc = posix_spawn_file_actions_adddup2(&actions, fd, STDOUT_FILENO)) != 0 ||
        (rc = posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null",
                                               O_RDWR, 0)) != 0 ||
        (rc = posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1)) != 0)
        goto out_attr;

    sigemptyset(&empty);
    sigfillset(&all);
    if ((rc = posix_spawnattr_setsigmask(&attr, &empty)) != 0 ||
        (rc = posix_spawnattr_setsigdefault(&attr, &all)) != 0 ||
        (rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)) != 0)
        goto out_attr;

    rc = posix_spawn(pid, path, &actions, &attr, argv, clean_env);

out_attr:
    posix_spawnattr_destroy(&attr);
out_actions:
    posix_spawn_file_actions_destroy(&actions);
out_fd:
    if (moved >= 0) close(moved);
    return rc;
}

int twostep_pidfd_open(pid_t pid) {
#ifdef SYS_pidfd_open
    long fd = syscall(SYS_pidfd_open, pid, 0);
    if (fd >= 0) {
        // pidfd_open sets close-on-exec itself; nothing else to do.
        return (int)fd;
    }
#else
    (void)pid;
#endif
    return -1;
}

int twostep_kill_child(int pidfd, pid_t pid) {
#ifdef SYS_pidfd_send_signal
    if (pidfd >= 0) {
        if (syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) == 0) return 0;
        if (errno == ESRCH) return 0;  // already gone
        if (errno != ENOSYS) return -1;
    }
#else
    (void)pidfd;
#endif
    if (pid <= 0) return -1;
    return kill(pid, SIGKILL);
}

#ifndef P_PIDFD
#define P_PIDFD 3  /* <linux/wait.h>; glibc 2.36's idtype_t does not name it */
#endif

int twostep_reap_child(int pidfd, pid_t pid, int blocking) {
    int options = blocking ? 0 : WNOHANG;
    if (pidfd >= 0) {
        for (;;) {
            siginfo_t info;
            memset(&info, 0, sizeof info);
            if (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info, WEXITED | options) == 0) return info.si_pid != 0;
            if (errno == EINTR) continue;
            if (errno == EINVAL) break;  // a kernel before 5.4: no P_PIDFD, wait by pid
            return 1;                    // ECHILD: the host reaped it; nothing is ours to wait for
        }
    }
    for (;;) {
        int status;
        pid_t rc = waitpid(pid, &status, options);
        if (rc == pid) return 1;
        if (rc == 0) return 0;
        if (errno == EINTR) continue;
        return 1;  // ECHILD or anything else: nothing left for us to wait for
    }
}

// MARK: - A running helper's socket

int twostep_connect_unix(const char *path, int timeout_ms, int *fd) {
    if (path == NULL || fd == NULL || timeout_ms < 0) return EINVAL;
    *fd = -1;
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    size_t len = strlen(path);
    if (len == 0) return EINVAL;
    if (len >= sizeof addr.sun_path) return ENAMETOOLONG;
    memcpy(addr.sun_path, path, len);

    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return errno;
    // A blocking connect to a local socket returns at once, unless the server's backlog
    // is full; then the kernel waits for room at most SO_SNDTIMEO, and says EAGAIN.
    struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
    if (setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
        int err = errno;
        close(s);
        return err;
    }
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
    for (int tries = 0;; tries++) {
        if (connect(s, (const struct sockaddr *)&addr, alen) == 0) break;
        int err = errno;
        // An AF_UNIX connect interrupted while waiting for backlog room has not connected;
        // trying again is safe. A few times only: a host that signals constantly is not
        // left waiting here.
        if (err == EINTR && tries < 3) continue;
        close(s);
        return err;
    }
    *fd = s;
    return 0;
}

int twostep_peer_uid(int fd, uid_t *uid) {
    return twostep_peercred_uid(fd, uid);
}

int twostep_first_socket_fallback(void) {
    static int done;
    return __atomic_exchange_n(&done, 1, __ATOMIC_RELAXED) == 0;
}
