// SPDX-License-Identifier: Apache-2.0
#define _GNU_SOURCE
#include "twostep_interrupt.h"
#include <signal.h>
#include <string.h>

static volatile sig_atomic_t pending = 0;

static void note(int sig) { pending = sig; }

int twostep_interrupt_catch(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = note;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) != 0) return -1;
    return sigaction(SIGTERM, &sa, NULL);
}

int twostep_interrupt_pending(void) { return pending; }
