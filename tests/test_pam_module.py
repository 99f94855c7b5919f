# SPDX-License-Identifier: Apache-2.0
"""pam_twostep.so under real libpam (pam_start_confdir), with fake helpers.

Builds nothing. Needs:
  TWOSTEP_PAM_SO       the module (default build/pam_twostep.so)
  TWOSTEP_PAM_HARNESS  tests/harness/pam_harness.c compiled (default build/pam_harness):
                       cc -O2 -o build/pam_harness tests/harness/pam_harness.c -lpam -ldl
Run: /usr/bin/python3 -m pytest tests/test_pam_module.py
"""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import (FAKES as _FAKES, HARNESS as _HARNESS, MODULE as _MODULE, PAM_AUTH_ERR,
                      PAM_AUTHINFO_UNAVAIL, PAM_CONV_ERR, PAM_IGNORE, PAM_MAXTRIES, PAM_PERM_DENIED,
                      PAM_SERVICE_ERR, PAM_SUCCESS, PAM_SYSTEM_ERR, ROOT as _ROOT)

ROOT = Path(_ROOT)
FAKES = Path(_FAKES)
SO = Path(_MODULE)
HARNESS = Path(_HARNESS)


@pytest.fixture(scope="session", autouse=True)
def built_artifacts():
    missing = [str(p) for p in (SO, HARNESS) if not p.exists()]
    if missing:
        pytest.fail("missing build artifacts: %s (see this file's docstring)" % ", ".join(missing))


class Run:
    def __init__(self, proc, elapsed):
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr
        self.elapsed = elapsed
        self.results = [int(m) for m in re.findall(r"^RESULT: .* \((-?\d+)\)$", self.out, re.M)]

    def lines(self, prefix):
        return [l[len(prefix):] for l in self.out.splitlines() if l.startswith(prefix)]


class Stack:
    """A PAM config dir in a tmp dir with one service, `twostep-test`."""

    def __init__(self, tmp_path):
        self.dir = tmp_path
        self.config = tmp_path / "twostep.conf"  # fakes record into this file's directory

    def write(self, helper, args="", after=()):
        helper_path = helper if str(helper).startswith("/") else FAKES / helper
        line = "auth required %s helper=%s config=%s timeout=2 %s" % (
            SO, helper_path, self.config, args)
        (self.dir / "twostep-test").write_text("\n".join([line.strip(), *after]) + "\n")

    def raw(self, line):
        (self.dir / "twostep-test").write_text(line + "\n")

    def run(self, user="alice", answers=(), rounds=1, extra=(), timeout=30, prefix=(), **popen):
        cmd = [*prefix, str(HARNESS), "--confdir", str(self.dir), "--user", user, "--answers", "-",
               "--rounds", str(rounds), *extra]
        start = time.monotonic()
        proc = subprocess.run(cmd, input="".join(a + "\n" for a in answers), text=True,
                              capture_output=True, timeout=timeout, **popen)
        return Run(proc, time.monotonic() - start)

    def recorded(self, name):
        return json.loads((self.dir / name).read_text())


@pytest.fixture
def stack(tmp_path):
    return Stack(tmp_path)


def no_process_running(pattern):
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True).returncode == 1


# --- the dialogue -------------------------------------------------------------------------

def test_correct_code_succeeds(stack):
    stack.write("fake_ok.py")
    r = stack.run(answers=["123456"])
    assert r.lines("PROMPT_ECHO_OFF: ") == ["Verification code: "]
    assert r.results == [PAM_SUCCESS] and r.rc == PAM_SUCCESS


def test_wrong_code_fails_with_a_fail_delay(stack):
    stack.write("fake_ok.py")
    r = stack.run(answers=["654321"])
    assert r.results == [PAM_AUTH_ERR]
    # The module asks for 2 s; libpam randomises it by up to +-50 % (_pam_compute_delay:
    # base * (1 + sum), sum in [-0.5, 0.5)): what libpam promises, no more.
    [delay] = r.lines("FAIL_DELAY: ")
    assert 1_000_000 <= int(delay) <= 3_000_000


def test_failed_conversation_is_conv_err_and_tells_the_helper(stack):
    stack.write("fake_ok.py")
    r = stack.run(answers=[])  # the harness's conversation fails: no answer left
    assert r.results == [PAM_CONV_ERR]
    # The helper was told: its next frame was conversationFailed (0x03), not an answer.
    assert stack.recorded("reply.json") == {"type": 0x03, "length": 0}


