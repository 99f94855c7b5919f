# SPDX-License-Identifier: Apache-2.0
"""A throw-away machine with a real systemd for the suites that test the shipped units and
the Debian package under it: systemd-nspawn boots this machine's own root through an
overlay whose upper layer is a scratch directory, so whatever the container writes (files
installed, users added, units enabled) is removed with it and the host's /etc, /run and
services are never touched. The container shares this machine's network.

    with booted(prepare=lambda root: ...) as m:    # prepare() writes into the root first
        m.run(["systemctl", "start", "..."])           # a command inside, all namespaces

Skips (pytest.skip) where containers cannot run at all: no overlay of /, or nspawn cannot
boot. A container that boots and then misbehaves fails."""
import contextlib
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import HARNESS, run

# Where prepare() may put the login harness (install_harness), inside the container.
HARNESS_IN = "/usr/local/libexec/twostep-test/pam_harness"


def init_pid_of(nspawn_pid):
    """The container's PID 1 (systemd) as this machine sees it: a `systemd` process that
    descends from the systemd-nspawn process."""
    def parent(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                return int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                if f.read().strip() != "systemd":
                    continue
        except OSError:
            continue
        pid = int(entry)
        p = parent(pid)
        for _ in range(4):
            if p == nspawn_pid:
                return pid
            p = parent(p)
    return None


class Machine:
    def __init__(self, root, pid):
        self.root = root  # the container's / as seen from here
        self.pid = pid

    def argv(self, argv):
        return ["nsenter", "-t", str(self.pid), "-a", "--", *argv]

    def run(self, argv, check=True, **kw):
        """Runs argv inside the container (all of its namespaces)."""
        return run(self.argv(argv), check=check, **kw)

    def sh(self, script, check=True, **kw):
        return self.run(["sh", "-ec", script], check=check, **kw)

    def path(self, p):
        return os.path.join(self.root, p.lstrip("/"))

    def write(self, p, text, mode=0o644):
        with open(self.path(p), "w") as f:
            f.write(text)
        os.chmod(self.path(p), mode)

    def active(self, unit):
        return self.run(["systemctl", "is-active", unit], check=False).stdout.strip()

    def login(self, user, answers, service):
        """One login through libpam inside the container (install_harness first)."""
        return self.run([HARNESS_IN, "--confdir", "/etc/pam.d", "--service", service, "--user", user,
                         "--answers", "-"], check=False, input="".join(a + "\n" for a in answers))


def install_harness(root):
    """Copies the built pam_harness into a container root (from a prepare())."""
    os.makedirs(os.path.dirname(os.path.join(root, HARNESS_IN.lstrip("/"))), exist_ok=True)
    shutil.copy(HARNESS, os.path.join(root, HARNESS_IN.lstrip("/")))


def available():
    """Why this machine cannot boot a container (None when it can try)."""
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("systemd-nspawn") is None:
        return "needs systemd-nspawn (Debian's systemd-container)"
    return None


@contextlib.contextmanager
def booted(prepare=None):
    tmp = tempfile.mkdtemp(prefix="twostep-nspawn.", dir="/var/tmp")
    root = os.path.join(tmp, "root")
    for d in ("upper", "work", "root"):
        os.mkdir(os.path.join(tmp, d))
    mounted = subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                              f"lowerdir=/,upperdir={tmp}/upper,workdir={tmp}/work", root],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.skip(f"this machine cannot mount an overlay of /: {mounted.stderr.strip()}")
    proc = None
    log = open(os.path.join(tmp, "nspawn.log"), "w+")
    try:
        if prepare:
            prepare(root)
        # basic.target: systemd, journald and the socket units; none of the host's network
        # services (the container shares this machine's network).
        proc = subprocess.Popen(["systemd-nspawn", "--quiet", "-D", root, "--register=no", "--keep-unit",
                                 "--boot", "--console=passive", "systemd.unit=basic.target"],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        pid = None
        deadline = time.time() + 60
        while pid is None and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
            pid = init_pid_of(proc.pid)
        if pid is None:
            log.seek(0)
            pytest.skip(f"systemd-nspawn could not boot a container here: {log.read()[-2000:]}")
        m = Machine(root, pid)
        # Until its manager answers on the container's bus socket, then until it is up.
        state, r = "", None
        while time.time() < deadline + 60 and state not in ("running", "degraded"):
            r = m.run(["systemctl", "is-system-running", "--wait"], check=False, timeout=120)
            state = r.stdout.strip()
            if state not in ("running", "degraded"):
                time.sleep(0.5)
        assert state in ("running", "degraded"), f"{state} {r.stderr if r else ''}"
        yield m
    finally:
        if proc is not None and proc.poll() is None:
            # A clean shutdown; failing that, SIGKILL to the container's PID 1 ends every
            # process in it (killing systemd-nspawn alone would leave the container running).
            pid = init_pid_of(proc.pid)
            if pid:
                subprocess.run(["nsenter", "-t", str(pid), "-a", "--", "systemctl", "poweroff"],
                               capture_output=True, timeout=30)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                if pid:
                    os.kill(pid, 9)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, 9)
                    proc.wait(timeout=30)
        log.close()
        for _ in range(20):
            if subprocess.run(["umount", root], capture_output=True).returncode == 0:
                break
            time.sleep(0.5)
        else:
            subprocess.run(["umount", "-l", root], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
