# SPDX-License-Identifier: Apache-2.0
"""Several authenticators per user, HOTP tokens and clock drift, through libpam (the C
harness and the real module and helper) and the built CLI, with oathtool as the reference."""
import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import CLI, HARNESS, PAM_AUTHINFO_UNAVAIL, Installation, SECRET, oathtool, read_setup_screen, state_text, wrong
from test_selfservice import PASSWORD, host  # noqa: F401 (host is a fixture)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE_STORE = os.path.join(ROOT, "tests", "fixtures", "pre-devices-store")
TABLET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
TOKEN = "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U"
PAM_SUCCESS, PAM_AUTH_ERR, PAM_MAXTRIES = 0, 7, 11


@pytest.fixture
def inst():
    root = tempfile.mkdtemp(prefix="twostep-dev-")
    try:
        i = Installation(root)
        i.service()
        yield i
    finally:
        shutil.rmtree(root, ignore_errors=True)


def logins(inst, user, answers, service="tstest"):
    """One libpam login per answer (pam_harness rounds); returns their PAM codes."""
    r = subprocess.run([HARNESS, "--confdir", inst.pamdir, "--service", service, "--user", user,
                        "--answers", "-", "--rounds", str(len(answers))],
                       input="".join(a + "\n" for a in answers), capture_output=True, text=True, timeout=120)
    codes = [int(m) for m in re.findall(r"^RESULT: .* \((-?\d+)\)$", r.stdout, re.M)]
    assert len(codes) == len(answers), r.stdout + r.stderr
    return codes


