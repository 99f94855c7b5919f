# SPDX-License-Identifier: Apache-2.0
"""`twostep doctor` on good and broken installations, the hourly clock_unsynchronised audit
event, and forward_pass (password and code in one prompt) before pam_unix.so use_first_pass
with a real user and password.

The clock is the real one (adjtimex): what doctor and the helper must say is read here
from the same kernel call, so the tests hold on a synchronised host and on one that is not.
Run: flock /tmp/twostep-systest.lock /usr/bin/python3 -m pytest -q tests/test_doctor_trust.py
"""
import ctypes
import json
import re
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time

import pytest

from conftest import (FAKES, HELPER, MODULE, PAM_AUTH_ERR, PAM_SUCCESS, SECRET, VERIFY, harness_login,
                      oathtool, wait_for_socket, wrong)

STA_UNSYNC = 0x40
TIME_ERROR = 5


def kernel_clock():
    """(unsynchronised, maxerror in seconds) from adjtimex(2), read only."""
    buf = ctypes.create_string_buffer(512)  # struct timex, zeroed: modes 0
    state = ctypes.CDLL(None, use_errno=True).adjtimex(buf)
    assert state != -1
    maxerror = int.from_bytes(buf.raw[24:32], "little", signed=True)
    status = int.from_bytes(buf.raw[40:44], "little", signed=True)
    return bool(status & STA_UNSYNC) or state == TIME_ERROR, maxerror / 1e6


def expected_clock_level():
    unsync, maxerror = kernel_clock()
    return "fail" if maxerror > 30 else ("warn" if unsync else "ok")


GOOD_SSHD = "UsePAM yes\nKbdInteractiveAuthentication yes\nAuthenticationMethods publickey,keyboard-interactive\n"


def doctor(inst, helper=HELPER, sshd=None, login_socket=None):
    sshd_config = os.path.join(inst.root, "sshd_config")
    with open(sshd_config, "w") as f:
        f.write(GOOD_SSHD if sshd is None else sshd)
    login_socket = login_socket or getattr(inst, "login_socket", os.path.join(inst.root, "no-listener.sock"))
    r = subprocess.run([HELPER.replace("twostep-helper", "twostep"), "doctor", "--json", "--config", inst.conf,
                        "--helper", helper, "--login-socket", login_socket, "--pam-dir", inst.pamdir,
                        "--sshd-config", sshd_config],
                       capture_output=True, text=True, timeout=60)
    report = json.loads(r.stdout)
    return r.returncode, {(c["check"], c["result"]) for c in report["checks"]}, report


@pytest.fixture
def good(inst):
    inst.service("tsdoctor")
    with open(os.path.join(inst.pamdir, "twostep"), "w") as f:
        f.write("auth required pam_unix.so\n")
    inst.enroll("alice")
    # A running helper on the login socket, as twostep-helperd.socket provides.
    inst.login_socket = os.path.join(inst.root, "verify.sock")
    server = subprocess.Popen([HELPER, "serve", "--config", inst.conf, "--socket", inst.login_socket],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait_for_socket(inst.login_socket, server)
        yield inst
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)


def test_doctor_on_a_good_install(good):
    rc, lines, report = doctor(good)
    level = expected_clock_level()
    assert ("clock", level) in lines, report
    # alice is enrolled but no account here: the one warning (tests/test_hardening.py
    # checks it against a real account that is deleted).
    enrolments = [c for c in report["checks"] if c["check"] == "enrolments"]
    assert len(enrolments) == 1 and enrolments[0]["result"] == "warn" and '"alice"' in enrolments[0]["detail"], report
    others = [c for c in report["checks"] if c["check"] not in ("clock", "time service", "enrolments")]
    assert others and all(c["result"] == "ok" for c in others), report
    names = {c["check"] for c in others}
    assert {"config", "key directory", "state directory", "master key", "helper", "login socket", "pam", "sshd"} <= names
    assert any("opens alice's record" in c["detail"] for c in others), report
    assert any("tsdoctor" in c["detail"] for c in others if c["check"] == "pam"), report
    assert rc == (1 if level == "fail" else 0), report


def test_doctor_checks_the_stack_password_service_names(good):
    # Another service confirms self-service passwords: its file is what must exist.
    good.write_config(password_service="common-auth")
    rc, lines, report = doctor(good)
    pam = [c["detail"] for c in report["checks"] if c["check"] == "pam" and c["result"] == "warn"]
    assert pam == [f"{good.pamdir}/common-auth (password_service) is missing: self-service commands cannot confirm passwords"], report
    with open(os.path.join(good.pamdir, "common-auth"), "w") as f:
        f.write("auth required pam_unix.so\n")
    os.remove(os.path.join(good.pamdir, "twostep"))
    rc, lines, report = doctor(good)
    assert not [c for c in report["checks"] if c["check"] == "pam" and c["result"] != "ok"], report


