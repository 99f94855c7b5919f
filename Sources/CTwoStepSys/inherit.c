// SPDX-License-Identifier: Apache-2.0
#define _GNU_SOURCE
#include "twostep_inherit.h"
#include <errno.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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
        /* Nor SCHED_IDLE or SCHED_BATCH (chrt -i 0 sudo ...), nor an idle I/O class
           (ionice -c3) for the fdatasync, nor a CPU mask the caller loads, nor a timer
           slack that makes every timeout late. */
        int policy = sched_getscheduler(0);
        if (policy != SCHED_OTHER && policy >= 0) {
            struct sched_param none = { .sched_priority = 0 };
            sched_setscheduler(0, SCHED_OTHER, &none);
        }
#ifdef SYS_ioprio_set
        /* IOPRIO_WHO_PROCESS; class in the bits from 13 up, 3 = idle (anyone may set it);
           0 = no class of its own: the I/O priority follows the nice value, now 0. */
        if (syscall(SYS_ioprio_get, 1, 0) >> 13 == 3)
            syscall(SYS_ioprio_set, 1, 0, 0);
#endif
        /* Only when the caller narrowed it: setting a mask can move the task to another
           CPU (the stopper thread), work a login with the whole mask need not do. */
        cpu_set_t now;
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        if (sched_getaffinity(0, sizeof now, &now) == 0 && online > 0 && CPU_COUNT(&now) < online) {
            cpu_set_t all;
            CPU_ZERO(&all);
            for (int c = 0; c < CPU_SETSIZE; c++) CPU_SET(c, &all);
            sched_setaffinity(0, sizeof all, &all);  /* the kernel keeps it within the cpuset */
        }
        /* 0 would mean the "default", which a fork copied from the caller: the kernel's own
           default for a normal task, 50 us, explicitly. */
        prctl(PR_SET_TIMERSLACK, 50000UL);
        /* Execution-domain flags (READ_IMPLIES_EXEC, ...) for anything we start. A setuid
           exec already cleared ADDR_NO_RANDOMIZE for this process (PER_CLEAR_ON_SETID). */
        personality(PER_LINUX);
    }
    return 0;
}

int twostep_sys_new_session(void) {
    return setsid() < 0 ? -1 : 0;
}

/* The least of each limit a whole login needs, its rarest path included: a backup code
   re-seals the record (a key file opened, memory for the new record), which a wrong code
   never does. A limit between the two would make a right code fail where a wrong one is
   counted: a way to tell a valid backup code without spending it. Checked before anyone is
   prompted, so such a login is refused with nothing asked and nothing counted. The helper
   needs about 30 MiB of address space and a dozen descriptors. */
struct need { int resource; rlim_t value; const char *name; };
static const struct need needs[] = {
    { RLIMIT_FSIZE,  16u << 20,  "RLIMIT_FSIZE" },   /* a record, a state, the audit log */
    { RLIMIT_NOFILE, 64,         "RLIMIT_NOFILE" },
    { RLIMIT_AS,     256u << 20, "RLIMIT_AS" },
    { RLIMIT_DATA,   256u << 20, "RLIMIT_DATA" },
    { RLIMIT_STACK,  1u << 20,   "RLIMIT_STACK" },
    { RLIMIT_CPU,    10,         "RLIMIT_CPU" },      /* seconds; SIGXCPU would end a login */
};

const char *twostep_sys_limit_too_low(void) {
    struct rlimit r;
    for (size_t i = 0; i < sizeof needs / sizeof needs[0]; i++)
        if (getrlimit(needs[i].resource, &r) == 0 && r.rlim_cur != RLIM_INFINITY && r.rlim_cur < needs[i].value)
            return needs[i].name;
    return NULL;
}
