// SPDX-License-Identifier: Apache-2.0
#define _GNU_SOURCE
#include "twostep_inherit.h"
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stddef.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

/* The floor each limit is raised to when a caller set it lower. Infinity where the
   helper needs no cap of its own (the alarm and the module's timeout bound it); a
   floor, not a reset, for descriptors and stack (a service may raise them further). */
struct floor { int resource; rlim_t value; };
static const struct floor floors[] = {
    { RLIMIT_FSIZE,   RLIM_INFINITY },  /* a capped write would kill or truncate a state write */
    { RLIMIT_CPU,     RLIM_INFINITY },  /* SIGXCPU mid-login */
    { RLIMIT_AS,      RLIM_INFINITY },  /* allocation failure = trap mid-verify */
    { RLIMIT_DATA,    RLIM_INFINITY },
    { RLIMIT_RSS,     RLIM_INFINITY },
    { RLIMIT_NPROC,   RLIM_INFINITY },  /* libpam's helpers (password_service) fork */
    { RLIMIT_LOCKS,   RLIM_INFINITY },  /* flock of the user's lock */
    { RLIMIT_SIGPENDING, 1024 },
    { RLIMIT_MEMLOCK, 8u << 20 },       /* OpenSSL may mlock its secure heap */
    { RLIMIT_STACK,   8u << 20 },       /* the main thread grows against the current limit */
    { RLIMIT_NOFILE,  4096 },           /* the server holds one descriptor per connection */
};

static void raise_limit(int resource, rlim_t want, int root) {
    struct rlimit r;
    if (getrlimit(resource, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return;
    if (want != RLIM_INFINITY && r.rlim_cur >= want) return;
    /* Root may raise the hard limit; anyone may raise the soft one up to it. */
    if (root && r.rlim_max != RLIM_INFINITY && (want == RLIM_INFINITY || r.rlim_max < want))
        r.rlim_max = want;
    int capped = r.rlim_max != RLIM_INFINITY && (want == RLIM_INFINITY || want > r.rlim_max);
    r.rlim_cur = capped ? r.rlim_max : want;
    if (setrlimit(resource, &r) != 0 && getrlimit(resource, &r) == 0) {
        r.rlim_cur = r.rlim_max;  /* e.g. NOFILE above fs.nr_open: take what is allowed */
        setrlimit(resource, &r);
    }
}

int twostep_sys_reset_inherited(void) {
    int root = geteuid() == 0;
    if (root) {
        /* All of real, effective and saved: a caller whose uid is still the real or saved
           uid may signal (SIGSTOP, SIGKILL) or ptrace us. Groups first, uid last. */
        if (setgroups(0, NULL) != 0) return -1;
        if (setresgid(0, 0, 0) != 0) return -1;
        if (setresuid(0, 0, 0) != 0) return -1;
    }
    for (size_t i = 0; i < sizeof floors / sizeof floors[0]; i++)
        raise_limit(floors[i].resource, floors[i].value, root);

    /* Ignored signals stay ignored across exec, a blocked mask survives too: start clean.
       SIGXFSZ ignored so an over-limit write fails with EFBIG instead of killing us. */
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        signal(sig, SIG_DFL);
    }
    signal(SIGXFSZ, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    /* Timers survive exec: a caller's alarm or itimer would SIGALRM/SIGVTALRM us mid-write. */
    alarm(0);
    struct itimerval zero = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &zero, NULL);
    setitimer(ITIMER_VIRTUAL, &zero, NULL);
    setitimer(ITIMER_PROF, &zero, NULL);

    umask(077);
    if (chdir("/") != 0) { /* cannot fail for root; nothing depends on cwd */ }
    if (root) {
        errno = 0;
        int nice_now = getpriority(PRIO_PROCESS, 0);
        if (errno == 0 && nice_now > 0)
            setpriority(PRIO_PROCESS, 0, 0);  /* a nice 19 caller must not slow the lock holder */
        /* Execution-domain flags (READ_IMPLIES_EXEC, ...) for anything we start. A setuid
           exec already cleared ADDR_NO_RANDOMIZE for this process (PER_CLEAR_ON_SETID). */
        personality(PER_LINUX);
    }
    return 0;
}

int twostep_sys_new_session(void) {
    return setsid() < 0 ? -1 : 0;
}

const char *twostep_sys_limit_too_low(void) {
    struct rlimit r;
    /* A record or state (<= 64 KiB) and the audit log must be writable. */
    if (getrlimit(RLIMIT_FSIZE, &r) == 0 && r.rlim_cur != RLIM_INFINITY && r.rlim_cur < (16u << 20))
        return "RLIMIT_FSIZE";
    return NULL;
}
