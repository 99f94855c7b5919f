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
static int installed[NHANDLED];
static struct termios saved;
static volatile sig_atomic_t hidden_fd = -1;

static void hide(int fd) {
    struct termios t = saved;
    t.c_lflag &= ~(tcflag_t)ECHO;
    (void)tcsetattr(fd, TCSAFLUSH, &t);
}

/* Puts the terminal back, then lets the signal's previous action happen: the default ends
   the process (or, for SIGTSTP, stops it); when that returns (the process was continued,
   or an earlier handler of the caller's ran), the input is hidden again and this handler
   stays. Only async-signal-safe calls: tcsetattr, write, sigaction, sigprocmask, raise. */
static void on_signal(int sig) {
    int saved_errno = errno;
    size_t i = 0;
    while (i < NHANDLED && handled[i] != sig) i++;
    int fd = hidden_fd;
    if (i == NHANDLED || fd < 0) { errno = saved_errno; return; }
    (void)tcsetattr(fd, TCSAFLUSH, &saved);
    (void)!write(STDERR_FILENO, "\n", 1);
    struct sigaction mine;
    (void)sigaction(sig, &previous[i], &mine);
    sigset_t just;
    sigemptyset(&just);
    sigaddset(&just, sig);
    (void)sigprocmask(SIG_UNBLOCK, &just, NULL);
    (void)raise(sig);
    /* Still here: hide the input again for the rest of the line. */
    (void)sigaction(sig, &mine, NULL);
    if (hidden_fd >= 0) hide(hidden_fd);
    errno = saved_errno;
}

int twostep_hidden_begin(int fd) {
    if (tcgetattr(fd, &saved) != 0) return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < NHANDLED; i++) {
        /* A signal the caller ignores stays ignored: it changes nothing, echo stays off. */
        installed[i] = sigaction(handled[i], NULL, &previous[i]) == 0 &&
                       previous[i].sa_handler != SIG_IGN &&
                       sigaction(handled[i], &sa, NULL) == 0;
    }
    hidden_fd = fd;
    hide(fd);
    return 0;
}

void twostep_hidden_end(void) {
    int fd = hidden_fd;
    hidden_fd = -1;
    if (fd >= 0) (void)tcsetattr(fd, TCSAFLUSH, &saved);
    for (size_t i = 0; i < NHANDLED; i++) {
        if (installed[i]) (void)sigaction(handled[i], &previous[i], NULL);
        installed[i] = 0;
    }
}