def test_overlong_answer_is_rejected(stack):
    stack.write("fake_ok.py")
    r = stack.run(answers=["1" * 600])
    assert r.results == [PAM_AUTH_ERR]
    # Refused in the module: the helper never saw the answer, only conversationFailed
    # (relayed, it would have answered "failure": PAM_AUTH_ERR all the same).
    assert stack.recorded("reply.json") == {"type": 0x03, "length": 0}


def test_info_and_error_messages_are_relayed(stack):
    stack.write("fake_info.py")
    r = stack.run()
    assert r.lines("INFO: ") == ["Welcome to twostep"]
    assert r.lines("ERROR: ") == ["This is only a test"]
    assert r.results == [PAM_SUCCESS]


@pytest.mark.parametrize("verdict,code", [
    ("success", PAM_SUCCESS),
    ("failure", PAM_AUTH_ERR),
    ("notEnrolled", PAM_AUTH_ERR),
    ("lockedOut", PAM_MAXTRIES),
    ("systemError", PAM_AUTHINFO_UNAVAIL),
    ("conversationError", PAM_CONV_ERR),
    ("denied", PAM_AUTH_ERR),
    ("200", PAM_SYSTEM_ERR),  # not a verdict
])
def test_each_verdict_maps_to_its_pam_code(stack, verdict, code):
    stack.write("fake_verdict.py")
    (stack.dir / "verdict").write_text(verdict)
    assert stack.run(user="bob").results == [code]


def test_ignore_alone_is_denied_by_libpam(stack):
    # A stack whose only module says PAM_IGNORE has no verdict: libpam returns PERM_DENIED.
    stack.write("fake_verdict.py")
    assert stack.run(user="v-ignore").results == [PAM_PERM_DENIED]


def test_ignore_lets_the_rest_of_the_stack_decide(stack):
    stack.write("fake_verdict.py", after=["auth required pam_permit.so"])
    assert stack.run(user="v-ignore").results == [PAM_SUCCESS]
    stack.write("fake_verdict.py", after=["auth required pam_deny.so"])
    assert stack.run(user="v-ignore").results == [PAM_AUTH_ERR]


def test_request_carries_user_service_and_options(stack):
    stack.write("fake_verdict.py", args="nullok debug")
    (stack.dir / "verdict").write_text("success")
    assert stack.run(user="carol").results == [PAM_SUCCESS]
    req = stack.recorded("request.json")
    assert req["version"] == "1" and req["mode"] == "pam"
    assert req["user"] == "carol"
    assert req["service"] == "twostep-test"
    assert req["config"] == str(stack.config)
    assert req["nullok"] == "1" and req["debug"] == "1"
    # Items the application did not set are left out, not sent empty.
    for absent in ("rhost", "ruser", "tty", "auth_info"):
        assert absent not in req


def test_request_carries_remote_items_and_ssh_auth_info(stack):
    stack.write("fake_verdict.py")
    (stack.dir / "verdict").write_text("success")
    r = stack.run(user="dave", extra=["--rhost", "192.0.2.7", "--ruser", "remote", "--tty", "ssh",
                                      "--env", "SSH_AUTH_INFO_0=publickey ssh-ed25519 AAAAC3Nz"])
    assert r.results == [PAM_SUCCESS]
    req = stack.recorded("request.json")
    assert req["rhost"] == "192.0.2.7" and req["ruser"] == "remote" and req["tty"] == "ssh"
    assert req["auth_info"] == "publickey ssh-ed25519 AAAAC3Nz"


def test_oversized_request_fails_closed_without_starting_the_helper(stack):
    stack.write("fake_verdict.py")
    (stack.dir / "verdict").write_text("success")
    r = stack.run(user="erin", extra=["--env", "SSH_AUTH_INFO_0=" + "k" * 40000])
    assert r.results == [PAM_SYSTEM_ERR]
    assert not (stack.dir / "request.json").exists()


def test_nullok_defaults_off(stack):
    stack.write("fake_verdict.py")
    (stack.dir / "verdict").write_text("success")
    stack.run(user="carol")
    req = stack.recorded("request.json")
    assert req["nullok"] == "0" and req["debug"] == "0"


# --- the helper's process -------------------------------------------------------------------

