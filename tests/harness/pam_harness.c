// SPDX-License-Identifier: Apache-2.0
/*
 * pam_harness: drives a real libpam stack in one process, for tests and benchmarks.
 *
 * Build:  cc -O2 -o build/pam_harness tests/harness/pam_harness.c -lpam -ldl
 *
 * Usage:
 *   pam_harness --confdir DIR --user USER [--service NAME] [--answers FILE|-] [--rounds N]
 *               [--rhost HOST] [--ruser USER] [--tty TTY] [--env NAME=VALUE]... [--real-delay]
 *       Runs, N times (default 1): pam_start_confdir(NAME, USER, conv, DIR),
 *       pam_authenticate(h, 0), pam_end. DIR holds one file per service, in pam.d syntax;
 *       NAME defaults to "twostep-test".
 *       Answers are lines of FILE ("-" = stdin; default: no answers), read once at start
 *       and consumed in order across all rounds: every PAM_PROMPT_ECHO_OFF / _ON prompt
 *       takes the next line (without its newline). When none is left the conversation
 *       returns PAM_CONV_ERR.
 *       Every message is printed on stdout as one line:
 *           PROMPT_ECHO_OFF: text | PROMPT_ECHO_ON: text | INFO: text | ERROR: text
 *       and after each round:
 *           RESULT: <pam_strerror text> (<code>)
 *       --rhost/--ruser/--tty set PAM_RHOST/PAM_RUSER/PAM_TTY and --env adds a variable to
 *       the PAM environment (pam_putenv; e.g. SSH_AUTH_INFO_0=publickey ...), as sshd would.
 *       --answers-at-prompt reads each answer from FILE when a prompt asks for it (stdout
 *       flushed first), so a test can look at the login while it waits at the prompt.
 *       Failure delays (pam_fail_delay) are not slept: the harness installs a PAM_FAIL_DELAY
 *       callback that prints, for a failed round with a requested delay,
 *           FAIL_DELAY: <microseconds libpam computed>
 *       so tests and benchmarks measure the module, not the delay. --real-delay leaves
 *       libpam's own sleep in place.
 *       --caller-uid UID makes the process look like a setuid host run by UID before
 *       pam_start: real uid and gid UID's, effective and saved 0 (setresuid(UID, 0, 0)),
 *       as sudo or su are while they authenticate.
 *       --reap-and-reuse-pids makes the host one that reaps its children itself and then
 *       starts another child under the pid it just reaped (a SIGCHLD handler: waitpid(-1),
 *       then /proc/sys/kernel/ns_last_pid set to pid - 1 and a fork whose child sleeps 60 s;
 *       needs root), the worst case of pid reuse for a module that waits for its helper by
 *       pid. It prints "REUSED: <pid>" for each pid it got again, and kills the sleepers at
 *       exit.
 *       Exit status: the PAM code of the last round (0 = PAM_SUCCESS); 64 on usage errors,
 *       70 when pam_start_confdir itself fails.
 *
 *   pam_harness --dlopen-loop N PATH
 *       dlopen(PATH, RTLD_NOW|RTLD_LOCAL), checks that pam_sm_authenticate resolves, and
 *       dlclose()s it, N times. Prints "DLOPEN: N ok"; exit 0, or 1 on the first failure.
 *
 * Stdout is line-buffered so a caller that kills a hung run still sees what was printed.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <security/pam_appl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXIT_USAGE 64
#define EXIT_PAM_START 70
#define MAX_ENV 16

struct answers {
    char **lines;
    size_t count;
    size_t next;
    FILE *live;  /* --answers-at-prompt: each answer read from here when it is asked for */
};

static void usage(void) {
    fprintf(stderr,
            "usage: pam_harness --confdir DIR --user USER [--service NAME] "
            "[--answers FILE|-] [--rounds N]\n"
            "                   [--rhost HOST] [--ruser USER] [--tty TTY] [--env NAME=VALUE]... "
            "[--real-delay] [--reap-and-reuse-pids] [--answers-at-prompt]\n"
            "       pam_harness --dlopen-loop N PATH\n");
}

static int parse_count(const char *s, long *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 1 || v > 1000000) return -1;
    *out = v;
    return 0;
}

static int load_answers(const char *path, struct answers *a) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) >= 0) {
        if (n > 0 && line[n - 1] == '\n') line[n - 1] = '\0';
        char **grown = realloc(a->lines, (a->count + 1) * sizeof(char *));
        if (grown == NULL) {
            free(line);
            return -1;
        }
        a->lines = grown;
        a->lines[a->count] = strdup(line);
        if (a->lines[a->count] == NULL) {
            free(line);
            return -1;
        }
        a->count++;
    }
    free(line);
    if (f != stdin) fclose(f);
    return 0;
}

