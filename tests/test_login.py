# SPDX-License-Identifier: Apache-2.0
"""Logins through libpam, the real module and the real helper, with oathtool as the
reference for codes."""
import concurrent.futures
import os
import re
import time

from conftest import SECRET, oathtool, state_text, wrong


def test_current_code_logs_in(inst):
    inst.enroll("alice")
    inst.service()
    r = inst.login("alice", oathtool())
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Verification code: " in r.stderr
    assert "accepted" in r.stdout
    ev = [e for e in inst.audit_events() if e["event"] == "verify"]
    assert ev[-1]["result"] == "success" and ev[-1]["user"] == "alice" and ev[-1]["service"] == "tstest"
    assert ev[-1]["severity"] == "warning"


def test_a_prompt_left_unanswered_is_audited_and_not_counted(inst):
    """A client that goes away at the code prompt (here: no answer left, PAM_CONV_ERR) left no
    audit line, so a first factor used that far left no trace of twostep's."""
    import subprocess
    from conftest import HARNESS
    inst.enroll("alice")
    inst.service()
    r = subprocess.run([HARNESS, "--confdir", inst.pamdir, "--service", "tstest", "--user", "alice",
                        "--rhost", "203.0.113.50", "--answers", "-"], input="", capture_output=True, text=True, timeout=60)
    assert "RESULT: Conversation error (19)" in r.stdout, r.stdout + r.stderr
    ev = inst.audit_events()[-1]
    assert (ev["event"], ev["user"], ev["result"], ev["detail"], ev.get("rhost")) == \
        ("verify", "alice", "cancelled", "no answer at the code prompt", "203.0.113.50"), ev
    assert "\nfailures=\n" in state_text(os.path.join(inst.state, "alice.state"))   # nothing counted
    # A name with no enrolment leaves the same trace (who is enrolled does not show).
    r = subprocess.run([HARNESS, "--confdir", inst.pamdir, "--service", "tstest", "--user", "nobody-enrolled",
                        "--rhost", "203.0.113.51", "--answers", "-"], input="", capture_output=True, text=True, timeout=60)
    assert "RESULT: Conversation error (19)" in r.stdout, r.stdout + r.stderr
    ev = inst.audit_events()[-1]
    assert (ev["event"], ev["user"], ev["result"], ev["detail"], ev.get("rhost")) == \
        ("verify", "nobody-enrolled", "cancelled", "no answer at the code prompt", "203.0.113.51"), ev


def test_wrong_code_is_refused(inst):
    inst.enroll("alice")
    inst.service()
    good = oathtool()
    wrong = good[:-1] + ("0" if good[-1] != "0" else "1")
    r = inst.login("alice", wrong)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Authentication failure" in r.stdout


def test_replayed_code_is_refused(inst):
    inst.enroll("alice")
    inst.service()
    code = oathtool()
    assert inst.login("alice", code).returncode == 0
    r = inst.login("alice", code)
    assert r.returncode == 1
    assert inst.audit_events()[-1]["detail"] == "code already used"


def test_expired_code_is_refused(inst):
    inst.enroll("alice")
    inst.service()
    r = inst.login("alice", oathtool(at=time.time() - 120))
    assert r.returncode == 1


