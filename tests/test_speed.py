# SPDX-License-Identifier: Apache-2.0
"""The fast path by default and its fallbacks, through libpam:

- a stack with no socket= asks the running helper at /run/twostep/verify.sock (here
  socket-activated by systemd-socket-activate, as twostep-helperd.socket does); with the
  listener stopped it spawns the helper instead;
- twostep-verify, the lean static helper spawned by default, logs in, refuses replays, and
  hands enrolment at first login to twostep-helper;
- 64 logins of different users at once through the default path all succeed.

These tests use the real default socket path: they run under the shared test lock, and
each removes what it created there.
"""
import concurrent.futures
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import (HARNESS, HELPER, MODULE, PAM_AUTH_ERR, PAM_AUTHINFO_UNAVAIL, PAM_SUCCESS, VERIFY,
                      Installation, harness_login, oathtool, wait_for_socket, wrong)

DEFAULT_SOCKET = "/run/twostep/verify.sock"
NO_HELPER = "/nonexistent/twostep-helper"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def service(inst, name, args=""):
    """A stack line with no socket= unless `args` says so: the module's defaults."""
    with open(os.path.join(inst.pamdir, name), "w") as f:
        f.write(f"auth required {MODULE} config={inst.conf} timeout=20 {args}\n")
    return name


class DefaultSocket:
    """twostep-helper serving /run/twostep/verify.sock as twostep-helperd.socket would
    (Accept=no: the listening socket on fd 3), started and stopped by the test."""

    def __init__(self, conf):
        self.conf = conf
        self.proc = None
        self.made_dir = not os.path.isdir(os.path.dirname(DEFAULT_SOCKET))

    def start(self):
        assert not listening(DEFAULT_SOCKET), f"something already listens at {DEFAULT_SOCKET}"
        if os.path.lexists(DEFAULT_SOCKET):
            os.unlink(DEFAULT_SOCKET)
        os.makedirs(os.path.dirname(DEFAULT_SOCKET), mode=0o755, exist_ok=True)
        self.proc = subprocess.Popen(["systemd-socket-activate", "-l", DEFAULT_SOCKET, HELPER, "serve",
                                      "--config", self.conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        wait_for_socket(DEFAULT_SOCKET, self.proc)
        os.chmod(DEFAULT_SOCKET, 0o600)  # the unit's SocketMode=

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=60)
            self.proc.stderr.close()
        # Its workers (which die with it) hold the listening socket until they are gone.
        # Wait for that, however loaded the machine: a test that went on while one still
        # answered would see its "stopped" listener decide logins.
        deadline = time.monotonic() + 60
        while listening(DEFAULT_SOCKET):
            assert time.monotonic() < deadline, f"{DEFAULT_SOCKET} still answers 60 s after the listener was stopped"
            time.sleep(0.02)

    def close(self):
        self.stop()
        if os.path.lexists(DEFAULT_SOCKET):
            os.unlink(DEFAULT_SOCKET)
        if self.made_dir:
            shutil.rmtree(os.path.dirname(DEFAULT_SOCKET), ignore_errors=True)


def listening(path):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


needs_activate = pytest.mark.skipif(shutil.which("systemd-socket-activate") is None,
                                    reason="systemd-socket-activate not installed")


@pytest.fixture
def default_socket(inst):
    d = DefaultSocket(inst.conf)
    try:
        yield d
    finally:
        d.close()


@needs_activate
def test_default_stack_asks_the_running_helper_and_spawns_when_it_is_stopped(inst, default_socket):
    inst.enroll("alice")
    # helper= names nothing: a login that succeeds went through the socket.
    through_socket = service(inst, "bysocket", f"helper={NO_HELPER}")
    spawning = service(inst, "byspawn", f"helper={VERIFY}")
    t = time.time()
    default_socket.start()
    assert harness_login(inst.pamdir, through_socket, "alice", oathtool(at=t)) == PAM_SUCCESS
    assert harness_login(inst.pamdir, through_socket, "alice", oathtool(at=t)) == PAM_AUTH_ERR
    # The listener stopped (its socket file left behind: ECONNREFUSED): the module spawns.
    default_socket.stop()
    assert os.path.exists(DEFAULT_SOCKET)
    assert harness_login(inst.pamdir, through_socket, "alice", oathtool(at=t + 30)) == PAM_AUTHINFO_UNAVAIL
    assert harness_login(inst.pamdir, spawning, "alice", oathtool(at=t + 30)) == PAM_SUCCESS
    # No socket file at all (no systemd on this host): the same.
    os.unlink(DEFAULT_SOCKET)
    assert harness_login(inst.pamdir, spawning, "alice", oathtool(at=t + 30)) == PAM_AUTH_ERR  # spent
    inst.enroll("bob")
    assert harness_login(inst.pamdir, spawning, "bob", oathtool(at=t)) == PAM_SUCCESS


@needs_activate
def test_socket_none_never_asks_the_running_helper(inst, default_socket):
    inst.enroll("carol")
    default_socket.start()
    never = service(inst, "never", f"helper={NO_HELPER} socket=none")
    assert harness_login(inst.pamdir, never, "carol", oathtool()) == PAM_AUTHINFO_UNAVAIL


@pytest.fixture
def lone_verify(tmp_path):
    """twostep-verify copied alone into a directory: a login it hands to twostep-helper
    (looked for beside it) fails there, so a success proves the lean helper finished it."""
    d = tmp_path / "libexec"
    d.mkdir()
    path = d / "twostep-verify"
    shutil.copy2(VERIFY, path)
    os.chmod(d, 0o755)
    return str(path)


@pytest.fixture
def account():
    """A new account in /etc/passwd (nsswitch.conf here: `files` first)."""
    import secrets
    name = f"lv{secrets.token_hex(4)}"
    subprocess.run(["useradd", "-M", "-s", "/bin/sh", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["userdel", "-f", name], check=True, capture_output=True)


def login_with_files(inst, service_name, user, answer, files, setup=""):
    """One harness login in a private mount namespace where each path of `files` (a dict)
    reads as the given text (bind mounts, after the shell commands `setup`: the host's
    files are untouched); the PAM code."""
    script, args = setup, []
    for i, (target, text) in enumerate(files.items()):
        source = os.path.join(inst.root, f"bind{i}")
        with open(source, "w") as f:
            f.write(text)
        script += f'mount --bind "${i + 1}" "{target}"; '
        args.append(source)
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-euc",
                        script + f"shift {len(args)}; " + 'exec "$@"', "sh", *args,
                        HARNESS, "--confdir", inst.pamdir, "--service", service_name, "--user", user,
                        "--answers", "-"], input=answer + "\n", capture_output=True, text=True, timeout=60)
    codes = [int(c) for c in re.findall(r"^RESULT: .* \((-?\d+)\)$", r.stdout, re.M)]
    assert codes, r.stdout + r.stderr
    return codes[-1]