static void free_responses(struct pam_response *r, int n) {
    for (int i = 0; i < n; i++) free(r[i].resp);
    free(r);
}

static int conversation(int n, const struct pam_message **msg, struct pam_response **resp,
                        void *appdata) {
    struct answers *a = appdata;
    if (n <= 0 || n > PAM_MAX_NUM_MSG) return PAM_CONV_ERR;
    struct pam_response *r = calloc((size_t)n, sizeof(*r));
    if (r == NULL) return PAM_BUF_ERR;
    for (int i = 0; i < n; i++) {
        const char *text = msg[i]->msg != NULL ? msg[i]->msg : "";
        switch (msg[i]->msg_style) {
        case PAM_PROMPT_ECHO_OFF:
        case PAM_PROMPT_ECHO_ON:
            printf("%s: %s\n",
                   msg[i]->msg_style == PAM_PROMPT_ECHO_OFF ? "PROMPT_ECHO_OFF" : "PROMPT_ECHO_ON",
                   text);
            if (a->live != NULL) {
                fflush(stdout);  /* the test sees the prompt, then answers */
                char *line = NULL;
                size_t cap = 0;
                ssize_t got = getline(&line, &cap, a->live);
                if (got < 0) {
                    free(line);
                    free_responses(r, n);
                    return PAM_CONV_ERR;
                }
                if (got > 0 && line[got - 1] == '\n') line[got - 1] = '\0';
                r[i].resp = line;
                break;
            }
            if (a->next >= a->count) {
                free_responses(r, n);
                return PAM_CONV_ERR;
            }
            r[i].resp = strdup(a->lines[a->next++]);
            if (r[i].resp == NULL) {
                free_responses(r, n);
                return PAM_BUF_ERR;
            }
            break;
        case PAM_TEXT_INFO:
            printf("INFO: %s\n", text);
            break;
        case PAM_ERROR_MSG:
            printf("ERROR: %s\n", text);
            break;
        default:
            free_responses(r, n);
            return PAM_CONV_ERR;
        }
    }
    *resp = r;
    return PAM_SUCCESS;
}

static void report_delay(int status, unsigned int usec, void *appdata) {
    (void)appdata;
    if (status != PAM_SUCCESS && usec > 0) printf("FAIL_DELAY: %u\n", usec);
}

/* --reap-and-reuse-pids: the sleepers started under reaped pids (killed at exit). */
static volatile pid_t sleepers[64];
static volatile int sleeper_count;

static void reap_and_reuse(int sig) {
    (void)sig;
    int saved = errno;
    pid_t pid;
    while ((pid = waitpid(-1, NULL, WNOHANG)) > 0) {
        int known = 0;
        for (int i = 0; i < sleeper_count; i++) if (sleepers[i] == pid) known = 1;
        if (known || sleeper_count >= 64) continue;
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%d", (int)pid - 1);
        int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY);
        if (fd < 0) continue;
        ssize_t w = write(fd, buf, (size_t)n);
        close(fd);
        if (w != n) continue;
        pid_t again = fork();
        if (again == 0) {
            sleep(60);
            _exit(0);
        }
        if (again > 0) {
            sleepers[sleeper_count++] = again;
            if (again == pid) {
                n = snprintf(buf, sizeof buf, "REUSED: %d\n", (int)pid);
                (void)!write(STDOUT_FILENO, buf, (size_t)n);
            }
        }
    }
    errno = saved;
}

static void kill_sleepers(void) {
    for (int i = 0; i < sleeper_count; i++) kill(sleepers[i], SIGKILL);
}

static int dlopen_loop(long n, const char *path) {
    for (long i = 0; i < n; i++) {
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (h == NULL) {
            fprintf(stderr, "dlopen %ld: %s\n", i, dlerror());
            return 1;
        }
        if (dlsym(h, "pam_sm_authenticate") == NULL) {
            fprintf(stderr, "dlsym %ld: pam_sm_authenticate missing\n", i);
            dlclose(h);
            return 1;
        }
        if (dlclose(h) != 0) {
            fprintf(stderr, "dlclose %ld: %s\n", i, dlerror());
            return 1;
        }
    }
    printf("DLOPEN: %ld ok\n", n);
    return 0;
}