def _host_with_odd_signals_and_a_leaked_fd():
    # What a careless host might hand down: a blocked signal, an ignored one, an fd
    # without close-on-exec.
    def setup():
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    return setup


def test_helper_gets_clean_env_fds_and_signals(stack, tmp_path):
    stack.write("fake_env.py")
    leaked = os.open(str(tmp_path / "leak"), os.O_CREAT | os.O_RDWR)
    try:
        r = stack.run(env={"SECRET_ENV": "x", "PATH": os.environ.get("PATH", "")},
                      preexec_fn=_host_with_odd_signals_and_a_leaked_fd(), pass_fds=(leaked,))
    finally:
        os.close(leaked)
    assert r.results == [PAM_SUCCESS]
    seen = stack.recorded("env.json")
    assert seen["environ"] == ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
    assert seen["fds"] == [0, 1, 2]
    assert seen["fd_targets"]["2"] == "/dev/null"
    assert seen["fd_targets"]["0"] == seen["fd_targets"]["1"]
    assert seen["fd_targets"]["0"].startswith("socket:")
    assert seen["argv"][1:] == ["pam"]
    assert seen["blocked_signals"] == []
    assert seen["sigusr1_ignored"] is False


def test_missing_helper_is_authinfo_unavail(stack):
    stack.write(stack.dir / "no-such-helper")
    r = stack.run()
    assert r.results == [PAM_AUTHINFO_UNAVAIL]


def test_hanging_helper_is_cut_off_and_killed(stack):
    stack.write("fake_hang.py")  # timeout=2
    r = stack.run()
    assert r.results == [PAM_SYSTEM_ERR]
    assert r.elapsed < 2 + 2
    assert no_process_running("fake_hang")


def test_hanging_helper_in_a_host_that_ignores_sigchld(stack):
    stack.write("fake_hang.py", args="timeout=1")
    r = stack.run(preexec_fn=lambda: signal.signal(signal.SIGCHLD, signal.SIG_IGN))
    assert r.results == [PAM_SYSTEM_ERR]
    assert r.elapsed < 1 + 2
    assert no_process_running("fake_hang")


def test_host_that_ignores_sigchld_still_gets_the_verdict(stack):
    stack.write("fake_ok.py")
    r = stack.run(answers=["123456", "000000"], rounds=2,
                  preexec_fn=lambda: signal.signal(signal.SIGCHLD, signal.SIG_IGN))
    assert r.results == [PAM_SUCCESS, PAM_AUTH_ERR]


def test_a_host_that_reaps_the_helper_and_reuses_its_pid_is_left_alone(stack):
    """A host that reaps its own children may, by the time the module waits for its helper,
    have given the helper's pid to another child. The module waits for exactly its helper
    (waitid on the pidfd): waiting by pid took the host's child instead, and would have
    blocked the login until that child ended (here a 60 s sleeper, beyond the timeout)."""
    stack.write("fake_ok.py")
    r = stack.run(answers=["123456", "000000", "123456"], rounds=3, extra=["--reap-and-reuse-pids"], timeout=30)
    assert r.results == [PAM_SUCCESS, PAM_AUTH_ERR, PAM_SUCCESS], r.out
    # The host did get the helpers' pids again (else this proved nothing).
    assert len(r.lines("REUSED: ")) >= 1, r.out


def test_helper_crash_after_prompt_is_system_err(stack):
    stack.write("fake_crash.py")
    r = stack.run(answers=["123456"])
    # Not killed by SIGPIPE when answering a dead helper: a normal PAM result.
    assert r.rc == PAM_SYSTEM_ERR
    assert r.results == [PAM_SYSTEM_ERR]


@pytest.mark.parametrize("case", [
    "garbage", "unknown-type", "oversize", "truncated-header", "truncated-payload", "eof",
    "request-frame", "answer-frame", "data-frame", "bad-result-length",
])
def test_malformed_helper_output_is_system_err(stack, case):
    stack.write("fake_malformed.py")
    r = stack.run(user=case)
    assert r.results == [PAM_SYSTEM_ERR]
    assert r.elapsed < 2  # detected, not timed out


# --- module arguments ----------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    "frobnicate", "nullok=1", "debug=yes", "timeout=0", "timeout=601", "timeout=abc",
    "timeout=", "timeout", "config", "config=relative.conf",
    "socket", "socket=", "socket=relative.sock", "socket=/" + "s" * 107,
])
def test_bad_module_argument_is_service_err(stack, args):
    stack.write("fake_ok.py", args=args)
    assert stack.run(answers=["123456"]).results == [PAM_SERVICE_ERR]


