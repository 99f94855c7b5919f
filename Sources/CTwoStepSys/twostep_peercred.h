// SPDX-License-Identifier: Apache-2.0
#pragma once
/* SO_PEERCRED, written once (not in include/: Swift never imports it): included by CTwoStepSys/sys.c (helper, CLI) and by
   PAMShim/shim.c (the module, which links no other C target: a second C module in the .so
   leaves debug info that valgrind's reader rejects). Needs _GNU_SOURCE before any include. */
#include <errno.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

/* The uid of the process at the other end of a connected AF_UNIX socket (for a server,
   whoever created its listening socket). 0, or -1 with errno set. */
static inline int twostep_peercred_uid(int fd, uid_t *uid) {
    if (uid == NULL) { errno = EINVAL; return -1; }
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return -1;
    if (len != sizeof cred) { errno = EPROTO; return -1; }
    *uid = cred.uid;
    return 0;
}
