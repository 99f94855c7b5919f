// SPDX-License-Identifier: Apache-2.0
/*
 * pam_bench: the cost of one login through each of several PAM modules, side by side,
 * driven through libpam by one harness run. See bench/README.md.
 *
 * Build:  cc -O2 -Wall -o build/pam_bench bench/pam_bench.c -lpam -lcrypto
 *
 * Usage:
 *   pam_bench --confdir DIR --secret BASE32 [--rounds N] [--warmup W] [--seed N] [--json FILE]
 *             --module LABEL:SERVICE:USERPREFIX ...   (one or more; a PAM login each round)
 *             [--spawn LABEL:PATH[:ARG]] ...           (posix_spawn+waitpid of PATH each round)
 *             [--ratio LABEL_A:LABEL_B] ... [--overhead LABEL_A:LABEL_B] [--meta KEY=VALUE] ...
 *             [--burst LABEL:SERVICE:USERPREFIX:N] ... [--burst-rounds R]
 *
 * Each --module / --spawn entry runs in its own forked child of this process, so that the
 * entries do not pollute each other's memory; all children are alive at the same time and
 * the parent interleaves them round by round (round i: every child does one round, in an
 * order shuffled afresh each round), so drift in the machine's load hits every entry alike
 * and no entry always follows the same neighbour (whose background work, such as a
 * worker's exit and the replacement fork, would otherwise always land on it). The shuffle's
 * seed is printed (--seed N repeats an order).
 *
 * A module round is: pam_start_confdir(SERVICE, USERPREFIX<i>, conv, DIR), pam_authenticate,
 * pam_end, timed with CLOCK_MONOTONIC inside the child. Warm-up rounds use the users
 * USERPREFIX "warm" <j> and are not counted. The conversation answers every echo-off / echo-on
 * prompt with the TOTP code (RFC 6238: HMAC-SHA1, 6 digits, 30 s) of BASE32 for the time at
 * which the prompt arrives. Every round must end in PAM_SUCCESS with exactly one prompt, or
 * the run aborts (exit 2): a benchmark of failures is worthless.
 *
 * Resident memory: each module child first computes one TOTP code and runs one login through
 * the service "bench-baseline" (pam_permit only), so that libpam's own code and the harness's
 * paths (libcrypto for the codes included) are faulted in, and reads VmRSS from /proc/self/status ("before"). After its timed rounds it runs
 * one more untimed login (user USERPREFIX "rss") and reads VmRSS while that handle is still
 * open, i.e. with the module loaded ("loaded"), then again after pam_end ("after_end").
 * "added" = loaded - before.
 *
 * A burst (after the rounds above): N forked children, each ready to log in one user
 * USERPREFIX<round>_<i>, released at once through a pipe; its wall time runs from the
 * release to the last child's exit, and its throughput is N over that time. R rounds per
 * burst entry (default 3), the entries alternating. Every login must succeed (exactly one
 * prompt, PAM_SUCCESS) or the run aborts: "none refused" is part of the figure.
 *
 * Exit: 0 on a completed run, 2 when a round failed, 64 on usage errors, 70 on other errors.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <security/pam_appl.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EXIT_FAILED_ROUND 2
#define EXIT_USAGE 64
#define EXIT_ERROR 70
#define MAX_ENTRIES 16
#define MAX_META 32

enum kind { KIND_MODULE, KIND_SPAWN };

struct entry {
    enum kind kind;
    char *label;
    char *service;     /* module */
    char *userprefix;  /* module */
    char *path;        /* spawn */
    char *arg;         /* spawn, optional */
    pid_t pid;
    int cmd_fd;        /* parent -> child */
    int res_fd;        /* child -> parent */
    double *ms;
    long ok;
    long rss_before, rss_loaded, rss_after_end;
};

/* Parent -> child command. */
struct cmd {
    int op;  /* 1 = warm-up round, 2 = timed round, 3 = finish (rss), 0 = quit */
    int index;
};