def test_helper_runs_with_its_absolute_path_as_argv0(stack, tmp_path):
    # The Swift runtime finds its crash backtracer relative to argv[0]'s directory: a bare
    # name there would make that the caller's working directory. A script fake cannot see
    # its argv[0] (the kernel hands the interpreter the script's path), so this helper is a
    # small C program that records what it was started as and exits without a verdict.
    if shutil.which("cc") is None:
        pytest.skip("cc not installed")
    src = tmp_path / "argv0.c"
    src.write_text(
        '#include <stdio.h>\n'
        'int main(int argc, char **argv) {\n'
        '    FILE *f = fopen(argc > 1 ? "%s" : "/dev/null", "w");\n'
        '    if (!f) return 2;\n'
        '    for (int i = 0; i < argc; i++) fprintf(f, "%%s\\n", argv[i]);\n'
        '    return fclose(f) == 0 ? 1 : 3;\n'
        '}\n' % (tmp_path / "argv.txt"))
    helper = tmp_path / "fake-argv0"
    subprocess.run(["cc", "-O1", "-o", str(helper), str(src)], check=True)
    stack.write(str(helper))
    r = stack.run(answers=["123456"], cwd="/tmp")
    assert r.results == [PAM_SYSTEM_ERR], r.out + r.err   # no verdict: fails closed
    assert (tmp_path / "argv.txt").read_text().splitlines() == [str(helper), "pam"]


def test_relative_helper_path_is_service_err(stack):
    stack.raw("auth required %s helper=fake_ok.py" % SO)
    assert stack.run(answers=["123456"]).results == [PAM_SERVICE_ERR]


# --- socket=: the same relay over a running server's socket ---------------------------------

# A stand-in for `twostep-helper serve`: for each connection it runs a fake helper with the
# connection as its fd 0 and 1, so every fake above can sit behind a socket unchanged.
FAKE_SERVER = r"""
import os, signal, socket, subprocess, sys
path, helper = sys.argv[1], sys.argv[2]
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
s = socket.socket(socket.AF_UNIX); s.bind(path); s.listen(16)
os.write(1, b"ready\n")
while True:
    c, _ = s.accept()
    subprocess.Popen([helper], stdin=c, stdout=c, stderr=subprocess.DEVNULL)
    c.close()
"""


class FakeServers:
    def __init__(self):
        # sun_path holds 107 bytes: pytest's tmp_path can be longer than that.
        self.dir = Path(tempfile.mkdtemp(prefix="ts-sock-"))
        self.procs = []

    def start(self, helper):
        path = self.dir / ("s%d.sock" % len(self.procs))
        proc = subprocess.Popen(["/usr/bin/python3", "-c", FAKE_SERVER, str(path), str(FAKES / helper)],
                                stdout=subprocess.PIPE, start_new_session=True)
        self.procs.append(proc)
        assert proc.stdout.readline() == b"ready\n"
        return path

    def close(self):
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def servers():
    s = FakeServers()
    try:
        yield s
    finally:
        s.close()


NO_HELPER = "/nonexistent/twostep-helper"  # a login that falls back to spawning fails


def test_socket_relays_the_dialogue(stack, servers):
    sock = servers.start("fake_ok.py")
    stack.write(NO_HELPER, args="socket=%s" % sock)
    r = stack.run(answers=["123456", "000000"], rounds=2)
    assert r.lines("PROMPT_ECHO_OFF: ") == ["Verification code: "] * 2
    assert r.results == [PAM_SUCCESS, PAM_AUTH_ERR]


def test_socket_relays_messages(stack, servers):
    stack.write(NO_HELPER, args="socket=%s" % servers.start("fake_info.py"))
    r = stack.run()
    assert r.lines("INFO: ") == ["Welcome to twostep"]
    assert r.lines("ERROR: ") == ["This is only a test"]
    assert r.results == [PAM_SUCCESS]


@pytest.mark.parametrize("verdict,code", [
    ("success", PAM_SUCCESS), ("failure", PAM_AUTH_ERR), ("lockedOut", PAM_MAXTRIES),
    ("systemError", PAM_AUTHINFO_UNAVAIL), ("200", PAM_SYSTEM_ERR),
])
def test_socket_verdicts_map_like_spawned_ones(stack, servers, verdict, code):
    stack.write(NO_HELPER, args="socket=%s" % servers.start("fake_verdict.py"))
    (stack.dir / "verdict").write_text(verdict)
    assert stack.run(user="bob").results == [code]