# nsswitch.conf as the lean tests set it in their namespaces (not the host's, whatever it says).
FILES_FIRST = {"/etc/nsswitch.conf": "passwd: files systemd\ngroup: files\nshadow: files\n"}
SYSTEMD_FIRST = {"/etc/nsswitch.conf": "passwd: systemd files\ngroup: files\nshadow: files\n"}
FILES_ALONE = {"/etc/nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\n"}


def test_lean_helper_logs_in_refuses_replays_and_takes_backup_codes(inst, account, lone_verify):
    inst.enroll(account)
    lean = service(inst, "lean", f"helper={lone_verify} socket=none")
    t = time.time()

    def login(answer):
        return login_with_files(inst, lean, account, answer, FILES_FIRST)
    assert login(wrong(oathtool(at=t))) == PAM_AUTH_ERR
    assert login(oathtool(at=t)) == PAM_SUCCESS
    assert login(oathtool(at=t)) == PAM_AUTH_ERR
    import json
    codes = json.loads(inst.cli("admin", "backup-codes", account, "--json").stdout)["backup_codes"]
    assert login(codes[0]) == PAM_SUCCESS
    assert login(codes[0]) == PAM_AUTH_ERR
    events = [(e["event"], e["result"]) for e in inst.audit_events()]
    assert events.count(("verify", "success")) == 2


