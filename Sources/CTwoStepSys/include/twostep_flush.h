// SPDX-License-Identifier: Apache-2.0
#pragma once
/* syncfs(2), which the Swift Glibc overlay does not reach (it needs _GNU_SOURCE): one flush
   of the file system holding fd, for writes of many files at once (import --batch,
   rotate-key). 0, or -1 with errno (since Linux 5.8 it reports writeback errors). */
int twostep_sys_syncfs(int fd);
/* renameat2(RENAME_EXCHANGE): swaps two names in one directory atomically. 0, or -1 with
   errno (EINVAL where the file system cannot). */
int twostep_sys_exchange(int dirfd, const char *a, const char *b);