def test_doctor_warns_when_lockout_max_is_shorter_than_lockout(good):
    # Loaded all the same (the longer holds: a typo never shortens a lockout), and said.
    good.write_config(lockout="1h", lockout_max="5m")
    rc, lines, report = doctor(good)
    warned = [c["detail"] for c in report["checks"] if c["check"] == "config" and c["result"] == "warn"]
    assert warned and "is longer than lockout_max" in warned[0], report


def test_doctor_warns_that_enroll_prompt_needs_require(good):
    good.write_config(enroll="prompt")
    rc, lines, report = doctor(good)
    assert ("enrolment", "warn") in lines, report
    good.write_config(enroll="prompt", require="all")
    rc, lines, report = doctor(good)
    assert "enrolment" not in {c for c, _ in lines}, report


@pytest.mark.parametrize("line, why", [
    # A typo in an argument: the module refuses every login (PAM_SERVICE_ERR).
    ("auth required {module} helpr=/x config={conf}", 'unknown module argument "helpr=/x"'),
    ("auth required {module} timeout=0 config={conf}", "must be a number of seconds"),
    ("auth required /nonexistent/pam_twostep.so config={conf}", "/nonexistent/pam_twostep.so does not exist"),
    ("auth required {module} helper=/nonexistent/helper config={conf} socket=none", "helper /nonexistent/helper cannot be run"),
    ("auth required {module} helper={helper} config=/nonexistent.conf", "config /nonexistent.conf cannot be read"),
])
def test_doctor_fails_a_stack_line_that_refuses_every_login(good, line, why):
    with open(os.path.join(good.pamdir, "tsbroken"), "w") as f:
        f.write(line.format(module=MODULE, helper=HELPER, conf=good.conf) + "\naccount required pam_permit.so\n")
    rc, lines, report = doctor(good)
    failed = [c["detail"] for c in report["checks"] if c["check"] == "pam" and c["result"] == "fail"]
    assert rc == 1 and len(failed) == 1 and "tsbroken" in failed[0] and why in failed[0], report
    # `twostep try` agrees: that stack lets nobody in.
    r = good.login("alice", oathtool(), service="tsbroken")
    assert r.returncode != 0, r.stdout + r.stderr


def test_a_lost_key_dir_is_not_replaced_by_init_and_doctor_says_how_to_restore_it(good):
    shutil.copytree(good.keys, good.keys + ".bak")
    shutil.rmtree(good.keys)
    rc, lines, report = doctor(good)
    keydir = [c["detail"] for c in report["checks"] if c["check"] == "key directory"]
    assert rc == 1 and "import-key" in keydir[0], report
    # alice's record names a key key_dir no longer has: init makes no new key over it.
    r = good.cli("admin", "init", check=False)
    assert r.returncode == 1 and "sealed under key(s)" in r.stderr and "import-key" in r.stderr, r.stdout + r.stderr
    assert os.listdir(good.keys) == []
    # An emptied key_dir: the master key check says to restore it, not only to run init.
    rc, lines, report = doctor(good)
    master = [c["detail"] for c in report["checks"] if c["check"] == "master key"]
    assert rc == 1 and "restore key_dir" in master[0] and not master[0].startswith("master key"), report
    shutil.rmtree(good.keys)
    shutil.copytree(good.keys + ".bak", good.keys)
    r = good.login("alice", oathtool(), service="tsdoctor")
    assert r.returncode == 0, r.stdout + r.stderr
    # --force makes one all the same (alice must then enrol again).
    shutil.rmtree(good.keys)
    assert "created master key" in good.cli("admin", "init", "--force").stdout


def test_doctor_reads_stack_lines_as_libpam_does(good):
    # A comment after the arguments is no argument; `-auth` tolerates a missing module; a
    # line that names the module only in its comment does not use it.
    with open(os.path.join(good.pamdir, "tscomment"), "w") as f:
        f.write(f"auth required {MODULE} helper={HELPER} config={good.conf} # two-step\n"
                "-auth optional /nonexistent/pam_twostep.so\n"
                "auth required pam_permit.so # pam_twostep.so helpr=/x\n")
    rc, lines, report = doctor(good)
    pam = [c for c in report["checks"] if c["check"] == "pam"]
    assert all(c["result"] == "ok" for c in pam), report
    assert not any("pam_permit" in c["detail"] for c in pam), report


