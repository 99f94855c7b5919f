// SPDX-License-Identifier: Apache-2.0
#define _GNU_SOURCE
#include "twostep_sys.h"
#include <stdlib.h>
#include "twostep_peercred.h"
#include <sys/prctl.h>
#include <sys/resource.h>
#include <signal.h>
#include <errno.h>
#include <stddef.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/timex.h>
#include <string.h>
#include <syslog.h>
#include <fcntl.h>

int twostep_sys_disable_dumps(void) {
    struct rlimit zero = {0, 0};
    int rc = setrlimit(RLIMIT_CORE, &zero);
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) rc = -1;
    return rc;
}

int twostep_sys_peer_uid(int fd, uid_t *uid) {
    return twostep_peercred_uid(fd, uid);
}

static void term_only(sigset_t *set) {
    sigemptyset(set);
    sigaddset(set, SIGTERM);
}

int twostep_sys_worker_signals(void) {
    sigset_t term;
    term_only(&term);
    if (signal(SIGTERM, SIG_DFL) == SIG_ERR) return -1;
    return sigprocmask(SIG_BLOCK, &term, NULL);
}

int twostep_sys_accept_idle(int fd) {
    sigset_t term;
    term_only(&term);
    sigprocmask(SIG_UNBLOCK, &term, NULL);
    int conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    int saved = errno;
    sigprocmask(SIG_BLOCK, &term, NULL);
    errno = saved;
    return conn;
}

int twostep_sys_ofd_trylock(int fd, long long offset) {
    struct flock lk;
    memset(&lk, 0, sizeof lk);
    lk.l_type = F_WRLCK;
    lk.l_whence = SEEK_SET;
    lk.l_start = (off_t)offset;
    lk.l_len = 1;
    lk.l_pid = 0;  /* F_OFD_* require it */
    int rc;
    do { rc = fcntl(fd, F_OFD_SETLK, &lk); } while (rc != 0 && errno == EINTR);
    if (rc == 0) return 1;
    if (errno == EAGAIN || errno == EACCES) return 0;
    return -1;
}

int twostep_sys_die_with_parent(pid_t parent) {
    if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) != 0) return -1;
    return getppid() == parent ? 0 : -1;
}

/* Fuzz/build.sh compiles every C file of this target for the store's fuzz targets. */
int twostep_sys_clock_status(int *unsynchronised, long *maxerror_us) {
    struct timex tx;
    memset(&tx, 0, sizeof tx);  /* modes 0: read only */
    int state = adjtimex(&tx);
    if (state == -1) return -1;
    *unsynchronised = (tx.status & STA_UNSYNC) != 0 || state == TIME_ERROR;
    *maxerror_us = tx.maxerror;
    return 0;
}

/* syslog(priority, "%s", message): the message is data, never a format. From Swift this
   avoids withVaList's CVarArg existential, whose first use costs a one-login process a
   search of every protocol conformance in the binary. */
void twostep_sys_syslog(int priority, const char *message) {
    syslog(priority, "%s", message);
}

/* realpath(path, NULL), malloc'd (free it): glibc's fortified inline realpath has one
   definition per Clang module, and Swift modules that also import COpenSSL see two. */
char *twostep_sys_realpath(const char *path) {
    return realpath(path, NULL);
}
