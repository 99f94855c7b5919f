// SPDX-License-Identifier: Apache-2.0
#define _GNU_SOURCE
#include "twostep_flush.h"
#include <unistd.h>

int twostep_sys_syncfs(int fd) { return syncfs(fd); }

#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

int twostep_sys_exchange(int dirfd, const char *a, const char *b) {
    return (int)syscall(SYS_renameat2, dirfd, a, dirfd, b, RENAME_EXCHANGE);
}
