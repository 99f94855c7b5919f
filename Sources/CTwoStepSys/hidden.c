// SPDX-License-Identifier: Apache-2.0
#define _GNU_SOURCE
#include "twostep_hidden.h"
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static const int handled[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP };
#define NHANDLED (sizeof handled / sizeof handled[0])
static struct sigaction previous[NHANDLED];
static struct termios saved;
static volatile sig_atomic_t hidden_fd = -1;

static void hide(int fd) {
    struct termios t = saved;
    t.c_lflag &= ~(tcflag_t)ECHO;
    (void)tcsetattr(fd, TCSAFLUSH, &t);
}

/* Only async-signal-safe calls: tcsetattr, write, sigaction, sigprocmask, raise. */
static void on_signal(int sig) {
    int saved_errno = errno;
    int fd = hidden_fd;
    if (fd >= 0) {
        (void)tcsetattr(fd, TCSAFLUSH, &saved);
        (void)!write(STDERR_FILENO, "\n", 1);
    }
    size_t i = 0;
    while (i < NHANDLED && handled[i] != sig) i++;
    sigset_t just;
    sigemptyset(&just);
    sigaddset(&just, sig);
    if (sig == SIGTSTP) {
        /* Stop as Ctrl-Z would, then hide the input again when continued. */
        struct sigaction dfl, mine;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        (void)sigaction(SIGTSTP, &dfl, &mine);
        (void)sigprocmask(SIG_UNBLOCK, &just, NULL);
        (void)raise(SIGTSTP);
        (void)sigaction(SIGTSTP, &mine, NULL);
        if (hidden_fd >= 0) hide(hidden_fd);
    } else if (i < NHANDLED) {
        /* The action this signal had before: usually the default, which ends the process. */
        hidden_fd = -1;
        (void)sigaction(sig, &previous[i], NULL);
        (void)sigprocmask(SIG_UNBLOCK, &just, NULL);
        (void)raise(sig);
    }
    errno = saved_errno;
}

int twostep_hidden_begin(int fd) {
    if (tcgetattr(fd, &saved) != 0) return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < NHANDLED; i++) (void)sigaction(handled[i], &sa, &previous[i]);
    hidden_fd = fd;
    hide(fd);
    return 0;
}

void twostep_hidden_end(void) {
    int fd = hidden_fd;
    hidden_fd = -1;
    if (fd >= 0) (void)tcsetattr(fd, TCSAFLUSH, &saved);
    for (size_t i = 0; i < NHANDLED; i++) (void)sigaction(handled[i], &previous[i], NULL);
}