def test_other_users_code_is_refused(inst):
    inst.enroll("alice")
    inst.enroll("bob", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
    inst.service()
    assert inst.login("alice", oathtool("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")).returncode == 1
    assert inst.login("bob", oathtool("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")).returncode == 0


def test_sha256_eight_digit_sixty_second_enrolment(inst):
    inst.enroll("alice", SECRET, "--algorithm", "SHA256", "--digits", "8", "--period", "60")
    inst.service()
    code = oathtool(algorithm="sha256", digits=8, period=60)
    assert len(code) == 8
    assert inst.login("alice", code).returncode == 0


def test_unenrolled_user_with_nullok_is_ignored(inst):
    # PAM_IGNORE: the stack goes on to pam_permit and succeeds without a prompt.
    inst.service(args="nullok", after="auth required pam_permit.so\naccount required pam_permit.so\n")
    r = inst.login("carol", None)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Verification code" not in r.stderr


def test_unenrolled_user_without_nullok_fails(inst):
    # carol is no account here: asked like anyone else (no enumeration), and refused.
    inst.service(after="auth required pam_permit.so\naccount required pam_permit.so\n")
    r = inst.login("carol", "123456")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Verification code" in r.stderr
    # Nothing for carol; only the host's clock marker may be there (clock_unsynchronised).
    assert [n for n in os.listdir(inst.state) if not n.startswith(".clock-")] == []


def test_a_password_typed_at_the_code_prompt_never_locks_the_user_out(inst):
    """A password at `Verification code:` (typed by habit, or sent by a client that answers
    every hidden prompt with it, as sshd's password method does) can be no code: refused,
    audited as not counted, and never a step towards a lockout. Wrong codes still count."""
    inst.write_config(rate_limit="2/300", lockout="1h")
    inst.enroll("alice")
    inst.service()
    for _ in range(4):
        r = inst.login("alice", "CorrectHorse9")
        assert r.returncode != 0 and "locked" not in (r.stdout + r.stderr).lower(), r.stdout + r.stderr
    details = [e["detail"] for e in inst.audit_events() if e["user"] == "alice" and e["event"] == "verify"]
    assert details == ["not a code (not counted)"] * 4, details
    assert inst.login("alice", oathtool()).returncode == 0
    for _ in range(2):
        inst.login("alice", wrong(oathtool()))
    r = inst.login("alice", oathtool(at=time.time() + 30))
    assert r.returncode != 0 and "locked" in (r.stdout + r.stderr).lower(), r.stdout + r.stderr


def test_backup_code_works_once_and_reissue_revokes_old_set(inst):
    import json
    inst.enroll("alice")
    inst.service()
    first = json.loads(inst.cli("admin", "backup-codes", "alice", "--json").stdout)
    assert first["user"] == "alice" and len(first["backup_codes"]) == 10
    code = first["backup_codes"][0]
    r = inst.login("alice", code)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "9 left" in r.stdout
    assert inst.login("alice", code).returncode == 1
    second = json.loads(inst.cli("admin", "backup-codes", "alice", "--json").stdout)
    assert set(second["backup_codes"]).isdisjoint(first["backup_codes"])
    assert inst.login("alice", first["backup_codes"][1]).returncode == 1
    assert inst.login("alice", second["backup_codes"][1]).returncode == 0
    text = open(inst.audit).read()
    for c in first["backup_codes"] + second["backup_codes"]:
        assert c not in text


def test_many_logins_at_once_with_one_code_exactly_one_passes(inst):
    inst.write_config(rate_limit="100/300")
    inst.enroll("alice")
    inst.service()
    code = oathtool()
    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(lambda _: inst.login("alice", code).returncode, range(12)))
    assert results.count(0) == 1, results
    assert results.count(1) == 11, results


def test_lockout_after_rate_limit_and_admin_unlock(inst):
    inst.write_config(rate_limit="3/300", lockout="10m")
    inst.enroll("alice")
    inst.service()
    for i in range(2):
        assert inst.login("alice", "000000").returncode == 1
    r = inst.login("alice", "000000")
    assert r.returncode == 1
    assert "locked for 10 min" in r.stderr, r.stderr
    # The right code is refused while locked, and the user is told why.
    r = inst.login("alice", oathtool())
    assert r.returncode == 1 and "maximum number of retries" in r.stdout, r.stdout
    assert "locked" in r.stderr
    shown = inst.cli("admin", "show", "alice").stdout
    assert "locked_until" in shown
    inst.cli("admin", "unlock", "alice")
    assert inst.login("alice", oathtool()).returncode == 0
    events = [e["event"] for e in inst.audit_events()]
    assert "lockout" in events and "admin_unlock" in events


