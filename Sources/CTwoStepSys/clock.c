// SPDX-License-Identifier: Apache-2.0
#include "twostep_sys.h"
#include <sys/timex.h>
#include <string.h>

int twostep_sys_clock_status(int *unsynchronised, long *maxerror_us) {
    struct timex tx;
    memset(&tx, 0, sizeof tx);  /* modes 0: read only */
    int state = adjtimex(&tx);
    if (state == -1) return -1;
    *unsynchronised = (tx.status & STA_UNSYNC) != 0 || state == TIME_ERROR;
    *maxerror_us = tx.maxerror;
    return 0;
}