def test_doctor_fails_a_damaged_key_that_is_not_the_active_one(good):
    prepared = good.cli("admin", "rotate-key", "--prepare").stdout
    key_id = re.search(r"\b([0-9a-f]{16})\b", prepared).group(1)
    path = os.path.join(good.keys, key_id + ".key")
    os.chmod(path, 0o600)
    with open(path, "r+b") as f:
        f.truncate(10)
    os.chmod(path, 0o400)
    rc, lines, report = doctor(good)
    bad = [c["detail"] for c in report["checks"] if c["check"] == "key files"]
    assert rc == 1 and ("key files", "fail") in lines and key_id in bad[0], report
    # `admin rotate-key --status` (what an operator runs before `--use ID`) says so too.
    out = good.cli("admin", "rotate-key", "--status").stdout
    assert re.search(r"key %s \(key file damaged: .*32 bytes.*\): 0 record" % key_id, out), out
    status = json.loads(good.cli("admin", "rotate-key", "--status", "--json").stdout)
    problems = {k["id"]: k["key_file_problem"] for k in status["keys"]}
    assert "32 bytes" in problems[key_id] and all(p is None for i, p in problems.items() if i != key_id), status


def test_status_names_a_damaged_active_key_and_a_hidden_key_file_is_no_key(good):
    """A key file an admin set aside as `.<id>.key` is no key (doctor and --status ignore
    it); a damaged active key is named by `rotate-key --status`, which reads the active id
    without loading the key."""
    active = open(os.path.join(good.keys, "active")).read().strip()
    path = os.path.join(good.keys, active + ".key")
    shutil.copy(path, os.path.join(good.keys, "." + active + ".key"))
    assert ("key files", "ok") in doctor(good)[1]
    assert good.cli("admin", "rotate-key", "--status").stdout.count("key ") == 1
    os.chmod(path, 0o600)
    with open(path, "r+b") as f:
        f.truncate(31)
    os.chmod(path, 0o400)
    out = good.cli("admin", "rotate-key", "--status").stdout
    assert re.search(r"key %s \(active\) \(key file damaged: .*32 bytes.*\): 1 record" % active, out), out
    keys = json.loads(good.cli("admin", "rotate-key", "--status", "--json").stdout)["keys"]
    assert [k["id"] for k in keys] == [active] and "32 bytes" in keys[0]["key_file_problem"], keys


def test_doctor_fails_a_world_writable_key_dir(good):
    os.chmod(good.keys, 0o777)
    rc, lines, report = doctor(good)
    assert rc == 1 and ("key directory", "fail") in lines, report
    assert ("state directory", "ok") in lines, report


def test_one_damaged_record_is_that_users_problem_not_the_master_keys(good):
    """doctor opens a record to prove the master key; a damaged first record (here
    `aaron`, listed before alice) is reported as that record's problem, and the key is
    proven by the next one."""
    good.enroll("aaron")
    path = os.path.join(good.state, "aaron.record")
    data = bytearray(open(path, "rb").read())
    data[-1] ^= 0x01
    open(path, "wb").write(bytes(data))
    rc, lines, report = doctor(good)
    assert ("master key", "ok") in lines, report
    records = [c for c in report["checks"] if c["check"] == "records"]
    assert records and records[0]["result"] == "warn" and "aaron" in records[0]["detail"], report
    # admin unlock repairs a state, not a record: it says so instead of a plain "unlocked".
    r = good.cli("admin", "unlock", "aaron")
    assert "aaron's record cannot be opened" in r.stderr, r.stdout + r.stderr
    # Every record damaged: then the key itself is in doubt.
    path = os.path.join(good.state, "alice.record")
    data = bytearray(open(path, "rb").read())
    data[-1] ^= 0x01
    open(path, "wb").write(bytes(data))
    rc, lines, report = doctor(good)
    assert rc == 1 and ("master key", "fail") in lines, report


def test_doctor_fails_a_missing_helper(good):
    rc, lines, report = doctor(good, helper=os.path.join(good.root, "no-such-helper"))
    assert rc == 1 and ("helper", "fail") in lines, report
    assert ("config", "ok") in lines, report


def test_doctor_fails_a_writable_helper(good):
    helper = os.path.join(good.root, "helper-copy")
    subprocess.run(["cp", HELPER, helper], check=True)
    os.chmod(helper, 0o777)
    rc, lines, report = doctor(good, helper=helper)
    assert rc == 1 and ("helper", "fail") in lines, report