def test_lockouts_in_a_row_double_up_to_lockout_max_and_a_good_code_resets_them(inst):
    """Someone with the password could otherwise guess `rate_limit` codes per `lockout`
    for ever: each lockout that follows another with no accepted code in between lasts
    twice as long, up to `lockout_max`. (Seconds here, so that the test can wait them out.)"""
    inst.write_config(rate_limit="2/300", lockout="1s", lockout_max="4s")
    inst.enroll("tslockesc")
    inst.service()

    def lock_out():
        assert inst.login("tslockesc", "000000").returncode == 1
        r = inst.login("tslockesc", "000001")
        assert r.returncode == 1
        m = re.search(r"locked for (\d+) s", r.stderr)
        assert m, r.stderr
        return int(m.group(1))

    lengths = []
    for _ in range(4):
        lengths.append(lock_out())
        time.sleep(lengths[-1] + 1.2)   # past its end: lockouts end on whole seconds
    assert lengths == [1, 2, 4, 4], lengths
    # admin show counts them (recent_failures starts again from 0 at each lockout).
    assert "lockouts_in_a_row: 4" in inst.cli("admin", "show", "tslockesc").stdout
    # An accepted code ends the series: the next lockout is a first one again.
    assert inst.login("tslockesc", oathtool()).returncode == 0
    assert lock_out() == 1


def test_unsafe_store_fails_closed(inst):
    inst.enroll("alice")
    inst.service(args="nullok")
    os.chmod(inst.state, 0o755)
    r = inst.login("alice", oathtool())
    assert r.returncode == 2, r.stdout + r.stderr
    assert "unavailable" in r.stderr


def test_damaged_record_locks_out_only_that_user(inst):
    inst.enroll("alice")
    inst.enroll("bob")
    inst.service()
    with open(os.path.join(inst.state, "alice.record"), "r+b") as f:
        f.seek(40)
        b = f.read(1)
        f.seek(40)
        f.write(bytes([b[0] ^ 0xFF]))
    assert inst.login("alice", oathtool()).returncode == 2
    assert inst.login("bob", oathtool()).returncode == 0