def test_socket_request_is_the_spawned_request(stack, servers):
    (stack.dir / "verdict").write_text("success")
    extra = ["--rhost", "192.0.2.7", "--tty", "ssh", "--env", "SSH_AUTH_INFO_0=publickey x"]
    stack.write("fake_verdict.py", args="nullok")
    assert stack.run(user="carol", extra=extra).results == [PAM_SUCCESS]
    spawned = stack.recorded("request.json")
    (stack.dir / "request.json").unlink()
    stack.write(NO_HELPER, args="nullok socket=%s" % servers.start("fake_verdict.py"))
    assert stack.run(user="carol", extra=extra).results == [PAM_SUCCESS]
    assert stack.recorded("request.json") == spawned


def test_socket_server_silent_at_first_frame_is_not_used(stack, servers):
    """A server that does not answer the request within 2 s (busy, or starved by one user's
    connections) is not used: the module spawns its helper instead."""
    sock = servers.start("fake_hang.py")
    stack.write("fake_ok.py", args="socket=%s" % sock)
    r = stack.run(answers=["123456"])
    assert r.results == [PAM_SUCCESS]
    assert 2 <= r.elapsed < 2 + 2
    stack.write(NO_HELPER, args="socket=%s" % sock)
    r = stack.run()
    assert r.results == [PAM_AUTHINFO_UNAVAIL]
    assert 2 <= r.elapsed < 2 + 2


def test_socket_server_crash_after_prompt_is_system_err(stack, servers):
    stack.write(NO_HELPER, args="socket=%s" % servers.start("fake_crash.py"))
    r = stack.run(answers=["123456"])
    assert r.rc == PAM_SYSTEM_ERR and r.results == [PAM_SYSTEM_ERR]


@pytest.mark.parametrize("case", ["garbage", "oversize", "truncated-payload", "request-frame"])
def test_socket_malformed_server_output_is_system_err(stack, servers, case):
    stack.write(NO_HELPER, args="socket=%s" % servers.start("fake_malformed.py"))
    r = stack.run(user=case)
    assert r.results == [PAM_SYSTEM_ERR]
    assert r.elapsed < 2


def test_socket_server_closing_before_its_first_frame_is_not_used(stack, servers):
    """End of stream before any frame (a socket whose service cannot start): nothing was
    asked, so the module spawns its helper instead, here one that is missing (fail closed)
    and then one that answers."""
    path = servers.start("fake_malformed.py")
    stack.write(NO_HELPER, args="socket=%s" % path)
    r = stack.run(user="eof")
    assert r.results == [PAM_AUTHINFO_UNAVAIL] and r.elapsed < 2
    stack.write("fake_ok.py", args="socket=%s" % path)
    assert stack.run(user="eof", answers=["123456"]).results == [PAM_SUCCESS]


def test_socket_missing_falls_back_to_spawning(stack, tmp_path):
    stack.write("fake_ok.py", args="socket=/nonexistent/verify.sock")
    assert stack.run(answers=["123456", "000000"], rounds=2).results == [PAM_SUCCESS, PAM_AUTH_ERR]
    stack.write(NO_HELPER, args="socket=/nonexistent/verify.sock")
    assert stack.run().results == [PAM_AUTHINFO_UNAVAIL]


def test_socket_that_is_not_a_socket_falls_back(stack):
    stack.write("fake_ok.py", args="socket=/etc/passwd")  # ECONNREFUSED
    assert stack.run(answers=["123456"]).results == [PAM_SUCCESS]
    stack.write("fake_ok.py", args="socket=/etc")  # ECONNREFUSED / ENOTSOCK
    assert stack.run(answers=["123456"]).results == [PAM_SUCCESS]