def hotp(counter, secret=TOKEN):
    out = subprocess.run(["oathtool", "--hotp", "-c", str(counter), "-b", secret],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def early_in_a_step(period=30, room=12):
    """Waits until at least `room` seconds are left in the current time step, so codes
    computed now for "now + N steps" stay the codes of those steps while a test runs."""
    left = period - time.time() % period
    if left < room:
        time.sleep(left + 0.2)
    return int(time.time())


def devices(inst, user):
    return {d["name"]: d for d in json.loads(inst.cli("admin", "show", user, "--json").stdout)["authenticators"]}


def state_line(inst, user, name):
    text = state_text(os.path.join(inst.state, f"{user}.state"))
    m = re.search(rf"^device={name} (-?\d+) (\d+) (-?\d+) (\d+)$", text, re.M)
    assert m, text
    return tuple(int(x) for x in m.groups())  # last_step, counter, drift, last_used


def test_two_totp_authenticators_each_pass_with_replay_per_authenticator(inst):
    inst.enroll("alice")
    inst.cli("admin", "import", "alice", "--name", "tablet", "--algorithm", "SHA256", "--secret", "-",
             input=TABLET + "\n")
    listed = devices(inst, "alice")
    assert sorted(listed) == ["default", "tablet"]
    assert listed["tablet"]["algorithm"] == "SHA256" and listed["tablet"]["type"] == "totp"
    assert listed["default"]["algorithm"] == "SHA1" and listed["default"]["last_used"] is None
    shown = inst.cli("admin", "show", "alice").stdout
    assert shown.count("last used never") == 2 and "nil" not in shown, shown
    t = early_in_a_step()
    phone, tablet = oathtool(at=t), oathtool(TABLET, at=t, algorithm="sha256")
    assert logins(inst, "alice", [phone, phone, tablet, tablet]) == [PAM_SUCCESS, PAM_AUTH_ERR, PAM_SUCCESS, PAM_AUTH_ERR]
    details = [e.get("detail") for e in inst.audit_events() if e["event"] == "verify"]
    assert details == ["totp default", "code already used", "totp tablet", "code already used"], details
    assert devices(inst, "alice")["tablet"]["last_used"] is not None


def test_the_limiter_counts_every_authenticator_against_the_user(inst):
    inst.write_config(rate_limit="3/300")
    inst.enroll("alice")
    inst.cli("admin", "import", "alice", "--name", "tablet", "--algorithm", "SHA256", "--secret", "-",
             input=TABLET + "\n")
    t = early_in_a_step()
    phone, tablet = oathtool(at=t), oathtool(TABLET, at=t, algorithm="sha256")
    # Two wrong codes "for" the phone and one for the tablet: one user, one limit.
    codes = logins(inst, "alice", [wrong(phone), wrong(phone), wrong(tablet), tablet, phone])
    assert codes == [PAM_AUTH_ERR, PAM_AUTH_ERR, PAM_MAXTRIES, PAM_MAXTRIES, PAM_MAXTRIES], codes


def test_removing_an_authenticator_ends_its_codes(inst):
    inst.enroll("alice")
    inst.cli("admin", "import", "alice", "--name", "tablet", "--algorithm", "SHA256", "--secret", "-",
             input=TABLET + "\n")
    t = early_in_a_step()
    # Root removes it like a user would: a current code from ANOTHER authenticator.
    r = inst.cli("devices", "remove", "tablet", "--user", "alice", input=oathtool(TABLET, at=t, algorithm="sha256") + "\n",
                 check=False)
    assert r.returncode != 0 and "nothing was changed" in r.stderr, r.stdout + r.stderr
    inst.cli("devices", "remove", "tablet", "--user", "alice", input=oathtool(at=t) + "\n")
    assert sorted(devices(inst, "alice")) == ["default"]
    assert logins(inst, "alice", [oathtool(TABLET, at=t + 30, algorithm="sha256")]) == [PAM_AUTH_ERR]
    assert logins(inst, "alice", [oathtool(at=t + 30)]) == [PAM_SUCCESS]
    # The last one goes only through `twostep disable`.
    r = inst.cli("devices", "remove", "default", "--user", "alice", check=False)
    assert r.returncode != 0 and "twostep disable" in r.stderr, r.stderr
    assert [e["detail"] for e in inst.audit_events() if e["event"] == "devices_remove" and e["result"] == "success"] \
        == ["totp tablet"]


def test_a_damaged_state_never_lets_spent_hotp_codes_pass_again(inst):
    # Before: `admin unlock` of a damaged state restarted an HOTP token's counter at 0, so
    # codes it had already spent (here 0..30) passed again. Now the counter is marked lost:
    # no code of the token works until `admin resync` finds it from counter 0.
    inst.cli("admin", "import", "alice", "--type", "hotp", "--name", "yubikey", "--secret", "-", input=TOKEN + "\n")
    inst.cli("admin", "import", "alice", "--name", "phone", "--secret", "-", input=SECRET + "\n")
    assert logins(inst, "alice", [hotp(5), hotp(30)]) == [PAM_SUCCESS, PAM_AUTH_ERR]   # 30: beyond the window
    inst.cli("admin", "resync", "alice", hotp(29), hotp(30), "--name", "yubikey")
    assert devices(inst, "alice")["yubikey"]["counter"] == 31
    with open(os.path.join(inst.state, "alice.state"), "wb") as f:
        f.write(b"damaged\n")
    assert logins(inst, "alice", [hotp(31)]) == [PAM_AUTHINFO_UNAVAIL]   # a damaged state fails closed
    # A change to the record does not quietly start a fresh state either: unlock first.
    r = inst.cli("admin", "backup-codes", "alice", check=False)
    assert r.returncode != 0 and "admin unlock alice" in r.stderr, r.stdout + r.stderr
    inst.write_config(window=0)   # the unlock marks every TOTP step up to now + window spent
    r = inst.cli("admin", "unlock", "alice")
    inst.write_config(window=1)   # ...so with window 1 the next step's code passes, whatever now is
    assert "counter is lost" in r.stdout and "admin resync alice --name yubikey" in r.stdout, r.stdout
    assert "clock offset learned by `admin resync`" in r.stdout and "is forgotten" in r.stdout, r.stdout
    shown = devices(inst, "alice")["yubikey"]
    assert shown.get("counter_lost") is True and "counter" not in shown, shown
    assert "counter lost" in inst.cli("admin", "show", "alice").stdout
    # The other authenticator (TOTP) still works after every code valid at the unlock.
    assert logins(inst, "alice", [oathtool(at=time.time() + 30)]) == [PAM_SUCCESS]
    # A spent code and the one that was next: neither passes (few tries: the limiter counts).
    assert logins(inst, "alice", [hotp(5), hotp(31)]) == [PAM_AUTH_ERR] * 2
    # Resync searches from 0 for a lost counter, and then only codes after the pair pass.
    r = inst.cli("admin", "resync", "alice", "--name", "yubikey", input=f"{hotp(40)}\n{hotp(41)}\n")
    assert "next counter 42" in r.stdout, r.stdout
    assert logins(inst, "alice", [hotp(41), hotp(30), hotp(42)]) == [PAM_AUTH_ERR, PAM_AUTH_ERR, PAM_SUCCESS]


def test_hotp_token_looks_ahead_never_twice_and_resyncs(inst):
    inst.cli("admin", "import", "alice", "--type", "hotp", "--name", "yubikey", "--secret", "-", input=TOKEN + "\n")
    assert devices(inst, "alice")["yubikey"]["counter"] == 0
    # Only a token: nothing shows a time step for it.
    shown = json.loads(inst.cli("admin", "show", "alice", "--json").stdout)
    assert "period" not in shown and "period" not in shown["authenticators"][0], shown
    assert "counter based (HOTP token)" in inst.cli("status", "--user", "alice").stdout
    # hotp_window 10 from counter 0: 3 passes and moves the counter to 4; 3 and 2 are spent.
    codes = logins(inst, "alice", [hotp(3), hotp(3), hotp(2), hotp(4 + 11), hotp(4 + 10)])
    assert codes == [PAM_SUCCESS, PAM_AUTH_ERR, PAM_AUTH_ERR, PAM_AUTH_ERR, PAM_SUCCESS], codes
    assert devices(inst, "alice")["yubikey"]["counter"] == 15
    # A token pressed 500 times in a pocket: two consecutive codes bring it back.
    assert logins(inst, "alice", [hotp(515)]) == [PAM_AUTH_ERR]
    # Given as arguments they are taken, with a warning: a command line is public while it runs.
    r = inst.cli("admin", "resync", "alice", hotp(515), hotp(516))
    assert "next counter 517" in r.stdout, r.stdout
    assert "visible to other users in the process list" in r.stderr, r.stderr
    assert logins(inst, "alice", [hotp(516), hotp(517)]) == [PAM_AUTH_ERR, PAM_SUCCESS]
    # Codes that are not consecutive change nothing; without arguments (or with - -) the
    # codes are read from standard input, one a line, and no warning is given.
    r = inst.cli("admin", "resync", "alice", "-", "-", input=f"{hotp(700)}\n{hotp(702)}\n", check=False)
    assert r.returncode != 0 and "nothing was changed" in r.stderr
    r = inst.cli("admin", "resync", "alice", input=f"{hotp(700)}\n{hotp(701)}\n")
    assert "process list" not in r.stderr, r.stderr
    assert logins(inst, "alice", [hotp(702)]) == [PAM_SUCCESS]
    resyncs = [(e["result"], e["detail"]) for e in inst.audit_events() if e["event"] == "admin_resync"]
    assert resyncs[0] == ("success", "hotp yubikey: next counter 517, by root"), resyncs
    assert [r for r, _ in resyncs] == ["success", "failure", "success"]


def test_a_drifting_clock_is_found_by_resync_and_followed_at_logins(inst):
    inst.write_config(window=1)
    inst.enroll("alice")
    t = early_in_a_step(room=15)
    ahead = lambda steps: oathtool(at=t + 30 * steps)  # noqa: E731 (the phone's clock)
    # The phone runs 3 minutes ahead: out of the window.
    assert logins(inst, "alice", [ahead(6)]) == [PAM_AUTH_ERR]
    r = inst.cli("admin", "resync", "alice", ahead(5), ahead(6))
    assert "clock offset 6 steps (180 s)" in r.stdout, r.stdout
    # admin show tells the offset now in force.
    assert "clock offset +180 s" in inst.cli("admin", "show", "alice").stdout
    shown = json.loads(inst.cli("admin", "show", "alice", "--json").stdout)
    assert [a["clock_offset_seconds"] for a in shown["authenticators"]] == [180], shown
    # It keeps drifting, one step per login: each login moves the offset one step along, so
    # every code passes with window 1 (without learning, +9 would be 3 steps out).
    assert logins(inst, "alice", [ahead(6), ahead(7), ahead(8), ahead(9)]) == \
        [PAM_AUTH_ERR, PAM_SUCCESS, PAM_SUCCESS, PAM_SUCCESS]
    assert state_line(inst, "alice", "default")[2] == 9
    # Never beyond max_drift: with max_drift = 5m (10 steps) the offset stops at 10.
    inst.write_config(window=1, max_drift="5m")
    assert logins(inst, "alice", [ahead(10), ahead(11), ahead(12)]) == [PAM_SUCCESS, PAM_SUCCESS, PAM_AUTH_ERR]
    assert state_line(inst, "alice", "default")[2] == 10


def test_records_written_before_several_authenticators_still_open(inst):
    """A record (plaintext v=1) and state (v=1) written by main before this change open
    without migration as one TOTP authenticator named default."""
    for sub in ("state", "keys"):
        shutil.rmtree(os.path.join(inst.root, sub))
        shutil.copytree(os.path.join(FIXTURE_STORE, sub), os.path.join(inst.root, sub))
        os.chmod(os.path.join(inst.root, sub), 0o700)
        # git keeps only the x bit: give the files the modes the store wrote them with.
        for name in os.listdir(os.path.join(inst.root, sub)):
            os.chmod(os.path.join(inst.root, sub, name), 0o400 if name.endswith(".key") else 0o600)
    state = os.path.join(inst.state, "fixturev2.state")
    assert state_text(state).startswith("v=1\nlast_step=59865727\n")
    listed = devices(inst, "fixturev2")
    assert list(listed) == ["default"] and listed["default"]["algorithm"] == "SHA256"
    inst.cli("admin", "unlock", "fixturev2")  # rewrites the state: the v1 mark is default's
    assert state_line(inst, "fixturev2", "default")[:3] == (59865727, 0, 0)
    backup = open(os.path.join(FIXTURE_STORE, "README")).read().split()[-1]
    t = early_in_a_step()
    assert logins(inst, "fixturev2", [oathtool(at=t, algorithm="sha256"), backup]) == [PAM_SUCCESS, PAM_SUCCESS]
    assert state_text(state).startswith("v=2\n")


def test_root_adds_an_authenticator_with_the_wizard(inst):
    inst.enroll("alice")
    t = early_in_a_step()
    p = subprocess.Popen([CLI, "enroll", "--user", "alice", "--add", "phone2", "--config", inst.conf],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.stdin.write(oathtool(at=t) + "\n")
    p.stdin.flush()
    screen, key = read_setup_screen(p.stdout)
    assert key and key != SECRET, screen
    out, err = p.communicate(oathtool(key, at=t) + "\n", timeout=60)
    assert p.returncode == 0, out + err
    assert "phone2 is added" in out
    listed = json.loads(inst.cli("devices", "--user", "alice", "--json").stdout)["authenticators"]
    assert [d["name"] for d in listed] == ["default", "phone2"]
    # The confirming code is spent; the next one of either passes.
    assert logins(inst, "alice", [oathtool(key, at=t), oathtool(key, at=t + 30), oathtool(at=t + 30)]) == \
        [PAM_AUTH_ERR, PAM_SUCCESS, PAM_SUCCESS]
    assert "added totp phone2" in [e.get("detail") for e in inst.audit_events() if e["event"] == "enroll"]


def test_a_user_adds_lists_and_removes_authenticators_through_the_socket(host):  # noqa: F811
    host.serve("serve")
    alice = host.user()
    host.inst.enroll(alice)
    t = early_in_a_step(room=15)
    p = subprocess.Popen(["runuser", "-u", alice, "--", CLI, "enroll", "--add", "tablet", "--config", host.inst.conf],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.stdin.write(PASSWORD + "\n" + oathtool(at=t) + "\n")
    p.stdin.flush()
    _, key = read_setup_screen(p.stdout)
    out, err = p.communicate(oathtool(key, at=t) + "\n", timeout=60)
    assert p.returncode == 0, out + err
    assert "Code from one of your authenticators" in err
    r = host.as_user(alice, "devices")
    assert r.returncode == 0 and "tablet" in r.stdout and "default" in r.stdout, r.stdout + r.stderr
    # A code from the one being removed does not count; one from another does.
    r = host.as_user(alice, "devices", "remove", "default", input=PASSWORD + "\n" + oathtool(key, at=t + 30) + "\n")
    assert r.returncode == 0, r.stdout + r.stderr
    assert [d["name"] for d in json.loads(host.as_user(alice, "devices", "--json").stdout)["authenticators"]] == ["tablet"]
    r = host.as_user(alice, "devices", "remove", "tablet")
    assert r.returncode != 0 and "twostep disable" in r.stderr


def test_admin_import_adds_replaces_and_caps_authenticators(inst):
    inst.enroll("alice")
    r = inst.cli("admin", "import", "alice", "--secret", "-", input=TABLET + "\n", check=False)
    assert r.returncode != 0 and "--name NAME to add another" in r.stderr, r.stderr
    r = inst.cli("admin", "import", "alice", "--name", "Bad_Name", "--secret", "-", input=TABLET + "\n", check=False)
    assert r.returncode != 0 and "--name" in r.stderr
    r = inst.cli("admin", "import", "alice", "--counter", "5", "--name", "x", "--secret", "-", input=TABLET + "\n", check=False)
    assert r.returncode != 0 and "--type hotp" in r.stderr
    r = inst.cli("admin", "import", "alice", "--type", "hotp", "--period", "60", "--name", "x", "--secret", "-",
                 input=TABLET + "\n", check=False)
    assert r.returncode == 64 and "--period goes with --type totp" in r.stderr, r.stderr
    for i in range(15):   # each its own secret: one another authenticator has is refused
        inst.cli("admin", "import", "alice", "--name", f"t{i}", "--secret", "-",
                 input=base64.b32encode(os.urandom(20)).decode() + "\n")
    r = inst.cli("admin", "import", "alice", "--name", "t99", "--secret", "-", input=TABLET + "\n", check=False)
    assert r.returncode != 0 and "at most 16" in r.stderr, r.stderr
    # --replace swaps the default's secret; the other authenticators and backup codes stay.
    codes = json.loads(inst.cli("admin", "backup-codes", "alice", "--json").stdout)["backup_codes"]
    inst.cli("admin", "import", "alice", "--replace", "--algorithm", "SHA512", "--secret", "-", input=TOKEN + "\n")
    listed = devices(inst, "alice")
    assert len(listed) == 16 and listed["default"]["algorithm"] == "SHA512"
    t = early_in_a_step()
    assert logins(inst, "alice", [oathtool(at=t), oathtool(TOKEN, at=t, algorithm="sha512"), codes[0]]) == \
        [PAM_AUTH_ERR, PAM_SUCCESS, PAM_SUCCESS]
    assert [e["detail"] for e in inst.audit_events() if e["event"] == "admin_import"][-1] == "totp default, by root"


def test_importing_the_same_secret_again_keeps_what_it_spent(inst):
    """A reviewer saw a used TOTP code pass again after `admin import --replace` of the same
    secret (the authenticator's state started afresh), and an HOTP token would go back to
    counter 0. The same secret keeps its replay mark and counter; a new secret starts anew."""
    inst.cli("admin", "import", "alice", "--secret", "-", input=SECRET + "\n")
    inst.cli("admin", "import", "alice", "--type", "hotp", "--name", "yubikey", "--secret", "-", input=TOKEN + "\n")
    code = oathtool()
    assert logins(inst, "alice", [code, hotp(3)]) == [PAM_SUCCESS, PAM_SUCCESS]
    inst.cli("admin", "import", "alice", "--replace", "--secret", "-", input=SECRET + "\n")
    inst.cli("admin", "import", "alice", "--replace", "--type", "hotp", "--name", "yubikey", "--secret", "-",
             input=TOKEN + "\n")
    assert devices(inst, "alice")["yubikey"]["counter"] == 4
    assert logins(inst, "alice", [code, hotp(3), hotp(4)]) == [PAM_AUTH_ERR, PAM_AUTH_ERR, PAM_SUCCESS]
    # The same secret under another name would give each code twice: refused.
    r = inst.cli("admin", "import", "alice", "--name", "phone", "--secret", "-", input=SECRET + "\n", check=False)
    assert r.returncode != 0 and "authenticator default already has that secret" in r.stderr, r.stdout + r.stderr
    # A new secret under the same name starts from what it is given.
    inst.cli("admin", "import", "alice", "--replace", "--type", "hotp", "--name", "yubikey", "--secret", "-",
             input="GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\n")
    assert devices(inst, "alice")["yubikey"]["counter"] == 0


def test_importing_the_same_secret_with_other_digits_keeps_what_it_spent(inst):
    """A 6-digit code is the last six digits of the same step's 8-digit code: after
    `import --replace --digits 6` of the same secret, the used 8-digit code's step stays
    spent (a reviewer's used code passed again as its last six digits)."""
    t = early_in_a_step()
    inst.cli("admin", "import", "alice", "--digits", "8", "--secret", "-", input=SECRET + "\n")
    inst.cli("admin", "import", "alice", "--type", "hotp", "--name", "yubikey", "--digits", "8", "--secret", "-",
             input=TOKEN + "\n")
    long_code = oathtool(at=t, digits=8)
    hotp8 = subprocess.run(["oathtool", "--hotp", "-d", "8", "-c", "0", "-b", TOKEN],
                           check=True, capture_output=True, text=True).stdout.strip()
    assert logins(inst, "alice", [long_code, hotp8]) == [PAM_SUCCESS, PAM_SUCCESS]
    inst.cli("admin", "import", "alice", "--replace", "--digits", "6", "--secret", "-", input=SECRET + "\n")
    inst.cli("admin", "import", "alice", "--replace", "--type", "hotp", "--name", "yubikey", "--digits", "6",
             "--secret", "-", input=TOKEN + "\n")
    assert long_code[-6:] == oathtool(at=t) and hotp8[-6:] == hotp(0)
    assert devices(inst, "alice")["yubikey"]["counter"] == 1
    assert logins(inst, "alice", [oathtool(at=t), hotp(0), hotp(1)]) == [PAM_AUTH_ERR, PAM_AUTH_ERR, PAM_SUCCESS]