def test_module_loads_repeatedly_in_a_swift_host(inst):
    inst.service(args="nullok", after="auth required pam_permit.so\naccount required pam_permit.so\n")
    import subprocess
    from conftest import CLI
    r = subprocess.run([CLI, "try", "--service", "tstest", "--pam-dir", inst.pamdir, "--user", "carol",
                        "--rounds", "100"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("accepted") == 100


def test_try_names_a_missing_service_file_and_a_stack_without_account_lines(inst):
    import subprocess
    from conftest import CLI
    r = subprocess.run([CLI, "try", "--service", "nosuch", "--pam-dir", inst.pamdir, "--user", "carol"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and f"no service file {inst.pamdir}/nosuch" in r.stdout + r.stderr, r.stdout + r.stderr
    with open(os.path.join(inst.pamdir, "authonly"), "w") as f:
        f.write("auth required pam_permit.so\n")
    r = subprocess.run([CLI, "try", "--service", "authonly", "--pam-dir", inst.pamdir, "--user", "carol"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "at account check" in r.stdout and "no `account` lines" in r.stdout, r.stdout + r.stderr


def test_enrol_at_first_login_then_next_login_asks_for_the_code(inst):
    enrol_a_new_account_at_first_login(inst)


def enrol_a_new_account_at_first_login(inst, service_args=""):
    """enroll = prompt, require = all: a new account NSS knows is enrolled at its first
    login, in the login's own conversation (tests/test_speed.py: through twostep-verify)."""
    import secrets
    import subprocess
    inst.write_config(enroll="prompt", require="all")
    inst.service(args=service_args)
    # Only an account NSS knows is enrolled at first login (tests/test_hardening.py).
    dave = f"tsdave{secrets.token_hex(3)}"
    subprocess.run(["useradd", "-M", "-s", "/bin/sh", dave], check=True)
    try:
        enrol_at_first_login(inst, dave)
    finally:
        subprocess.run(["userdel", "-f", dave], capture_output=True)


def enrol_at_first_login(inst, dave):
    import re
    import subprocess
    from conftest import CLI, read_setup_screen
    p = subprocess.Popen([CLI, "try", "--service", "tstest", "--pam-dir", inst.pamdir, "--user", dave],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    screen, key = read_setup_screen(p.stdout)
    assert any("otpauth://" in l and f"secret={key}" in l for l in screen)
    confirmed_at = time.time()
    first = oathtool(key, at=confirmed_at)
    out, err = p.communicate(first + "\n", timeout=60)
    assert p.returncode == 0, out + err
    assert "Enter the 6-digit code" in err
    assert "accepted" in out
    assert len(re.findall(r"\b[0-9a-z]{5}-[0-9a-z]{5}\b", out)) == 10
    # Enrolled now: the next login asks for a code, and the confirming code is spent.
    r = inst.login(dave, first)
    assert r.returncode == 1 and "Verification code: " in r.stderr
    # The next step after the confirming code's (not now + 30 s: a code checked just after
    # its step ended teaches the helper a step of drift).
    assert inst.login(dave, oathtool(key, at=confirmed_at + 30)).returncode == 0


def test_require_groups_decides_who_must_use_two_step(inst):
    # root is in group root: required, not enrolled, enroll=off -> refused even with nullok.
    inst.write_config(require="root")
    inst.service(args="nullok", after="auth required pam_permit.so\naccount required pam_permit.so\n")
    assert inst.login("root", None).returncode == 1
    # nobody is not in group root: outside `require`, so nullok semantics even without nullok.
    inst.service(after="auth required pam_permit.so\naccount required pam_permit.so\n")
    r = inst.login("nobody", None)
    assert r.returncode == 0 and "Verification code" not in r.stderr


def test_pamtester_as_a_c_host(inst):
    """Debian's pamtester (a C host using libpam_misc's conversation) loads the module from
    a service file in /etc/pam.d with a unique name, authenticates twice in one process."""
    import secrets
    import shutil
    import subprocess
    from conftest import HELPER, MODULE
    if not shutil.which("pamtester"):
        import pytest
        pytest.skip("pamtester missing")
    inst.enroll("alice")
    service = f"twostep-pamtester-{secrets.token_hex(4)}"
    path = f"/etc/pam.d/{service}"
    with open(path, "w") as f:
        f.write(f"auth required {MODULE} helper={HELPER} config={inst.conf}\naccount required pam_permit.so\n")
    try:
        now = time.time()
        answers = oathtool(at=now) + "\n" + oathtool(at=now + 30) + "\n" + oathtool(at=now + 30) + "\n"
        r = subprocess.run(["pamtester", "-v", service, "alice", "authenticate", "authenticate", "authenticate"],
                           input=answers, capture_output=True, text=True, timeout=60)
        out = r.stdout + r.stderr
        assert out.count("successfully authenticated") == 2, out
        assert "Authentication failure" in out, out  # the third reuses the second's step
    finally:
        os.unlink(path)


def test_admin_unlock_of_a_damaged_state_counts_in_the_users_own_period(inst):
    # Enrolled with 60 s codes while the config says 30 s. A damaged state loses its replay
    # mark; `admin unlock` restarts it after every code valid now, in 60 s steps. (Counted in
    # the config's 30 s steps, the mark landed decades ahead and every code was a replay.)
    inst.write_config(window=0)
    inst.enroll("alice", SECRET, "--period", "60")
    inst.service()
    with open(os.path.join(inst.state, "alice.state"), "wb") as f:
        f.write(b"damaged\n")
    inst.cli("admin", "unlock", "alice")
    now = int(time.time())  # after the unlock: its step is at most this one
    # With window 1 the next step's code is acceptable now, and only a sound mark lets it in.
    inst.write_config(window=1)
    next_code = oathtool(at=now + 60, period=60)
    r = inst.login("alice", next_code)
    assert r.returncode == 0, r.stdout + r.stderr
    # ...and it is spent: the same code again is a replay.
    assert inst.login("alice", next_code).returncode == 1