def test_socket_fifty_rounds_in_one_process(stack, servers):
    stack.write(NO_HELPER, args="socket=%s" % servers.start("fake_ok.py"))
    r = stack.run(answers=["123456", "000000"] * 25, rounds=50, timeout=120)
    assert r.results == [PAM_SUCCESS, PAM_AUTH_ERR] * 25


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind not installed")
def test_socket_no_memory_errors_or_fd_leaks_under_valgrind(stack, servers):
    stack.write(NO_HELPER, args="socket=%s" % servers.start("fake_ok.py"))
    r = stack.run(answers=["123456", "000000", "123456"], rounds=3, timeout=300,
                  prefix=["valgrind", "--error-exitcode=9", "--leak-check=no", "-q",
                          "--track-fds=yes",
                          "--suppressions=%s" % (ROOT / "tests" / "harness" / "valgrind.supp")])
    assert r.results == [PAM_SUCCESS, PAM_AUTH_ERR, PAM_SUCCESS], r.err
    assert r.rc == PAM_SUCCESS, r.err
    # Nothing but the standard descriptors is left open at exit: every connection closed.
    assert "socket" not in r.err.lower(), r.err


# --- the shared object ---------------------------------------------------------------------

def test_module_links_no_swift_runtime():
    out = subprocess.run(["ldd", str(SO)], capture_output=True, text=True, check=True).stdout
    assert "swift" not in out.lower()
    assert "Foundation" not in out


def test_module_needs_only_libc_and_libpam():
    # Embedded Swift: no Swift runtime, no libstdc++, no libm; the host gains only what it has.
    out = subprocess.run(["readelf", "-d", str(SO)], capture_output=True, text=True,
                         check=True).stdout
    needed = sorted(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out))
    assert needed == ["libc.so.6", "libpam.so.0"], needed


def test_module_is_kilobytes_when_stripped(tmp_path):
    stripped = tmp_path / "pam_twostep.so"
    subprocess.run(["strip", "--strip-unneeded", "-o", str(stripped), str(SO)], check=True)
    size = stripped.stat().st_size
    assert size < 300 * 1024, f"stripped module is {size} bytes"


def test_module_exports_only_pam_entry_points():
    out = subprocess.run(["nm", "-D", "--defined-only", str(SO)],
                         capture_output=True, text=True, check=True).stdout
    names = sorted(line.split()[-1] for line in out.splitlines() if line.strip())
    assert names == ["pam_sm_acct_mgmt", "pam_sm_authenticate", "pam_sm_setcred"]


def test_module_is_nodelete():
    out = subprocess.run(["readelf", "-d", str(SO)], capture_output=True, text=True,
                         check=True).stdout
    assert re.search(r"FLAGS_1.*NODELETE", out)


def test_module_survives_repeated_dlopen():
    r = subprocess.run([str(HARNESS), "--dlopen-loop", "200", str(SO)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "DLOPEN: 200 ok"


def test_fifty_rounds_in_one_process(stack):
    stack.write("fake_ok.py")
    r = stack.run(answers=["123456", "000000"] * 25, rounds=50, timeout=120)
    assert r.results == [PAM_SUCCESS, PAM_AUTH_ERR] * 25
    assert no_process_running(str(FAKES / "fake_ok.py"))


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind not installed")
@pytest.mark.parametrize("helper,user,answers,expected", [
    ("fake_ok.py", "alice", ["123456", "000000", "123456"], [PAM_SUCCESS, PAM_AUTH_ERR, PAM_SUCCESS]),
    ("fake_malformed.py", "oversize", [], [PAM_SYSTEM_ERR] * 3),
    ("fake_crash.py", "alice", ["1", "2", "3"], [PAM_SYSTEM_ERR] * 3),
])
def test_no_memory_errors_under_valgrind(stack, helper, user, answers, expected):
    stack.write(helper)
    r = stack.run(user=user, answers=answers, rounds=3, timeout=300,
                  prefix=["valgrind", "--error-exitcode=9", "--leak-check=no", "-q",
                          "--suppressions=%s" % (ROOT / "tests" / "harness" / "valgrind.supp")])
    assert r.results == expected, r.err
    assert r.rc == expected[-1], r.err


def test_account_and_setcred_lines_check_their_arguments_too(inst):
    """`account required pam_twostep.so bogus` passed (PAM_SUCCESS): only auth lines checked
    their arguments, where DESIGN.md says unknown arguments fail."""
    inst.enroll("alice")
    from conftest import oathtool
    good = inst.service("tsacct", after=f"account required {SO} nullok\n")
    assert inst.login("alice", oathtool(), service=good).returncode == 0
    bad = inst.service("tsacctbad", after=f"account required {SO} bogus\n")
    r = inst.login("alice", oathtool(at=time.time() + 30), service=bad)
    assert r.returncode != 0 and "accepted" not in r.stdout, r.stdout + r.stderr
