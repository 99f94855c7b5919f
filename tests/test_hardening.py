# SPDX-License-Identifier: Apache-2.0
"""Issue 6, an attacker's review: each finding proved through the interfaces an attacker
touches (libpam with the real module and helper, the helper's socket, syslog, the CLI).
Every test here failed on the code before the fix."""
import ctypes
import json
import os
import pwd
import re
import secrets
import shutil
import socket
import stat
import subprocess
import tempfile
import uuid
import time

import pytest

from conftest import CLI, HELPER, HARNESS, VERIFY, Installation, SECRET, login_at_prompt, oathtool, wrong
from test_selfservice import PASSWORD, host, wait_for_socket  # noqa: F401 (host is a fixture)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE_STORE = os.path.join(ROOT, "tests", "fixtures", "v1-store")
PAM_SUCCESS, PAM_AUTH_ERR, PAM_SYSTEM_ERR, PAM_MAXTRIES, PAM_AUTHINFO_UNAVAIL = 0, 7, 4, 11, 9
# The module's PAM_IGNORE lets the stack decide: pam_permit after it makes that a success.
PERMIT_AFTER = "auth required pam_permit.so\naccount required pam_permit.so\n"


@pytest.fixture
def inst():
    root = tempfile.mkdtemp(prefix="twostep-hd-")
    try:
        yield Installation(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def harness(inst, user, answers, service="tstest", prefix=(), extra=(), timeout=60):
    """pam_harness (a C host, libpam) through the real module and helper. Returns
    (PAM codes of each round, stdout)."""
    cmd = [*prefix, HARNESS, "--confdir", inst.pamdir, "--service", service, "--user", user,
           "--answers", "-", "--rounds", str(len(answers)), *extra]
    r = subprocess.run(cmd, input="".join(a + "\n" for a in answers), capture_output=True, text=True,
                       timeout=timeout)
    return [int(m) for m in re.findall(r"^RESULT: .* \((-?\d+)\)$", r.stdout, re.M)], r.stdout + r.stderr


def status(inst, user):
    return json.loads(inst.cli("admin", "show", user, "--json").stdout)


def temporaries(inst):
    """Temporary files of writes (`.NAME.tmp` under the user's lock; `.NAME.tmp.PID` otherwise)."""
    return [n for n in os.listdir(inst.state) if ".tmp" in n]


# --- 1. the limiter under a hostile setuid caller ------------------------------------------

def can_raise_hard_limits():
    """CAP_SYS_RESOURCE (bit 24): without it (some containers) even root cannot raise a
    hard limit the caller lowered."""
    with open("/proc/self/status") as f:
        eff = int(next(l for l in f if l.startswith("CapEff:")).split()[1], 16)
    return bool(eff >> 24 & 1)


def test_file_size_limit_cannot_hide_wrong_codes(inst):
    """prlimit --fsize=50: the helper used to die of SIGXFSZ writing the state of a wrong
    code (58 bytes) but not of a right one: unlimited guesses with a success oracle."""
    inst.enroll("alice")
    inst.service()
    limited = ["prlimit", "--fsize=50", "--"]
    t = time.time()
    if not can_raise_hard_limits():
        # The helper cannot lift the limit: it refuses before any prompt, for right and
        # wrong codes alike (no oracle, nothing to count), and changes nothing.
        before = {n: open(os.path.join(inst.state, n), "rb").read() for n in os.listdir(inst.state)}
        for answer in (oathtool(at=t), wrong(oathtool(at=t))):
            codes, out = harness(inst, "alice", [answer], prefix=limited)
            assert codes == [PAM_SYSTEM_ERR] and "PROMPT" not in out, out
        assert {n: open(os.path.join(inst.state, n), "rb").read() for n in os.listdir(inst.state)} == before
        assert temporaries(inst) == []
        return
    codes, out = harness(inst, "alice", [oathtool(at=t)], prefix=limited)
    assert codes == [PAM_SUCCESS], out
    codes, out = harness(inst, "alice", [wrong(oathtool(at=t + 30))] * 5, prefix=limited)
    assert codes == [PAM_AUTH_ERR] * 4 + [PAM_MAXTRIES], out
    assert status(inst, "alice")["locked"] is True
    assert [e["event"] for e in inst.audit_events()].count("lockout") == 1
    # Locked: even the right code is refused now.
    codes, out = harness(inst, "alice", [oathtool(at=t + 30)], prefix=limited)
    assert codes == [PAM_MAXTRIES], out
    assert temporaries(inst) == []


def service_spawning(inst, prefix, helper):
    """A service of `inst` whose module spawns `helper` (twostep-helper or twostep-verify)."""
    service = inst.service(prefix + os.path.basename(helper).replace("-", ""))
    with open(os.path.join(inst.pamdir, service)) as f:
        stack = f.read().replace(f"helper={HELPER}", f"helper={helper}")
    with open(os.path.join(inst.pamdir, service), "w") as f:
        f.write(stack)
    return service


@pytest.mark.parametrize("limit", ["--nofile=6", "--as=12713984", "--data=67108864", "--stack=524288", "--cpu=5"])
def test_a_limit_only_a_backup_code_would_hit_cannot_tell_one_without_spending_it(inst, limit):
    """A hard limit a root without CAP_SYS_RESOURCE cannot lift, set so low that only a
    backup code's path (the record re-sealed: a key file opened, a new record allocated)
    fails: a right backup code ended in a system error, unspent, where a wrong one was
    counted. The helper now refuses such a login before the prompt, right and wrong alike;
    where it can lift the limit, the right code passes and is spent."""
    inst.enroll("alice")
    codes = json.loads(inst.cli("admin", "backup-codes", "alice", "--json").stdout)["backup_codes"]
    limited = ["prlimit", limit, "--"]
    for helper in (HELPER, VERIFY):
        service = service_spawning(inst, "lim", helper)
        left = status(inst, "alice")["backup_codes_left"]
        if not can_raise_hard_limits():
            for answer in (codes[0], "zzzzz-zzzzz"):
                results, out = harness(inst, "alice", [answer], service=service, prefix=limited)
                assert results == [PAM_SYSTEM_ERR] and "PROMPT" not in out, (helper, out)
            assert status(inst, "alice")["backup_codes_left"] == left
            assert status(inst, "alice")["recent_failures"] == 0
            continue
        results, out = harness(inst, "alice", [codes.pop(0)], service=service, prefix=limited)
        assert results == [PAM_SUCCESS], (helper, out)
        assert status(inst, "alice")["backup_codes_left"] == left - 1


def helper_of(harness_proc, timeout=10):
    """The pid of the helper a waiting pam_harness spawned (its one child)."""
    deadline = time.monotonic() + timeout
    while True:
        with open(f"/proc/{harness_proc.pid}/task/{harness_proc.pid}/children") as f:
            kids = f.read().split()
        if kids:
            return int(kids[0])
        assert time.monotonic() < deadline, "no helper"
        time.sleep(0.01)


def test_the_helper_drops_the_callers_scheduling(inst):
    """`chrt -i 0`, `ionice -c3`, `taskset` and a long timer slack on sudo passed to the
    root helper that holds the user's lock: a caller who loads the CPU or the disk starved
    it past the module's timeout. Looked at while the login waits at its prompt."""
    inst.enroll("alice")
    libc = ctypes.CDLL(None, use_errno=True)
    slack = 40_000_000

    def hostile():
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        libc.prctl(29, ctypes.c_ulong(slack), 0, 0, 0)                  # PR_SET_TIMERSLACK
        libc.syscall(251, 1, 0, 3 << 13)                                # ioprio_set: idle class

    for helper in (HELPER, VERIFY):
        service = service_spawning(inst, "sched", helper)
        with login_at_prompt(inst.pamdir, service, "alice", preexec_fn=hostile) as proc:
            pid = helper_of(proc)
            # The host kept what its caller set (the test would prove nothing otherwise)...
            assert os.sched_getscheduler(proc.pid) == os.SCHED_IDLE
            assert libc.syscall(252, 1, proc.pid) >> 13 == 3
            # ...and its helper did not.
            assert os.sched_getscheduler(pid) == os.SCHED_OTHER, helper
            assert os.sched_getaffinity(pid) == os.sched_getaffinity(0), helper
            assert libc.syscall(252, 1, pid) >> 13 != 3, helper
            with open(f"/proc/{pid}/timerslack_ns") as f:
                assert int(f.read()) == 50_000, helper
            out, err = proc.communicate(oathtool() + "\n", timeout=30)
            assert "RESULT: Success (0)" in out, out + err
        # A fresh enrolment: the next helper's login may use the same time step's code.
        inst.cli("admin", "reset", "alice")
        inst.enroll("alice")


def test_stale_temporary_files_are_removed(inst):
    inst.enroll("alice")
    inst.service()
    # What a writer killed between creating its temporary file and renaming it leaves.
    stale = os.path.join(inst.state, ".alice.state.tmp")
    with open(stale, "w") as f:
        f.write("v=1\n")
    os.chmod(stale, 0o600)
    codes, out = harness(inst, "alice", [oathtool()])
    assert codes == [PAM_SUCCESS], out
    assert temporaries(inst) == []


def proc_ids(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Uid", "Gid", "Groups"):
                fields[k] = v.split()
    return fields


@pytest.fixture
def test_user():
    name = f"tshd{secrets.token_hex(3)}"
    subprocess.run(["useradd", "-M", "-s", "/bin/sh", "-G", "users", name], check=True)
    subprocess.run(["chpasswd"], input=f"{name}:{PASSWORD}\n", text=True, check=True)
    try:
        yield name
    finally:
        subprocess.run(["userdel", "-f", name], capture_output=True)


def test_helper_runs_with_root_ids_under_a_setuid_like_caller(inst, test_user):
    """A setuid host (sudo) keeps the caller's real uid; a helper with that real uid can be
    stopped or killed by the caller between the answer and the write. The test holds the
    user's lock, so the real helper waits (answer in hand) while its ids are read."""
    import fcntl
    uid = int(subprocess.run(["id", "-u", test_user], capture_output=True, text=True).stdout)
    inst.enroll("alice")
    inst.service()
    lock = open(os.path.join(inst.state, "alice.lock"), "a")
    fcntl.flock(lock, fcntl.LOCK_EX)
    p = subprocess.Popen([HARNESS, "--confdir", inst.pamdir, "--service", "tstest", "--user", "alice",
                          "--answers", "-", "--caller-uid", str(uid)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        p.stdin.write(oathtool() + "\n")
        p.stdin.close()
        deadline = time.time() + 20
        children = []
        while time.time() < deadline and not children:
            time.sleep(0.1)
            children = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
        assert len(children) == 1, children
        time.sleep(0.5)   # it has the answer and waits for the lock
        host = proc_ids(p.pid)
        assert host["Uid"] == [str(uid), "0", "0", "0"], host  # the caller as sudo leaves it
        helper = proc_ids(children[0])
        assert helper["Uid"] == ["0"] * 4 and helper["Gid"] == ["0"] * 4 and helper["Groups"] == [], helper
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()
        try:
            p.wait(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
    out = p.stdout.read()
    assert "RESULT: Success (0)" in out, out + p.stderr.read()


# --- 3. syslog lines cannot be forged ------------------------------------------------------

SYSLOG_CATCHER = r"""
import os, socket, subprocess, sys, json
# Private mount namespace (unshare -m): a tmpfs over /dev with the few device nodes the
# programs need, and our own /dev/log.
old = sys.argv[1]
subprocess.run(["mount", "--rbind", "/dev", old], check=True)
subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/dev"], check=True)
for n in ("null", "zero", "urandom", "random"):
    open("/dev/" + n, "w").close()
    subprocess.run(["mount", "--bind", os.path.join(old, n), "/dev/" + n], check=True)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
r = subprocess.run(json.loads(sys.argv[2]), input=sys.argv[3], capture_output=True, text=True)
s.settimeout(0.5)
lines = []
try:
    while True:
        lines.append(s.recv(65536).decode(errors="replace"))
except socket.timeout:
    pass
print(json.dumps({"rc": r.returncode, "out": r.stdout, "lines": lines}))
"""


def test_syslog_fields_cannot_be_forged(inst, tmp_path):
    inst.service()
    user = 'mallory result=success user="root"\nFake line event=verify result=success'
    old = tmp_path / "olddev"
    old.mkdir()
    cmd = [HARNESS, "--confdir", inst.pamdir, "--service", "tstest", "--user", user, "--answers", "-",
           "--rhost", "h result=success\nx"]
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "/usr/bin/python3", "-c", SYSLOG_CATCHER,
                        str(old), json.dumps(cmd), "123456\n"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert "RESULT: Authentication failure (7)" in got["out"], got
    # (an unsynchronised clock adds its own clock_unsynchronised event: not this login's)
    verify = [l for l in got["lines"] if "event=" in l and 'event="clock_unsynchronised"' not in l]
    assert len(verify) == 1, got["lines"]
    line = verify[0]
    assert "\n" not in line
    # The message is exactly key="escaped value" pairs: nothing forged in between.
    message = line.split(": ", 1)[1]
    pairs = re.findall(r'(\w+)=("(?:[^"\\]|\\.)*")', message)
    assert " ".join(f"{k}={v}" for k, v in pairs) == message, message
    fields = {k: json.loads(v) for k, v in pairs}
    assert [k for k, _ in pairs] == ["event", "user", "service", "result", "rhost", "detail"], pairs
    assert fields["user"] == user and fields["rhost"] == "h result=success\nx" and fields["result"] == "failure"


def test_names_that_would_act_on_a_terminal_reach_no_admin_terminal(inst):
    """A login logs the name it was given. 8-bit controls (CSI, OSC), escape sequences and
    bidirectional overrides in it are escaped in the audit log and replaced in what
    `admin audit` and `admin report` print; a name of 20,000 control characters still makes
    an audit line `admin audit` reads (fields are cut to a bounded length)."""
    inst.service()
    csi = "tsx\u009b2J\u009d0;PWNED\u009c\u202eevil\x1b[31m"
    huge = "\x01" * 20000
    for user in (csi, huge):
        r = subprocess.run([HARNESS, "--confdir", inst.pamdir, "--service", "tstest", "--user", user,
                            "--answers", "-"], input=b"123456\n", capture_output=True, timeout=60)
        assert b"RESULT: " in r.stdout and b"RESULT: Success" not in r.stdout, r.stdout + r.stderr
    raw = open(inst.audit, "rb").read()
    assert b"\xc2\x9b" not in raw and b"\xe2\x80\xae" not in raw and b"\x1b" not in raw
    assert max(len(l) for l in raw.splitlines()) < 64 * 1024
    names = [e["user"] for e in inst.audit_events() if e["event"] == "verify"]
    assert csi in names, names
    assert any(n.startswith("\x01" * 100) and "cut from 20000 bytes" in n for n in names), [n[:40] for n in names]
    for args in (("admin", "audit", "--since", "1h"), ("admin", "report")):
        out = inst.cli(*args).stdout + inst.cli(*args).stderr
        assert "could not be read" not in out, out
        assert not any(0x80 <= ord(c) <= 0x9f or c in "\x1b\u202e" for c in out), repr(out)
    assert "tsx?2J?0;PWNED??evil?[31m" in inst.cli("admin", "report").stdout


def test_an_audit_log_that_is_not_roots_own_file_is_not_written(inst, test_user):
    """`audit_log` is appended to only when it is a regular file of ours that nobody else
    may write: not a file a user made (they could read, edit or empty it), not a FIFO
    (which would hang every login). Syslog keeps every event either way."""
    for u in ("tsaud1", "tsaud2", "tsaud3"):
        inst.enroll(u)
    inst.service()
    os.unlink(inst.audit) if os.path.exists(inst.audit) else None
    with open(inst.audit, "w"):
        pass
    os.chown(inst.audit, pwd.getpwnam(test_user).pw_uid, -1)
    assert inst.login("tsaud1", oathtool()).returncode == 0
    assert os.path.getsize(inst.audit) == 0
    os.unlink(inst.audit)
    os.mkfifo(inst.audit, 0o600)
    t0 = time.monotonic()
    assert inst.login("tsaud2", oathtool()).returncode == 0
    assert time.monotonic() - t0 < 10
    os.unlink(inst.audit)
    assert inst.login("tsaud3", oathtool()).returncode == 0
    assert [e["result"] for e in inst.audit_events() if e["event"] == "verify"] == ["success"]


def test_a_store_whose_parent_others_may_write_is_refused(inst):
    """Whoever may rename entries of state_dir's parent could swap the directory for one
    of their own between two logins (an empty one: everyone "not enrolled"). Such a store
    is refused, as sshd's StrictModes refuses such a home; a sticky parent (/tmp) is fine."""
    inst.enroll("tspar1")
    inst.enroll("tspar2")
    inst.service()
    os.chmod(inst.root, 0o777)
    r = inst.login("tspar1", oathtool())
    assert r.returncode != 0
    doctor = json.loads(inst.cli("doctor", "--json", check=False).stdout)
    line = [c for c in doctor["checks"] if c["check"] == "state directory"][0]
    assert line["result"] == "fail" and f"its parent {inst.root}" in line["detail"], line
    assert "refusing unsafe" in inst.cli("admin", "list", check=False).stderr
    os.chmod(inst.root, 0o1777)
    assert inst.login("tspar1", oathtool()).returncode == 0
    os.chmod(inst.root, 0o700)
    assert inst.login("tspar2", oathtool()).returncode == 0


def test_require_naming_no_group_is_a_doctor_failure(inst):
    """`require = GROUPS` with a group nobody has (a misspelling) lets every user who is not
    enrolled in without a code: doctor says so; `all` cannot be mixed with groups."""
    inst.write_config(require="all,wheel")
    r = inst.cli("admin", "list", check=False)
    assert r.returncode != 0 and "`all` stands alone" in r.stderr, r.stderr
    inst.write_config(require="root,tsnosuchgroup")
    doctor = json.loads(inst.cli("doctor", "--json", check=False).stdout)
    line = [c for c in doctor["checks"] if c["check"] == "required groups"][0]
    assert line["result"] == "fail" and "tsnosuchgroup" in line["detail"] and "root" not in line["detail"].split(":")[1], line
    inst.write_config(require="root")
    doctor = json.loads(inst.cli("doctor", "--json", check=False).stdout)
    assert [c["result"] for c in doctor["checks"] if c["check"] == "required groups"] == ["ok"]


def test_doctor_names_enrolments_whose_account_is_gone(inst):
    """An enrolment belongs to a name: when its account is deleted, the next account given
    that name would meet it (the old owner's codes asked for, the old owner's phone a
    second factor). doctor warns about such enrolments, by name, until they are reset."""
    name = "tsorph" + uuid.uuid4().hex[:6]
    subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", name], check=True)
    try:
        inst.enroll(name)
        doctor = json.loads(inst.cli("doctor", "--json", check=False).stdout)
        line = [c for c in doctor["checks"] if c["check"] == "enrolments"][0]
        assert line["result"] == "ok", line
    finally:
        subprocess.run(["userdel", name], check=True)
    doctor = json.loads(inst.cli("doctor", "--json", check=False).stdout)
    line = [c for c in doctor["checks"] if c["check"] == "enrolments"][0]
    assert line["result"] == "warn" and f'"{name}"' in line["detail"] and "admin reset" in line["detail"], line
    inst.cli("admin", "reset", name, "--reason", "account deleted")
    doctor = json.loads(inst.cli("doctor", "--json", check=False).stdout)
    assert [c["result"] for c in doctor["checks"] if c["check"] == "enrolments"] == ["ok"], doctor


# --- 4. serve makes the socket directory usable ---------------------------------------------

def test_serve_creates_a_missing_socket_directory_0755(inst):
    sock = os.path.join(inst.root, "newdir", "helper.sock")
    p = subprocess.Popen([HELPER, "serve", "--config", inst.conf, "--socket", sock],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait_for_socket(sock, p)
        assert os.stat(os.path.dirname(sock)).st_mode & 0o7777 == 0o755
    finally:
        os.killpg(p.pid, 15)
        p.wait(timeout=10)


# --- 5 and 7. directory users; names NSS does not know ------------------------------------

@pytest.fixture
def directory_user():
    name = f"tsdir{secrets.token_hex(3)}@corp.example.com"
    subprocess.run(["useradd", "--badname", "-M", "-s", "/bin/sh", name], check=True, capture_output=True)
    try:
        yield name
    finally:
        subprocess.run(["userdel", "-f", name], capture_output=True)


def test_directory_user_enrols_and_logs_in(inst, directory_user):
    inst.enroll(directory_user)
    inst.service()
    assert f"%{directory_user.replace('@', '%40')}.record" in os.listdir(inst.state)
    t = time.time()
    codes, out = harness(inst, directory_user, [oathtool(at=t)])
    assert codes == [PAM_SUCCESS], out
    codes, out = harness(inst, directory_user, [oathtool(at=t)])
    assert codes == [PAM_AUTH_ERR], out  # replayed
    listed = [u["user"] for u in json.loads(inst.cli("admin", "list", "--json").stdout)["users"]]
    assert listed == [directory_user]
    # Not enrolled and nullok: a directory user passes through (PAM_IGNORE), not refused.
    inst.cli("admin", "reset", directory_user)
    inst.service("withnullok", args="nullok", after=PERMIT_AFTER)
    codes, out = harness(inst, directory_user, ["x"], service="withnullok")
    assert codes == [PAM_SUCCESS] and "PROMPT" not in out, out


def test_unknown_names_get_the_wrong_code_answer_and_no_record(inst):
    """enroll = prompt with require = all used to start the wizard (and write a record)
    for any name at all; a name NSS does not know now looks exactly like a wrong code."""
    inst.write_config(enroll="prompt", require="all")
    inst.enroll("alice")
    inst.service()
    nobody = f"nosuch{secrets.token_hex(3)}"
    codes, unknown = harness(inst, nobody, ["123456"])
    assert codes == [PAM_AUTH_ERR], unknown
    codes, known = harness(inst, "alice", [wrong(oathtool())])
    assert codes == [PAM_AUTH_ERR], known
    assert unknown.splitlines()[0] == known.splitlines()[0]  # the same prompt
    assert [n for n in os.listdir(inst.state) if n.startswith(nobody) or nobody in n] == []
    # nullok does not let such a name through while `require = all` asks everyone: it gets
    # the prompt and the failure. (A name NSS could not answer for, a directory down, gets
    # the same under `require = GROUPS`, its groups unknown.)
    inst.service("withnullok", args="nullok", after=PERMIT_AFTER)
    inst.write_config(enroll="prompt", require="all")
    codes, out = harness(inst, nobody, ["123456"], service="withnullok")
    assert codes == [PAM_AUTH_ERR] and out.splitlines()[0] == known.splitlines()[0], out
    # Under `require = GROUPS` a name NSS answered has no account is in no group, and without
    # `require` nullok decides: let through either way, no prompt, as an account outside
    # the groups is (no telling the two apart).
    for conf in ({"require": "root"}, {}):
        inst.write_config(**conf)
        for user in (nobody, "daemon"):
            codes, out = harness(inst, user, ["x"], service="withnullok")
            assert codes == [PAM_SUCCESS] and "PROMPT" not in out, (conf, user, out)


def test_a_user_name_that_is_not_utf8_is_refused_by_module_and_cli(inst):
    """Bytes that are not UTF-8 were replaced with U+FFFD when read: `x\\xe9` and `x\\xe8`,
    two accounts to NSS, became one name, whose enrolment both could use; with nullok and
    `require = all`, a not-enrolled such account passed without a code. The module now
    answers PAM_USER_UNKNOWN for such a name, nullok or not, before any helper runs, and
    the CLI refuses such an argument."""
    tag = secrets.token_hex(3).encode()
    first, second = b"tsu\xe9" + tag, b"tsu\xe8" + tag
    for name in (first, second):
        subprocess.run([b"useradd", b"--badname", b"-M", b"-s", b"/usr/sbin/nologin", name], check=True)
    try:
        r = subprocess.run([CLI.encode(), b"admin", b"import", first, b"--secret", b"-", b"--config", inst.conf.encode()],
                           input=(SECRET + "\n").encode(), capture_output=True, timeout=60)
        assert r.returncode == 64 and b"not valid UTF-8" in r.stderr, r.stdout + r.stderr
        assert json.loads(inst.cli("admin", "list", "--json").stdout)["users"] == []
        inst.write_config(require="all")
        inst.service("withnullok", args="nullok", after=PERMIT_AFTER)
        inst.service()
        for service in ("tstest", "withnullok"):
            r = subprocess.run([HARNESS.encode(), b"--confdir", inst.pamdir.encode(), b"--service", service.encode(),
                                b"--user", second, b"--answers", b"-"], input=oathtool().encode() + b"\n",
                               capture_output=True, timeout=60)
            assert b"RESULT: User not known to the underlying authentication module (10)" in r.stdout, r.stdout + r.stderr
            assert b"PROMPT" not in r.stdout, r.stdout
    finally:
        for name in (first, second):
            subprocess.run([b"userdel", name], capture_output=True)


# --- 6. qr needs the authenticator ----------------------------------------------------------

def test_qr_refuses_a_backup_code(host):
    host.serve("serve")
    alice = host.user()
    host.inst.enroll(alice)
    backup = json.loads(host.inst.cli("admin", "backup-codes", alice, "--json").stdout)["backup_codes"]
    r = host.as_user(alice, "qr", "--json", input=PASSWORD + "\n" + backup[0] + "\n")
    assert r.returncode != 0 and "otpauth" not in r.stdout, r.stdout + r.stderr
    assert "authenticator app" in r.stderr
    host.inst.cli("admin", "unlock", alice)
    # The backup code was not spent, and still serves the lost-phone path.
    r = host.as_user(alice, "backup-codes", "--json", input=PASSWORD + "\n" + backup[0] + "\n")
    assert r.returncode == 0, r.stderr
    r = host.as_user(alice, "qr", "--json", input=PASSWORD + "\n" + oathtool() + "\n")
    assert r.returncode == 0 and json.loads(r.stdout)["otpauth_uri"].startswith("otpauth://"), r.stderr


# --- 8. a restored old record ----------------------------------------------------------------

def test_restored_old_record_is_refused(inst):
    inst.enroll("alice")
    inst.service()
    backup = json.loads(inst.cli("admin", "backup-codes", "alice", "--json").stdout)["backup_codes"]
    record = os.path.join(inst.state, "alice.record")
    saved = open(record, "rb").read()
    codes, out = harness(inst, "alice", [backup[0]])
    assert codes == [PAM_SUCCESS], out
    with open(record, "wb") as f:
        f.write(saved)
    codes, out = harness(inst, "alice", [backup[0]])
    assert codes == [PAM_AUTHINFO_UNAVAIL], out
    assert any(e["result"] == "error" and "older than its state" in e.get("detail", "")
               for e in inst.audit_events()), inst.audit_events()


def test_records_written_before_generations_still_open(inst):
    """A record sealed by the code before this change (tests/fixtures/v1-store) opens,
    takes a code and a backup code, and is rewritten with a generation."""
    for sub in ("state", "keys"):
        shutil.rmtree(os.path.join(inst.root, sub))
        shutil.copytree(os.path.join(FIXTURE_STORE, sub), os.path.join(inst.root, sub))
        os.chmod(os.path.join(inst.root, sub), 0o700)
        # git keeps no modes but the x bit: a fresh clone has these 0644, which the store
        # rightly refuses. Give them the modes the store wrote them with.
        for name in os.listdir(os.path.join(inst.root, sub)):
            os.chmod(os.path.join(inst.root, sub, name), 0o400 if sub == "keys" else 0o600)
    inst.service()
    backup = open(os.path.join(FIXTURE_STORE, "README")).read().split()[-1]
    record = os.path.join(inst.state, "fixtureuser.record")
    assert open(record, "rb").read()[3] == 1
    codes, out = harness(inst, "fixtureuser", [oathtool(), backup])
    assert codes == [PAM_SUCCESS, PAM_SUCCESS], out
    assert open(record, "rb").read()[3] == 2
    assert b"record_generation=1" in open(os.path.join(inst.state, "fixtureuser.state"), "rb").read()


# --- 2. one local user cannot starve the server ---------------------------------------------

def test_hundreds_of_idle_connections_do_not_starve_others(host):
    host.serve("serve")
    mallory, bob = host.user(), host.user()
    host.inst.enroll("alice")
    host.inst.service("viasocket", args=f"socket={host.sock}")
    hold = f"""
import socket, sys
held = []
for i in range(300):
    s = socket.socket(socket.AF_UNIX); s.setblocking(False)
    try:
        s.connect({host.sock!r})
    except (BlockingIOError, InterruptedError):
        pass
    held.append(s)
print("holding", len(held), flush=True)
sys.stdin.readline()
"""
    holder = subprocess.Popen(["runuser", "-u", mallory, "--", "/usr/bin/python3", "-c", hold],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().startswith("holding 300")
        time.sleep(0.5)
        start = time.monotonic()
        r = host.as_user(bob, "status", "--json")
        took = time.monotonic() - start
        assert r.returncode == 0 and json.loads(r.stdout)["enrolled"] is False, r.stderr
        assert took < 1.0, f"status took {took:.2f} s"
        start = time.monotonic()
        codes, out = harness(host.inst, "alice", [oathtool()], service="viasocket")
        took = time.monotonic() - start
        assert codes == [PAM_SUCCESS], out
        assert took < 1.0, f"login took {took:.2f} s"
    finally:
        holder.communicate("\n", timeout=30)


# --- fault injection: a full or read-only state directory ------------------------------------

def test_full_or_read_only_state_dir_fails_closed_and_recovers(inst):
    inst.enroll("alice")
    inst.service()
    codes_json = inst.cli("admin", "backup-codes", "alice", "--json").stdout
    backup = json.loads(codes_json)["backup_codes"][0]
    files = {n: open(os.path.join(inst.state, n), "rb").read() for n in os.listdir(inst.state)}
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", inst.state], check=True)
    try:
        for n, b in files.items():
            with open(os.path.join(inst.state, n), "wb") as f:
                f.write(b)
            os.chmod(os.path.join(inst.state, n), 0o600)
        filler = os.path.join(inst.state, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"\0" * 4096) > 0:
                pass
        except OSError:
            pass
        os.close(fd)
        t = time.time()
        # Full: the state is written in place (its blocks exist), so a code still logs in...
        codes, out = harness(inst, "alice", [oathtool(at=t)])
        assert codes == [PAM_SUCCESS], out
        # ...but a backup code, which rewrites the sealed record (a new file), fails closed
        # and leaves the record as it was.
        codes, out = harness(inst, "alice", [backup])
        assert codes == [PAM_AUTHINFO_UNAVAIL], out
        assert "unavailable" in out
        assert "No space left on device" in inst.audit_events()[-1]["detail"], inst.audit_events()[-1]
        assert open(os.path.join(inst.state, "alice.record"), "rb").read() == files["alice.record"]
        os.unlink(filler)
        state = open(os.path.join(inst.state, "alice.state"), "rb").read()
        subprocess.run(["mount", "-o", "remount,ro", inst.state], check=True)
        codes, out = harness(inst, "alice", [oathtool(at=t + 30)])
        assert codes == [PAM_AUTHINFO_UNAVAIL], out
        assert "Read-only file system" in inst.audit_events()[-1]["detail"], inst.audit_events()[-1]
        assert open(os.path.join(inst.state, "alice.state"), "rb").read() == state
        subprocess.run(["mount", "-o", "remount,rw", inst.state], check=True)
        codes, out = harness(inst, "alice", [oathtool(at=t + 30), backup])
        assert codes == [PAM_SUCCESS, PAM_SUCCESS], out
        assert temporaries(inst) == []
    finally:
        subprocess.run(["umount", "-l", inst.state])


@pytest.mark.parametrize("kind", ["directory", "symlink", "fifo", "foreign"])
def test_admin_unlock_replaces_a_damaged_lock_file_and_the_user_logs_in_again(inst, kind):
    inst.enroll("alice")
    inst.enroll("bob")
    inst.service()
    lock = os.path.join(inst.state, "alice.lock")
    if os.path.exists(lock):
        os.remove(lock)
    if kind == "directory":
        os.mkdir(lock)
    elif kind == "symlink":
        os.symlink("/etc/passwd", lock)
    elif kind == "fifo":
        os.mkfifo(lock)
    else:
        with open(lock, "w"):
            pass
        os.chown(lock, 65534, 65534)
    # Only that user is refused, and fails closed, in the runbook's words whatever is there.
    codes, out = harness(inst, "alice", [oathtool()])
    assert codes == [PAM_AUTHINFO_UNAVAIL], out
    details = [e.get("detail") or "" for e in inst.audit_events() if e["user"] == "alice"]
    assert any("lock file is not a regular file of ours" in d for d in details), details
    codes, out = harness(inst, "bob", [oathtool()])
    assert codes == [PAM_SUCCESS], out
    r = inst.cli("admin", "unlock", "alice")
    assert "lock file" in r.stdout and "removed" in r.stdout, r.stdout + r.stderr
    st = os.lstat(lock) if os.path.lexists(lock) else None
    assert st is None or (stat.S_ISREG(st.st_mode) and st.st_uid == 0)
    assert os.path.exists("/etc/passwd")   # a symlink's target is never touched
    codes, out = harness(inst, "alice", [oathtool(at=time.time() + 30)])
    assert codes == [PAM_SUCCESS], out


def test_a_login_left_at_its_prompt_across_a_reset_and_re_enrolment_does_not_break_the_new_record(inst):
    """A reviewer left a login at its prompt while the admin reset the user and imported
    a new secret, then answered: the login wrote the old record's generation (9) into the
    new state (1), and from then on every login, right code or not, was refused as 'older
    than its state': only another reset helped."""
    other = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    inst.enroll("alice")
    inst.service()
    for i in range(3):   # a few record writes: the old record's generation climbs above 1
        inst.cli("admin", "backup-codes", "alice")
    with login_at_prompt(inst.pamdir, "tstest", "alice") as proc:
        inst.cli("admin", "reset", "alice")
        inst.cli("admin", "import", "alice", "--secret", "-", input=other + "\n")
        out, err = proc.communicate(wrong(oathtool(other)) + "\n", timeout=30)
        assert "RESULT: Authentication failure (7)" in out, out + err
    codes, out = harness(inst, "alice", [oathtool(other)])
    assert codes == [PAM_SUCCESS], out