/* Child -> parent result. */
struct result {
    int pam_rc;       /* or spawn exit status; 0 = success */
    int prompts;
    double ms;
    long rss_before, rss_loaded, rss_after_end;
    char detail[160];
};

static const char *g_confdir;
static unsigned char g_key[64];
static size_t g_keylen;
static int g_prompts;

static void die(const char *msg) {
    fprintf(stderr, "pam_bench: %s\n", msg);
    exit(EXIT_ERROR);
}

static int base32_decode(const char *s, unsigned char *out, size_t cap, size_t *outlen) {
    uint32_t buf = 0;
    int bits = 0;
    size_t n = 0;
    for (; *s; s++) {
        int c = toupper((unsigned char)*s), v;
        if (c == '=' || c == ' ' || c == '-') continue;
        if (c >= 'A' && c <= 'Z') v = c - 'A';
        else if (c >= '2' && c <= '7') v = c - '2' + 26;
        else return -1;
        buf = (buf << 5) | (uint32_t)v;
        bits += 5;
        if (bits >= 8) {
            if (n >= cap) return -1;
            out[n++] = (unsigned char)(buf >> (bits - 8));
            bits -= 8;
        }
    }
    *outlen = n;
    return n > 0 ? 0 : -1;
}

static void totp_now(char out[7]) {
    uint64_t step = (uint64_t)time(NULL) / 30;
    unsigned char msg[8], mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    for (int i = 7; i >= 0; i--) { msg[i] = (unsigned char)(step & 0xff); step >>= 8; }
    if (HMAC(EVP_sha1(), g_key, (int)g_keylen, msg, sizeof msg, mac, &maclen) == NULL || maclen < 20)
        die("HMAC-SHA1 failed");
    int off = mac[maclen - 1] & 0x0f;
    uint32_t bin = ((uint32_t)(mac[off] & 0x7f) << 24) | ((uint32_t)mac[off + 1] << 16) |
                   ((uint32_t)mac[off + 2] << 8) | (uint32_t)mac[off + 3];
    snprintf(out, 7, "%06u", bin % 1000000u);
}

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data) {
    (void)data;
    struct pam_response *r = calloc((size_t)n, sizeof *r);
    if (r == NULL) return PAM_BUF_ERR;
    for (int i = 0; i < n; i++) {
        switch (msg[i]->msg_style) {
        case PAM_PROMPT_ECHO_OFF:
        case PAM_PROMPT_ECHO_ON: {
            char code[7];
            totp_now(code);
            r[i].resp = strdup(code);
            g_prompts++;
            break;
        }
        case PAM_ERROR_MSG:
        case PAM_TEXT_INFO:
            break;  /* a message is fine; success is judged by the PAM result */
        default:
            free(r);
            return PAM_CONV_ERR;
        }
    }
    *resp = r;
    return PAM_SUCCESS;
}

static void no_delay(int status, unsigned int usec, void *data) {
    (void)status; (void)usec; (void)data;
}

static long vmrss_kib(void) {
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = '\0';
    char *p = strstr(buf, "VmRSS:");
    return p ? strtol(p + 6, NULL, 10) : -1;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void xwrite(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) die("write to pipe failed");
        c += w; n -= (size_t)w;
    }
}

static int xread(int fd, void *p, size_t n) {
    char *c = p;
    while (n > 0) {
        ssize_t r = read(fd, c, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        c += r; n -= (size_t)r;
    }
    return 0;
}

/* With PAM_BENCH_SMAPS=1: prints this process's resident KiB per mapping (top 12) to stderr. */
static void dump_smaps(const char *label) {
    if (getenv("PAM_BENCH_SMAPS") == NULL) return;
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "awk '/^[0-9a-f]+-/{n=$6; if(n==\"\")n=\"[anon]\"} /^Rss:/{r[n]+=$2} "
             "END{for(k in r) if(r[k]>0) print r[k], k}' /proc/%d/smaps | sort -rn | head -12 "
             "| sed 's/^/  smaps %s: /' >&2",
             (int)getpid(), label);
    if (system(cmd) != 0) fprintf(stderr, "  smaps %s: unavailable\n", label);
}

