#!/usr/bin/python3 -B
# SPDX-License-Identifier: Apache-2.0
"""Records its environment, open descriptors, argv and signal state, then success."""
import os, signal, sys
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import fakeproto as p

fds = sorted(int(n) for n in os.listdir("/proc/self/fd"))
# listdir itself opens a descriptor while it runs; keep only those still open now.
fds = [fd for fd in fds if os.path.exists("/proc/self/fd/%d" % fd)]
fields = p.read_request()
blocked = sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, []))
p.record(fields, "env.json", {
    # The environment exactly as exec'd (Python itself may add LC_CTYPE to os.environ).
    "environ": [e.decode() for e in open("/proc/self/environ", "rb").read().split(b"\0") if e],
    "fds": fds,
    "fd_targets": {str(fd): os.readlink("/proc/self/fd/%d" % fd) for fd in fds},
    "argv": sys.argv,
    "blocked_signals": blocked,
    "sigusr1_ignored": signal.getsignal(signal.SIGUSR1) == signal.SIG_IGN,
})
p.result("success")