def test_lean_helper_answers_only_users_etc_passwd_answers_for(inst, account, lone_verify):
    """twostep-verify is linked statically and calls no NSS: it finishes a login itself only
    when /etc/passwd answers for the user as glibc would (nsswitch.conf: `files` first, no
    action), and hands every other login to the twostep-helper beside it, which asks NSS."""
    other = "lvnotanaccount"
    inst.write_config(window=4)  # four steps either side: one user logs in at several
    for user in (account, other):
        inst.enroll(user)
    lone = service(inst, "lone", f"helper={lone_verify} socket=none")
    beside = service(inst, "beside", f"helper={VERIFY} socket=none")
    files_first, systemd_first, files_alone = FILES_FIRST, SYSTEMD_FIRST, FILES_ALONE
    t = time.time()
    # `files` first: the account is the lean helper's.
    assert login_with_files(inst, lone, account, oathtool(at=t - 60), files_first) == PAM_SUCCESS
    # A name the file does not have, other sources after it: handed on; alone, the hand-off
    # fails closed.
    assert login_with_files(inst, lone, other, oathtool(at=t - 60), files_first) == PAM_AUTHINFO_UNAVAIL
    assert login_with_files(inst, beside, other, oathtool(at=t - 60), files_first) == PAM_SUCCESS
    # `files` alone: such a name is no account, and the lean helper answers it itself.
    assert login_with_files(inst, lone, other, oathtool(at=t), files_alone) == PAM_SUCCESS
    # A name no NSS source could hold (a control character): the lean helper's too.
    assert login_with_files(inst, lone, "lv\tbad", oathtool(at=t), files_first) == PAM_AUTH_ERR
    # Another source before files: even an account in the file is handed on.
    assert login_with_files(inst, lone, account, oathtool(at=t - 30), systemd_first) == PAM_AUTHINFO_UNAVAIL
    assert login_with_files(inst, beside, account, oathtool(at=t - 30), systemd_first) == PAM_SUCCESS
    assert login_with_files(inst, lone, account, oathtool(at=t), files_first) == PAM_SUCCESS
    # require = GROUPS asks NSS's group database: the full helper's.
    inst.write_config(window=4, require="users")
    assert login_with_files(inst, lone, account, oathtool(at=t + 30), files_first) == PAM_AUTHINFO_UNAVAIL
    assert login_with_files(inst, beside, account, oathtool(at=t + 30), files_first) == PAM_SUCCESS
    assert login_with_files(inst, beside, account, oathtool(at=t + 30), files_first) == PAM_AUTH_ERR  # spent


def test_lean_helper_tells_an_account_from_no_account(inst, account, lone_verify):
    """What the file answers decides the login, not only whether the lean helper keeps it:
    with enroll = prompt and require = all, an unenrolled account is enrolled at its first
    login (the full helper's work, so handed on: alone, that fails), while a name that is no
    account (`files` alone) is refused by the lean helper itself, as the full helper would."""
    inst.write_config(enroll="prompt", require="all")
    lone = service(inst, "lone", f"helper={lone_verify} socket=none")
    assert login_with_files(inst, lone, account, "000000", FILES_FIRST) == PAM_AUTHINFO_UNAVAIL
    assert login_with_files(inst, lone, "lvnotanaccount", "000000", FILES_ALONE) == PAM_AUTH_ERR
    assert login_with_files(inst, lone, "lvnotanaccount", "000000", FILES_FIRST) == PAM_AUTHINFO_UNAVAIL


def test_lean_helper_in_fips_mode_hands_every_login_on(inst, account, lone_verify):
    """A kernel in FIPS mode means a FIPS provider configured in openssl.cnf, which this
    static process does not load: twostep-verify hands the login to twostep-helper. (The
    switch is faked in a private mount namespace: a tmpfs over /proc/sys when this kernel
    has no /proc/sys/crypto.)"""
    inst.enroll(account)
    lone = service(inst, "lone", f"helper={lone_verify} socket=none")
    beside = service(inst, "beside", f"helper={VERIFY} socket=none")
    switch = "/proc/sys/crypto/fips_enabled"
    setup = "" if os.path.exists(switch) else \
        "mount -t tmpfs none /proc/sys; mkdir /proc/sys/crypto; : > /proc/sys/crypto/fips_enabled; "
    t = time.time()
    assert login_with_files(inst, lone, account, oathtool(at=t), {switch: "1\n"}, setup) == PAM_AUTHINFO_UNAVAIL
    assert login_with_files(inst, beside, account, oathtool(at=t), {switch: "1\n"}, setup) == PAM_SUCCESS
    # The control: the same namespace with the switch off.
    assert login_with_files(inst, lone, account, oathtool(at=t + 30), {switch: "0\n"}, setup) == PAM_SUCCESS


def test_lean_helper_hands_enrolment_at_first_login_to_the_full_helper(inst):
    from test_login import enrol_a_new_account_at_first_login
    enrol_a_new_account_at_first_login(inst, f"helper={VERIFY} socket=none")


@needs_activate
def test_64_logins_of_different_users_at_once_through_the_default_path(inst, default_socket):
    users = [f"conc{i}" for i in range(64)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(inst.enroll, users))
    default_socket.start()
    svc = service(inst, "many", f"helper={VERIFY}")
    t = time.time()
    with concurrent.futures.ThreadPoolExecutor(64) as pool:
        codes = list(pool.map(lambda u: harness_login(inst.pamdir, svc, u, oathtool(at=t)), users))
    assert codes == [PAM_SUCCESS] * 64
    # Every one of them was decided and audited once.
    ok = [e["user"] for e in inst.audit_events() if e["event"] == "verify" and e["result"] == "success"]
    assert sorted(ok) == sorted(users)