def test_doctor_checks_the_spawned_helper_and_twostep_helper_beside_it(good):
    rc, lines, report = doctor(good, helper=VERIFY)
    helpers = [c["detail"] for c in report["checks"] if c["check"] == "helper"]
    assert len(helpers) == 2 and VERIFY in helpers[0] and HELPER in helpers[1], report
    assert all(c["result"] == "ok" for c in report["checks"] if c["check"] == "helper"), report


def test_doctor_says_when_logins_will_spawn_a_helper(good, tmp_path):
    """No running helper (nothing there, a socket nobody listens on, another user's socket):
    a warning that names the slower path, never a failure (the module falls back)."""
    cases = {"missing": str(tmp_path / "missing.sock")}
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(tmp_path / "stale.sock"))  # bound, not listening
    cases["nothing listens"] = str(tmp_path / "stale.sock")
    foreign = socket.socket(socket.AF_UNIX)
    foreign.bind(str(tmp_path / "foreign.sock"))
    foreign.listen(1)
    os.chown(tmp_path / "foreign.sock", 65534, 65534)
    cases["not root"] = str(tmp_path / "foreign.sock")
    try:
        for why, path in cases.items():
            rc, lines, report = doctor(good, login_socket=path)
            found = [c for c in report["checks"] if c["check"] == "login socket"]
            assert [c["result"] for c in found] == ["warn"], (why, report)
            assert "every login spawns" in found[0]["detail"] and path in found[0]["detail"], (why, report)
            assert rc == (1 if expected_clock_level() == "fail" else 0), (why, report)
    finally:
        stale.close()
        foreign.close()