/* One login. If keep_open, reads VmRSS with the handle still open into *rss_open. */
static void login(const char *service, const char *user, struct result *res, long *rss_open) {
    struct pam_conv pc = { conv, NULL };
    pam_handle_t *h = NULL;
    g_prompts = 0;
    double t0 = now_ms();
    int rc = pam_start_confdir(service, user, &pc, g_confdir, &h);
    if (rc == PAM_SUCCESS) {
        pam_set_item(h, PAM_FAIL_DELAY, (const void *)no_delay);
        rc = pam_authenticate(h, 0);
        if (rss_open) {
            *rss_open = vmrss_kib();
            dump_smaps(service);
        }
        int end_rc = pam_end(h, rc);
        if (rc == PAM_SUCCESS && end_rc != PAM_SUCCESS) rc = end_rc;
    }
    double t1 = now_ms();
    res->pam_rc = rc;
    res->prompts = g_prompts;
    res->ms = t1 - t0;
    if (rc != PAM_SUCCESS)
        snprintf(res->detail, sizeof res->detail, "service %s user %s: %s (%d), %d prompt(s)%s",
                 service, user, h ? pam_strerror(h, rc) : "pam_start failed", rc, g_prompts,
                 g_prompts ? "" : " (module never asked for a code)");
    else if (g_prompts != 1) {
        res->pam_rc = -1;
        snprintf(res->detail, sizeof res->detail,
                 "service %s user %s: PAM_SUCCESS but %d prompts (expected exactly 1)", service,
                 user, g_prompts);
    }
}

static void spawn_round(const struct entry *e, struct result *res) {
    char *argv[3] = { e->path, e->arg, NULL };
    char *envp[1] = { NULL };
    pid_t pid;
    int status = 0;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    /* what the PAM module gives its helper: no inherited stdout/stderr noise */
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    double t0 = now_ms();
    int rc = posix_spawn(&pid, e->path, &fa, NULL, argv, envp);
    if (rc == 0) {
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    }
    double t1 = now_ms();
    posix_spawn_file_actions_destroy(&fa);
    res->ms = t1 - t0;
    res->prompts = 1;
    if (rc != 0) {
        res->pam_rc = -1;
        snprintf(res->detail, sizeof res->detail, "posix_spawn %s: %s", e->path, strerror(rc));
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        res->pam_rc = -1;
        snprintf(res->detail, sizeof res->detail, "%s exited with status 0x%x", e->path, status);
    } else {
        res->pam_rc = 0;
    }
}