int main(int argc, char **argv) {
    const char *confdir = NULL, *user = NULL, *service = "twostep-test", *answers_path = NULL;
    long rounds = 1;
    int real_delay = 0, at_prompt = 0;
    const char *rhost = NULL, *ruser = NULL, *tty = NULL;
    const char *env[MAX_ENV];
    int env_count = 0;
    long caller_uid = -1;
    setvbuf(stdout, NULL, _IOLBF, 0);

    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (strcmp(opt, "--dlopen-loop") == 0) {
            long n;
            if (i + 2 >= argc || parse_count(argv[i + 1], &n) != 0) { usage(); return EXIT_USAGE; }
            return dlopen_loop(n, argv[i + 2]);
        }
        if (strcmp(opt, "--real-delay") == 0) {
            real_delay = 1;
            continue;
        }
        if (strcmp(opt, "--answers-at-prompt") == 0) {
            at_prompt = 1;
            continue;
        }
        if (strcmp(opt, "--reap-and-reuse-pids") == 0) {
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = reap_and_reuse;
            sa.sa_flags = SA_RESTART;
            sigemptyset(&sa.sa_mask);
            if (sigaction(SIGCHLD, &sa, NULL) != 0 || atexit(kill_sleepers) != 0) { perror("sigaction"); return EXIT_USAGE; }
            continue;
        }
        if (i + 1 >= argc) { usage(); return EXIT_USAGE; }
        const char *val = argv[++i];
        if (strcmp(opt, "--confdir") == 0) confdir = val;
        else if (strcmp(opt, "--user") == 0) user = val;
        else if (strcmp(opt, "--service") == 0) service = val;
        else if (strcmp(opt, "--answers") == 0) answers_path = val;
        else if (strcmp(opt, "--rhost") == 0) rhost = val;
        else if (strcmp(opt, "--ruser") == 0) ruser = val;
        else if (strcmp(opt, "--tty") == 0) tty = val;
        else if (strcmp(opt, "--env") == 0) {
            if (env_count >= MAX_ENV || strchr(val, '=') == NULL) { usage(); return EXIT_USAGE; }
            env[env_count++] = val;
        }
        else if (strcmp(opt, "--caller-uid") == 0) {
            if (parse_count(val, &caller_uid) != 0) { usage(); return EXIT_USAGE; }
        }
        else if (strcmp(opt, "--rounds") == 0) {
            if (parse_count(val, &rounds) != 0) { usage(); return EXIT_USAGE; }
        } else { usage(); return EXIT_USAGE; }
    }
    if (confdir == NULL || user == NULL) { usage(); return EXIT_USAGE; }

    struct answers answers = { NULL, 0, 0, NULL };
    if (at_prompt) {
        answers.live = answers_path == NULL || strcmp(answers_path, "-") == 0 ? stdin : fopen(answers_path, "r");
        if (answers.live == NULL) { perror(answers_path); return EXIT_USAGE; }
    } else if (answers_path != NULL && load_answers(answers_path, &answers) != 0) return EXIT_USAGE;

    if (caller_uid >= 0 && (setresgid((gid_t)caller_uid, 0, 0) != 0 || setresuid((uid_t)caller_uid, 0, 0) != 0)) {
        perror("setresuid");
        return EXIT_USAGE;
    }

    struct pam_conv conv = { conversation, &answers };
    int rc = PAM_SYSTEM_ERR;
    for (long round = 0; round < rounds; round++) {
        pam_handle_t *pamh = NULL;
        int start = pam_start_confdir(service, user, &conv, confdir, &pamh);
        if (start != PAM_SUCCESS) {
            printf("RESULT: pam_start_confdir failed: %s (%d)\n", pam_strerror(pamh, start), start);
            return EXIT_PAM_START;
        }
        int set = PAM_SUCCESS;
        if (set == PAM_SUCCESS && rhost != NULL) set = pam_set_item(pamh, PAM_RHOST, rhost);
        if (set == PAM_SUCCESS && ruser != NULL) set = pam_set_item(pamh, PAM_RUSER, ruser);
        if (set == PAM_SUCCESS && tty != NULL) set = pam_set_item(pamh, PAM_TTY, tty);
        for (int e = 0; set == PAM_SUCCESS && e < env_count; e++) set = pam_putenv(pamh, env[e]);
        if (set != PAM_SUCCESS) {
            printf("RESULT: setting items failed: %s (%d)\n", pam_strerror(pamh, set), set);
            pam_end(pamh, set);
            return EXIT_PAM_START;
        }
        if (!real_delay) {
            // PAM_FAIL_DELAY takes the callback's address as the item value.
            void (*delay_fn)(int, unsigned int, void *) = report_delay;
            pam_set_item(pamh, PAM_FAIL_DELAY, (const void *)delay_fn);
        }
        rc = pam_authenticate(pamh, 0);
        printf("RESULT: %s (%d)\n", pam_strerror(pamh, rc), rc);
        pam_end(pamh, rc);
    }

    for (size_t i = 0; i < answers.count; i++) free(answers.lines[i]);
    free(answers.lines);
    return rc;
}