def test_doctor_is_not_fooled_by_a_listener_in_another_mount_namespace(good):
    """A stale root socket file on the host, and a user listening at the same path inside
    a mount namespace of their own: /proc/net/unix lists a listener with that path, but a
    connection on the host is refused, as the module's is. doctor says so."""
    d = tempfile.mkdtemp(prefix="twostep-ns-")
    os.chmod(d, 0o755)
    path = os.path.join(d, "verify.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()  # the file stays, root's, with nothing behind it
    spoof = subprocess.Popen(
        ["runuser", "-u", "nobody", "--", "unshare", "-Urm", "sh", "-c",
         f"mount -t tmpfs none {d} && exec python3 -c '"
         "import socket, sys, time\n"
         f"s = socket.socket(socket.AF_UNIX); s.bind(\"{path}\"); s.listen(1)\n"
         "print(\"ready\", flush=True); time.sleep(60)'"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = spoof.stdout.readline()
        if line.strip() != "ready":
            pytest.skip("no unprivileged user and mount namespaces here: " + spoof.stderr.read())
        with open("/proc/net/unix") as f:
            assert any(l.split()[-1] == path for l in f if l.split()[3] == "00010000"), "the spoof is not listed"
        rc, lines, report = doctor(good, login_socket=path)
        found = [c for c in report["checks"] if c["check"] == "login socket"]
        assert [c["result"] for c in found] == ["warn"], report
        assert "nothing listens" in found[0]["detail"], report
    finally:
        spoof.kill()
        spoof.wait()
        shutil.rmtree(d, ignore_errors=True)


def test_doctor_fails_a_bad_config_line(good):
    with open(good.conf, "a") as f:
        f.write("windwo = 3\n")
    rc, lines, report = doctor(good)
    assert rc == 1 and ("config", "fail") in lines, report
    bad = [c for c in report["checks"] if c["check"] == "config"][0]
    assert bad["detail"].endswith("twostep.conf:5: unknown key \"windwo\""), bad


def test_doctor_warns_about_sshd_without_keyboard_interactive(good):
    rc, lines, report = doctor(good, sshd="UsePAM yes\nKbdInteractiveAuthentication no\n")
    assert ("sshd", "warn") in lines, report


def test_doctor_reads_sshd_drop_ins_where_they_are_included(good):
    """Debian's sshd_config includes sshd_config.d/*.conf at its top, and sshd takes the first
    value it reads: doctor read the main file only and warned about settings a drop-in made
    (and would say ok about ones a drop-in overrode)."""
    drop = os.path.join(good.root, "sshd_config.d")
    os.mkdir(drop)
    with open(os.path.join(drop, "10-twostep.conf"), "w") as f:
        f.write("KbdInteractiveAuthentication yes\nAuthenticationMethods publickey,keyboard-interactive\n")
    with open(os.path.join(drop, "20-later.conf"), "w") as f:
        f.write("AuthenticationMethods any\nMatch User nobody\n  UsePAM no\n")
    main = f"Include {drop}/*.conf\nUsePAM yes\nKbdInteractiveAuthentication no\nAuthenticationMethods any\n"
    rc, lines, report = doctor(good, sshd=main)
    sshd = {c["detail"] for c in report["checks"] if c["check"] == "sshd"}
    assert sshd == {"UsePAM yes", "KbdInteractiveAuthentication yes",
                    "AuthenticationMethods publickey,keyboard-interactive"}, report
    # A drop-in that sets the opposite first wins over the main file's good values.
    with open(os.path.join(drop, "05-first.conf"), "w") as f:
        f.write("KbdInteractiveAuthentication no\n")
    rc, lines, report = doctor(good, sshd=main.replace("no\n", "yes\n"))
    assert ("sshd", "warn") in lines and any("KbdInteractiveAuthentication is no" in c["detail"]
                                             for c in report["checks"]), report


def test_clock_unsynchronised_is_audited_at_most_once_an_hour(inst):
    inst.write_config(window=3)  # three logins, three fresh steps, no waiting
    inst.enroll("alice")
    inst.service()
    start = int(time.time())
    for i in range(2):
        assert inst.login("alice", oathtool(at=start + 30 * i)).returncode == 0
    unsync, maxerror = kernel_clock()
    warned = [e for e in inst.audit_events() if e["event"] == "clock_unsynchronised"]
    if not unsync and maxerror <= 30:
        assert warned == [], warned
        return
    assert len(warned) == 1 and warned[0]["result"] == "warning", warned
    # An hour later (the marker set back), the next login warns again.
    marker = os.path.join(inst.state, ".clock-warned")
    with open(marker, "w") as f:
        f.write("%d\n" % (int(time.time()) - 3601))
    assert inst.login("alice", oathtool(at=start + 60)).returncode == 0
    assert len([e for e in inst.audit_events() if e["event"] == "clock_unsynchronised"]) == 2


# --- forward_pass -------------------------------------------------------------------------

PASSWORD = "Fw9-" + secrets.token_hex(6)


@pytest.fixture
def unix_user():
    name = "tsfp" + secrets.token_hex(3)
    subprocess.run(["useradd", "-M", "-s", "/bin/sh", name], check=True)
    subprocess.run(["chpasswd"], input="%s:%s\n" % (name, PASSWORD), text=True, check=True)
    yield name
    subprocess.run(["userdel", "-f", name], capture_output=True)


def forward_stack(inst, helper=HELPER):
    path = os.path.join(inst.pamdir, "tsforward")
    with open(path, "w") as f:
        f.write("auth required %s helper=%s config=%s forward_pass\n" % (MODULE, helper, inst.conf))
        f.write("auth required pam_unix.so use_first_pass\naccount required pam_permit.so\n")
    return "tsforward"


def test_forward_pass_with_pam_unix_use_first_pass(inst, unix_user):
    inst.write_config(window=3)  # a fresh step for each login, no waiting
    inst.enroll(unix_user)
    service = forward_stack(inst)
    now = int(time.time())
    assert harness_login(inst.pamdir, service, unix_user, PASSWORD + oathtool(at=now)) == PAM_SUCCESS
    # A wrong password with a right (fresh) code, and a right password with a wrong code.
    assert harness_login(inst.pamdir, service, unix_user, "x" + PASSWORD + oathtool(at=now + 30)) == PAM_AUTH_ERR
    assert harness_login(inst.pamdir, service, unix_user, PASSWORD + wrong(oathtool(at=now + 60))) == PAM_AUTH_ERR
    # A space between them works too; so does a backup code after a space.
    assert harness_login(inst.pamdir, service, unix_user, PASSWORD + " " + oathtool(at=now + 90)) == PAM_SUCCESS
    codes = json.loads(inst.cli("admin", "backup-codes", unix_user, "--json").stdout)["backup_codes"]
    assert harness_login(inst.pamdir, service, unix_user, PASSWORD + " " + codes[0]) == PAM_SUCCESS
    with open(inst.audit) as f:
        assert PASSWORD not in f.read()


def test_forward_pass_password_never_reaches_the_helper(inst, unix_user):
    inst.enroll(unix_user)
    service = forward_stack(inst, helper=os.path.join(FAKES, "fake_forward_pass.py"))
    assert harness_login(inst.pamdir, service, unix_user, PASSWORD + "123456") == PAM_SUCCESS
    with open(os.path.join(inst.root, "forward.json")) as f:
        seen = json.load(f)
    assert seen["answer"] == "123456", seen
    assert seen["request"].get("forward_pass") == "1", seen
    assert PASSWORD not in json.dumps(seen), seen
    # And pam_unix got the password: a wrong one fails even with the fake's good code.
    assert harness_login(inst.pamdir, service, unix_user, "bad" + PASSWORD + "123456") == PAM_AUTH_ERR