static void child_main(struct entry *e) {
    struct cmd c;
    struct result res;
    char user[256];
    long rss_before = -1;
    if (e->kind == KIND_MODULE) {
        /* Fault in libpam and the harness's own paths (its TOTP computation through
           libcrypto included) with a module-free login, so that "before" holds them. */
        char warm[7];
        totp_now(warm);
        memset(&res, 0, sizeof res);
        login("bench-baseline", "baseline", &res, NULL);
        if (res.pam_rc != 0 && res.pam_rc != -1) {
            /* pam_permit does not prompt, so -1 (0 prompts) is expected; other codes are not */
            fprintf(stderr, "pam_bench: baseline login failed: %s\n", res.detail);
            _exit(EXIT_ERROR);
        }
        rss_before = vmrss_kib();
    }
    for (;;) {
        if (xread(e->cmd_fd, &c, sizeof c) < 0) _exit(0);
        memset(&res, 0, sizeof res);
        if (c.op == 0) _exit(0);
        if (e->kind == KIND_SPAWN) {
            if (c.op == 3) { xwrite(e->res_fd, &res, sizeof res); continue; }
            spawn_round(e, &res);
        } else if (c.op == 1) {
            snprintf(user, sizeof user, "%swarm%d", e->userprefix, c.index);
            login(e->service, user, &res, NULL);
        } else if (c.op == 2) {
            snprintf(user, sizeof user, "%s%d", e->userprefix, c.index);
            login(e->service, user, &res, NULL);
        } else if (c.op == 3) {
            snprintf(user, sizeof user, "%srss", e->userprefix);
            long loaded = -1;
            login(e->service, user, &res, &loaded);
            res.rss_before = rss_before;
            res.rss_loaded = loaded;
            res.rss_after_end = vmrss_kib();
        }
        xwrite(e->res_fd, &res, sizeof res);
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct stats { double median, p90, p99, mean, min, max; };

static struct stats stats_of(const double *v, long n) {
    struct stats s = {0};
    double *t = malloc((size_t)n * sizeof *t);
    if (t == NULL) die("out of memory");
    memcpy(t, v, (size_t)n * sizeof *t);
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    s.median = n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
    /* nearest-rank percentiles */
    long r90 = (long)ceil(0.90 * n), r99 = (long)ceil(0.99 * n);
    s.p90 = t[(r90 < 1 ? 1 : r90) - 1];
    s.p99 = t[(r99 < 1 ? 1 : r99) - 1];
    double sum = 0;
    for (long i = 0; i < n; i++) sum += t[i];
    s.mean = sum / n;
    s.min = t[0];
    s.max = t[n - 1];
    free(t);
    return s;
}

/* The round order: a Fisher-Yates shuffle from a small xorshift generator, so an order can
 * be repeated with --seed (rand() would do, but its state is shared with libraries). */
static unsigned shuffle_seed;
static unsigned shuffle_state;

static unsigned next_random(void) {
    unsigned x = shuffle_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return shuffle_state = x;
}

static void shuffle(int *order, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(next_random() % (unsigned)(i + 1));
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

static void usage(void) {
    fprintf(stderr,
            "usage: pam_bench --confdir DIR --secret BASE32 [--rounds N] [--warmup W] [--seed N] [--json FILE]\n"
            "                 --module LABEL:SERVICE:USERPREFIX ... [--spawn LABEL:PATH[:ARG]] ...\n"
            "                 [--ratio A:B] ... [--overhead A:B] [--meta KEY=VALUE] ...\n"
            "                 [--burst LABEL:SERVICE:USERPREFIX:N] ... [--burst-rounds R]\n");
}

#define MAX_BURSTS 4
#define MAX_BURST_N 512

struct burst {
    char *label, *service, *userprefix;
    int n;
    double *ms;      /* wall time per round */
};

/* One burst round: b->n children log in at once. Returns the number that failed. */
static int run_burst(struct burst *b, int round, double *wall_ms) {
    int gate[2];
    pid_t pids[MAX_BURST_N];
    if (pipe(gate) != 0) die("pipe failed");
    fflush(NULL);
    for (int i = 0; i < b->n; i++) {
        pid_t pid = fork();
        if (pid < 0) die("fork failed");
        if (pid == 0) {
            char c, user[256];
            struct result res;
            close(gate[1]);
            while (read(gate[0], &c, 1) < 0 && errno == EINTR) {}  /* EOF: released */
            snprintf(user, sizeof user, "%s%d_%d", b->userprefix, round, i);
            memset(&res, 0, sizeof res);
            login(b->service, user, &res, NULL);
            if (res.pam_rc != 0) fprintf(stderr, "pam_bench: burst %s: %s\n", b->label, res.detail);
            _exit(res.pam_rc == 0 ? 0 : 1);
        }
        pids[i] = pid;
    }
    close(gate[0]);
    usleep(200000);  /* let every child reach its read() */
    double t0 = now_ms();
    close(gate[1]);
    int failed = 0;
    for (int i = 0; i < b->n; i++) {
        int st;
        while (waitpid(pids[i], &st, 0) < 0 && errno == EINTR) {}
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) failed++;
    }
    *wall_ms = now_ms() - t0;
    return failed;
}

static struct entry *find_entry(struct entry *es, int n, const char *label) {
    for (int i = 0; i < n; i++)
        if (strcmp(es[i].label, label) == 0) return &es[i];
    return NULL;
}

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

int main(int argc, char **argv) {
    struct entry es[MAX_ENTRIES];
    int ne = 0;
    char *metas[MAX_META];
    int nmeta = 0;
    long rounds = 300, warmup = 5;
    const char *json = NULL, *secret = NULL, *overhead = NULL;
    const char *ratios[MAX_ENTRIES];
    int nratio = 0;
    struct burst bs[MAX_BURSTS];
    int nb = 0;
    long burst_rounds = 3;
    memset(es, 0, sizeof es);
    memset(bs, 0, sizeof bs);
    shuffle_seed = (unsigned)time(NULL) ^ (unsigned)getpid();

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL) { usage(); return EXIT_USAGE; }
        i++;
        if (strcmp(a, "--confdir") == 0) g_confdir = v;
        else if (strcmp(a, "--secret") == 0) secret = v;
        else if (strcmp(a, "--rounds") == 0) rounds = strtol(v, NULL, 10);
        else if (strcmp(a, "--warmup") == 0) warmup = strtol(v, NULL, 10);
        else if (strcmp(a, "--seed") == 0) shuffle_seed = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--json") == 0) json = v;
        else if (strcmp(a, "--ratio") == 0) {
            if (nratio == MAX_ENTRIES || strchr(v, ':') == NULL) { usage(); return EXIT_USAGE; }
            ratios[nratio++] = v;
        }
        else if (strcmp(a, "--overhead") == 0) overhead = v;
        else if (strcmp(a, "--burst-rounds") == 0) burst_rounds = strtol(v, NULL, 10);
        else if (strcmp(a, "--burst") == 0) {
            /* LABEL:SERVICE:USERPREFIX:N */
            if (nb == MAX_BURSTS) { usage(); return EXIT_USAGE; }
            char *s = strdup(v), *f[4] = { s, NULL, NULL, NULL };
            for (int k = 1; k < 4; k++) {
                f[k] = strchr(f[k - 1], ':');
                if (f[k] == NULL) { usage(); return EXIT_USAGE; }
                *f[k]++ = '\0';
            }
            struct burst *b = &bs[nb++];
            b->label = f[0]; b->service = f[1]; b->userprefix = f[2];
            b->n = (int)strtol(f[3], NULL, 10);
            if (b->n < 1 || b->n > MAX_BURST_N) { usage(); return EXIT_USAGE; }
        }
        else if (strcmp(a, "--meta") == 0) {
            if (nmeta == MAX_META || strchr(v, '=') == NULL) { usage(); return EXIT_USAGE; }
            metas[nmeta++] = strdup(v);
        } else if (strcmp(a, "--module") == 0 || strcmp(a, "--spawn") == 0) {
            if (ne == MAX_ENTRIES) { usage(); return EXIT_USAGE; }
            struct entry *e = &es[ne++];
            char *s = strdup(v);
            char *p1 = strchr(s, ':');
            char *p2 = p1 ? strchr(p1 + 1, ':') : NULL;
            if (p1 == NULL) { usage(); return EXIT_USAGE; }
            *p1 = '\0';
            if (p2) *p2 = '\0';
            e->label = s;
            if (a[2] == 'm') {
                if (p2 == NULL) { usage(); return EXIT_USAGE; }
                e->kind = KIND_MODULE;
                e->service = p1 + 1;
                e->userprefix = p2 + 1;
            } else {
                e->kind = KIND_SPAWN;
                e->path = p1 + 1;
                e->arg = p2 ? p2 + 1 : NULL;
            }
        } else { usage(); return EXIT_USAGE; }
    }
    if (g_confdir == NULL || secret == NULL || ne == 0 || rounds < 1 || rounds > 1000000 ||
        warmup < 0 || warmup > 1000) {
        usage();
        return EXIT_USAGE;
    }
    if (base32_decode(secret, g_key, sizeof g_key, &g_keylen) != 0) {
        fprintf(stderr, "pam_bench: --secret is not Base32\n");
        return EXIT_USAGE;
    }
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);

    for (int i = 0; i < ne; i++) {
        int cp[2], rp[2];
        if (pipe2(cp, O_CLOEXEC) || pipe2(rp, O_CLOEXEC)) die("pipe failed");
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) die("fork failed");
        if (pid == 0) {
            close(cp[1]);
            close(rp[0]);
            for (int j = 0; j < i; j++) { close(es[j].cmd_fd); close(es[j].res_fd); }
            es[i].cmd_fd = cp[0];
            es[i].res_fd = rp[1];
            child_main(&es[i]);
            _exit(0);
        }
        close(cp[0]);
        close(rp[1]);
        es[i].pid = pid;
        es[i].cmd_fd = cp[1];
        es[i].res_fd = rp[0];
        es[i].ms = calloc((size_t)rounds, sizeof(double));
        if (es[i].ms == NULL) die("out of memory");
    }

    int failed = 0;
    struct result res;
    long total = warmup + rounds;
    int order[MAX_ENTRIES];
    shuffle_state = shuffle_seed ? shuffle_seed : 1;  /* xorshift must not start at 0 */
    for (int k = 0; k < ne; k++) order[k] = k;
    fprintf(stderr, "pam_bench: round order shuffled with seed %u\n", shuffle_seed);
    for (long r = 0; r < total && !failed; r++) {
        int timed = r >= warmup;
        int idx = (int)(timed ? r - warmup : r);
        shuffle(order, ne);
        for (int k = 0; k < ne && !failed; k++) {
            struct entry *e = &es[order[k]];
            struct cmd c = { timed ? 2 : 1, idx };
            xwrite(e->cmd_fd, &c, sizeof c);
            if (xread(e->res_fd, &res, sizeof res) < 0) {
                fprintf(stderr, "pam_bench: %s: child died during round %ld\n", e->label, r);
                failed = 1;
                break;
            }
            if (res.pam_rc != 0) {
                fprintf(stderr, "pam_bench: %s: %s round %d FAILED: %s\n", e->label,
                        timed ? "timed" : "warm-up", idx, res.detail);
                failed = 1;
                break;
            }
            if (timed) { e->ms[idx] = res.ms; e->ok++; }
        }
    }
    if (!failed) {
        for (int i = 0; i < ne; i++) {
            struct cmd c = { 3, 0 };
            xwrite(es[i].cmd_fd, &c, sizeof c);
            if (xread(es[i].res_fd, &res, sizeof res) < 0 ||
                (es[i].kind == KIND_MODULE && res.pam_rc != 0)) {
                fprintf(stderr, "pam_bench: %s: memory round FAILED: %s\n", es[i].label,
                        res.detail);
                failed = 1;
                break;
            }
            es[i].rss_before = res.rss_before;
            es[i].rss_loaded = res.rss_loaded;
            es[i].rss_after_end = res.rss_after_end;
        }
    }
    for (int i = 0; i < ne; i++) {
        struct cmd c = { 0, 0 };
        xwrite(es[i].cmd_fd, &c, sizeof c);
        close(es[i].cmd_fd);
        close(es[i].res_fd);
        int st;
        waitpid(es[i].pid, &st, 0);
    }
    if (burst_rounds < 1 || burst_rounds > 1000) { usage(); return EXIT_USAGE; }
    for (int i = 0; i < nb && !failed; i++) {
        bs[i].ms = calloc((size_t)burst_rounds, sizeof(double));
        if (bs[i].ms == NULL) die("out of memory");
    }
    for (long r = 0; r < burst_rounds && !failed; r++) {
        for (int k = 0; k < nb && !failed; k++) {
            struct burst *b = &bs[(k + r) % nb];  /* alternate which burst goes first */
            int bad = run_burst(b, (int)r, &b->ms[r]);
            if (bad) {
                fprintf(stderr, "pam_bench: burst %s round %ld: %d of %d logins FAILED\n", b->label, r,
                        bad, b->n);
                failed = 1;
            }
        }
    }
    if (failed) {
        fprintf(stderr, "pam_bench: ABORTED: not every round succeeded; no figures reported\n");
        return EXIT_FAILED_ROUND;
    }

    struct stats st[MAX_ENTRIES];
    printf("%-36s %7s %10s %10s %10s %10s\n", "entry", "rounds", "median ms", "p90 ms", "p99 ms",
           "mean ms");
    for (int i = 0; i < ne; i++) {
        st[i] = stats_of(es[i].ms, rounds);
        printf("%-36s %7ld %10.3f %10.3f %10.3f %10.3f\n", es[i].label, es[i].ok, st[i].median,
               st[i].p90, st[i].p99, st[i].mean);
    }
    /* One line per --ratio; the first is also "ratio" in the JSON (older readers), all of
       them are "ratios". */
    double rmed[MAX_ENTRIES], rp99[MAX_ENTRIES], ovh = NAN;
    const char *ra[MAX_ENTRIES], *rb[MAX_ENTRIES], *oa = NULL, *ob = NULL;
    char rbuf[MAX_ENTRIES][256], obuf[256];
    for (int k = 0; k < nratio; k++) {
        rmed[k] = rp99[k] = NAN;
        ra[k] = rb[k] = NULL;
        snprintf(rbuf[k], sizeof rbuf[k], "%s", ratios[k]);
        char *c = strchr(rbuf[k], ':');
        if (c) {
            *c = '\0'; ra[k] = rbuf[k]; rb[k] = c + 1;
            struct entry *a = find_entry(es, ne, ra[k]), *b = find_entry(es, ne, rb[k]);
            if (a && b) {
                rmed[k] = st[a - es].median / st[b - es].median;
                rp99[k] = st[a - es].p99 / st[b - es].p99;
                printf("ratio %s/%s: median %.3f, p99 %.3f\n", ra[k], rb[k], rmed[k], rp99[k]);
            }
        }
    }
    if (overhead) {
        snprintf(obuf, sizeof obuf, "%s", overhead);
        char *c = strchr(obuf, ':');
        if (c) {
            *c = '\0'; oa = obuf; ob = c + 1;
            struct entry *a = find_entry(es, ne, oa), *b = find_entry(es, ne, ob);
            if (a && b) {
                ovh = st[a - es].median - st[b - es].median;
                printf("%s cost over %s: %.3f ms (median minus median)\n", oa, ob, ovh);
            }
        }
    }
    struct stats bst[MAX_BURSTS];
    for (int i = 0; i < nb; i++) {
        bst[i] = stats_of(bs[i].ms, burst_rounds);
        printf("burst %s: %d logins at once, %ld rounds: median wall %.1f ms, %.0f logins/s, none refused\n",
               bs[i].label, bs[i].n, burst_rounds, bst[i].median, bs[i].n * 1000.0 / bst[i].median);
    }
    printf("RSS added to host (VmRSS loaded - before):");
    for (int i = 0, first = 1; i < ne; i++) {
        if (es[i].kind != KIND_MODULE) continue;
        printf("%s %s %ld KiB", first ? "" : ",", es[i].label,
               es[i].rss_loaded - es[i].rss_before);
        first = 0;
    }
    printf("\n");
    for (int i = 0; i < ne; i++) {
        if (es[i].kind != KIND_MODULE) continue;
        printf("  %s: VmRSS before %ld KiB, loaded %ld KiB, after pam_end %ld KiB\n", es[i].label,
               es[i].rss_before, es[i].rss_loaded, es[i].rss_after_end);
    }

    if (json) {
        FILE *f = fopen(json, "w");
        if (f == NULL) { perror(json); return EXIT_ERROR; }
        fprintf(f, "{\n  \"rounds\": %ld,\n  \"warmup\": %ld,\n  \"unit\": \"ms\",\n", rounds,
                warmup);
        fprintf(f, "  \"meta\": {");
        for (int i = 0; i < nmeta; i++) {
            char *eq = strchr(metas[i], '=');
            *eq = '\0';
            fprintf(f, "%s\n    ", i ? "," : "");
            json_str(f, metas[i]);
            fprintf(f, ": ");
            json_str(f, eq + 1);
        }
        fprintf(f, "%s},\n  \"entries\": [", nmeta ? "\n  " : "");
        for (int i = 0; i < ne; i++) {
            fprintf(f, "%s\n    {\"label\": ", i ? "," : "");
            json_str(f, es[i].label);
            fprintf(f, ", \"kind\": \"%s\", \"rounds\": %ld, \"successes\": %ld, "
                       "\"median_ms\": %.4f, \"p90_ms\": %.4f, \"p99_ms\": %.4f, "
                       "\"mean_ms\": %.4f, \"min_ms\": %.4f, \"max_ms\": %.4f",
                    es[i].kind == KIND_MODULE ? "pam_module" : "spawn", rounds, es[i].ok,
                    st[i].median, st[i].p90, st[i].p99, st[i].mean, st[i].min, st[i].max);
            if (es[i].kind == KIND_MODULE)
                fprintf(f, ", \"vmrss_before_kib\": %ld, \"vmrss_loaded_kib\": %ld, "
                           "\"vmrss_after_pam_end_kib\": %ld, \"rss_added_kib\": %ld",
                        es[i].rss_before, es[i].rss_loaded, es[i].rss_after_end,
                        es[i].rss_loaded - es[i].rss_before);
            fprintf(f, "}");
        }
        fprintf(f, "\n  ]");
        if (nb > 0) {
            fprintf(f, ",\n  \"bursts\": [");
            for (int i = 0; i < nb; i++) {
                fprintf(f, "%s\n    {\"label\": ", i ? "," : "");
                json_str(f, bs[i].label);
                fprintf(f, ", \"logins_at_once\": %d, \"rounds\": %ld, \"median_wall_ms\": %.3f, "
                           "\"logins_per_s\": %.1f, \"refused\": 0}",
                        bs[i].n, burst_rounds, bst[i].median, bs[i].n * 1000.0 / bst[i].median);
            }
            fprintf(f, "\n  ]");
        }
        if (nratio > 0 && ra[0] && !isnan(rmed[0])) {
            fprintf(f, ",\n  \"ratio\": {\"of\": ");
            json_str(f, ra[0]);
            fprintf(f, ", \"to\": ");
            json_str(f, rb[0]);
            fprintf(f, ", \"median\": %.4f, \"p99\": %.4f}", rmed[0], rp99[0]);
        }
        if (nratio > 0) {
            fprintf(f, ",\n  \"ratios\": [");
            for (int k = 0, first = 1; k < nratio; k++) {
                if (!ra[k] || isnan(rmed[k])) continue;
                fprintf(f, "%s\n    {\"of\": ", first ? "" : ",");
                json_str(f, ra[k]);
                fprintf(f, ", \"to\": ");
                json_str(f, rb[k]);
                fprintf(f, ", \"median\": %.4f, \"p99\": %.4f}", rmed[k], rp99[k]);
                first = 0;
            }
            fprintf(f, "\n  ]");
        }
        if (oa && !isnan(ovh)) {
            fprintf(f, ",\n  \"overhead\": {\"of\": ");
            json_str(f, oa);
            fprintf(f, ", \"over\": ");
            json_str(f, ob);
            fprintf(f, ", \"median_ms\": %.4f}", ovh);
        }
        fprintf(f, "\n}\n");
        if (fclose(f) != 0) { perror(json); return EXIT_ERROR; }
    }
    return 0;
}
