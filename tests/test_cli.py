# SPDX-License-Identifier: Apache-2.0
"""The twostep CLI through its built binary: the enrolment wizard, --json with a PNG that
zbarimg reads back, admin commands, errors and --help."""
import base64
import json
import os
import re
import subprocess
import time
import urllib.parse

import pytest

from conftest import CLI, SECRET, oathtool, read_setup_screen, wrong

OTHER = "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U"   # another secret


def zbar(path):
    r = subprocess.run(["zbarimg", "--raw", "-q", path], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"zbarimg could not read {path}: {r.stderr}"
    return r.stdout.strip()


def secret_of(uri):
    q = urllib.parse.parse_qs(urllib.parse.urlparse(uri).query)
    return q["secret"][0]


def terminal_qr_to_pgm(text, path, scale=6):
    """Renders the wizard's half-block QR as the terminal shows it on a dark background:
    block glyphs are light, spaces dark."""
    halves = {"█": (1, 1), "▀": (1, 0), "▄": (0, 1), " ": (0, 0)}
    rows = []
    for line in text:
        top, bottom = [], []
        for ch in line:
            t, b = halves[ch]
            top.append(t)
            bottom.append(b)
        rows += [top, bottom]
    width = max(len(r) for r in rows)
    pixels = bytearray()
    for r in rows:
        r = r + [1] * (width - len(r))
        line = bytearray()
        for v in r:
            line += bytes([255 if v else 0]) * scale
        pixels += bytes(line) * scale
    with open(path, "wb") as f:
        f.write(b"P5 %d %d 255\n" % (width * scale, len(rows) * scale))
        f.write(bytes(pixels))


def has_account(name):
    import pwd
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def test_enroll_json_gives_uri_png_and_backup_codes(inst, tmp_path):
    r = inst.cli("enroll", "--user", "alice", "--json")
    # Without an account alice: enrolled all the same, with the warning `admin import` gives.
    assert ("no account named alice is known on this host" in r.stderr) == (not has_account("alice")), r.stderr
    out = json.loads(r.stdout)
    uri = out["otpauth_uri"]
    assert uri.startswith("otpauth://totp/TestCorp:alice?")
    assert out["qr_png_data_uri"].startswith("data:image/png;base64,")
    png = base64.b64decode(out["qr_png_data_uri"].split(",", 1)[1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "qr.png").write_bytes(png)
    assert zbar(str(tmp_path / "qr.png")) == uri
    codes = out["backup_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    for c in codes:
        assert re.fullmatch(r"[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}", c), c
    # The secret is 160 bits and the app's codes (oathtool here) log in.
    assert len(base64.b32decode(secret_of(uri) + "=" * (-len(secret_of(uri)) % 8))) >= 20
    inst.service()
    assert inst.login("alice", oathtool(secret_of(uri))).returncode == 0
    assert inst.login("alice", codes[9]).returncode == 0


def run_wizard(inst, user, answer_for):
    """Drives the wizard like a person: reads the screen, answers the prompt."""
    p = subprocess.Popen([CLI, "enroll", "--user", user, "--config", inst.conf], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    screen, key = read_setup_screen(p.stdout)
    answers = answer_for(key)
    out, err = p.communicate("".join(a + "\n" for a in answers), timeout=60)
    return p.returncode, screen, out, err, key


def test_wizard_shows_a_scannable_qr_and_saves_only_after_a_good_code(inst, tmp_path):
    used = []
    rc, screen, out, err, key = run_wizard(inst, "alice", lambda k: used.append(oathtool(k)) or used)
    assert rc == 0, out + err
    qr = [l for l in screen if l and set(l) <= set("█▀▄ ")]
    assert len(qr) > 10
    terminal_qr_to_pgm(qr, str(tmp_path / "term.pgm"))
    uri = zbar(str(tmp_path / "term.pgm"))
    assert secret_of(uri) == key
    assert any(uri in l for l in screen), "the URI is printed for manual use"
    backup = re.findall(r"\b[0-9a-z]{5}-[0-9a-z]{5}\b", out)
    assert len(backup) == 10
    assert "Done: alice is enrolled" in out
    inst.service()
    # The code used to confirm is spent: a login with it again is a replay.
    assert inst.login("alice", used[0]).returncode == 1
    assert inst.login("alice", backup[0]).returncode == 0
    events = [e["event"] for e in inst.audit_events()]
    assert "enroll" in events


def test_cli_holding_a_secret_cannot_dump_core(inst):
    p = subprocess.Popen([CLI, "enroll", "--user", "alice", "--config", inst.conf], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        read_setup_screen(p.stdout)  # the secret is in memory and on screen; the prompt waits
        limits = open(f"/proc/{p.pid}/limits").read()
        assert re.search(r"Max core file size\s+0\s+0", limits), limits
    finally:
        p.kill()
        p.wait()


def test_wizard_with_wrong_codes_saves_nothing(inst):
    rc, _, out, err, _ = run_wizard(inst, "alice", lambda k: ["000000", "111111", "222222"])
    assert rc != 0
    assert "nothing was saved" in err
    show = json.loads(inst.cli("admin", "show", "alice", "--json").stdout)
    assert show["enrolled"] is False


def test_enrolling_twice_needs_replace(inst):
    inst.enroll("alice")
    r = inst.cli("enroll", "--user", "alice", "--json", check=False)
    assert r.returncode != 0 and "already enrolled" in r.stderr
    # Replacing needs a current code from the old authenticator, even for root.
    r = inst.cli("enroll", "--user", "alice", "--json", "--replace", check=False)
    assert r.returncode != 0
    r = inst.cli("enroll", "--user", "alice", "--json", "--replace", input=oathtool() + "\n")
    assert json.loads(r.stdout)["otpauth_uri"].startswith("otpauth://")


def test_admin_show_and_list_never_print_the_secret(inst):
    inst.enroll("alice")
    inst.enroll("bob")
    show = inst.cli("admin", "show", "alice").stdout
    assert "enrolled: true" in show and "algorithm: SHA1" in show
    j = json.loads(inst.cli("admin", "show", "alice", "--json").stdout)
    assert j["digits"] == 6 and j["period"] == 30 and j["backup_codes_left"] == 0
    lst = inst.cli("admin", "list").stdout
    assert "alice" in lst and "bob" in lst
    users = [u["user"] for u in json.loads(inst.cli("admin", "list", "--json").stdout)["users"]]
    assert users == ["alice", "bob"]
    for out in (show, lst, json.dumps(j)):
        assert SECRET not in out and SECRET.lower() not in out
    for name in os.listdir(inst.state):
        assert SECRET.encode() not in open(os.path.join(inst.state, name), "rb").read()


def test_admin_reset_removes_the_enrolment(inst):
    inst.enroll("alice")
    inst.service()
    inst.cli("admin", "reset", "alice")
    assert json.loads(inst.cli("admin", "show", "alice", "--json").stdout)["enrolled"] is False
    assert inst.login("alice", oathtool()).returncode == 1
    assert "admin_reset" in [e["event"] for e in inst.audit_events()]
    r = inst.cli("admin", "reset", "alice", check=False)
    assert r.returncode != 0 and "not enrolled" in r.stderr
    # A mistyped name leaves nothing behind (a reviewer found NAME.lock files left).
    for command in ("reset", "unlock"):
        r = inst.cli("admin", command, "alcie", check=False)
        assert r.returncode != 0 and "alcie is not enrolled" in r.stderr, r.stderr
    assert not [f for f in os.listdir(inst.state) if f.startswith("alcie")], os.listdir(inst.state)


def test_a_record_from_before_a_reset_stays_refused_after_enrolling_again(inst):
    """Generations started again at 1 after `admin reset`, so a record kept from before the
    reset (its old secret, its backup codes) opened again when put back beside the new
    enrolment's state. The reset now leaves a tombstone state naming the next generation."""
    inst.enroll("alice", OTHER)
    inst.service()
    codes = json.loads(inst.cli("admin", "backup-codes", "alice", "--json").stdout)["backup_codes"]
    path = os.path.join(inst.state, "alice.record")
    old = open(path, "rb").read()
    inst.cli("admin", "reset", "alice")
    assert not os.path.exists(path)
    assert json.loads(inst.cli("admin", "show", "alice", "--json").stdout)["enrolled"] is False
    assert "alice" not in inst.cli("admin", "list").stdout
    inst.enroll("alice")
    assert inst.login("alice", oathtool()).returncode == 0
    with open(path, "wb") as f:
        f.write(old)
    r = inst.cli("admin", "show", "alice", check=False)
    assert r.returncode != 0 and "a restored copy is refused" in r.stdout + r.stderr, r.stdout + r.stderr
    assert inst.login("alice", codes[0]).returncode != 0
    assert inst.login("alice", oathtool(OTHER, at=time.time() + 30)).returncode != 0


def test_reset_of_a_record_with_a_damaged_header_and_a_state_at_the_last_generation(inst):
    """A reviewer overwrote a record header's generation with ff bytes: `admin reset` (the
    remedy for a damaged record) trapped on the overflow, and with ff..fe wrote a tombstone
    after which every import trapped. The header's number is not authenticated and is no
    longer used; a state at the last generation gets an error, not a crash."""
    inst.enroll("alice")
    path = os.path.join(inst.state, "alice.record")
    data = bytearray(open(path, "rb").read())
    at = 5 + data[4]
    data[at:at + 8] = b"\xff" * 8
    open(path, "wb").write(bytes(data))
    r = inst.cli("admin", "reset", "alice", check=False)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    inst.enroll("alice")
    assert json.loads(inst.cli("admin", "show", "alice", "--json").stdout)["enrolled"] is True
    with open(os.path.join(inst.state, "bob.state"), "w") as f:
        f.write("v=2\nrecord_generation=18446744073709551615\n")
    os.chmod(os.path.join(inst.state, "bob.state"), 0o600)
    r = inst.cli("admin", "import", "bob", "--secret", "-", input=SECRET + "\n", check=False)
    assert r.returncode == 1 and "record generation at its maximum" in r.stderr, (r.returncode, r.stdout, r.stderr)


def test_import_rejects_bad_input_clearly(inst):
    r = inst.cli("admin", "import", "alice", "--secret", "-", input="JBSWY3DP1HPK3PXP\n", check=False)
    assert r.returncode != 0 and "'1'" in r.stderr, r.stderr
    r = inst.cli("admin", "import", "alice", "--secret", "-", "--digits", "7", input=SECRET + "\n", check=False)
    assert r.returncode != 0 and "--digits must be 6 or 8" in r.stderr
    r = inst.cli("admin", "import", "a\nb", "--secret", "-", input=SECRET + "\n", check=False)
    assert r.returncode != 0 and "invalid user name" in r.stderr
    # Any other name gets a file name of its own inside state_dir, never a path.
    r = inst.cli("admin", "import", "../etc", "--secret", "-", input=SECRET + "\n")
    assert "%..%2Fetc.record" in os.listdir(inst.state)
    # A secret on the command line works but is warned about (it shows in /proc).
    r = inst.cli("admin", "import", "alice", "--secret", SECRET)
    assert "process list" in r.stderr
    # A name no account has is enrolled all the same, with a warning (a typo shows at once);
    # an account's name draws none.
    assert ("no account named alice is known on this host" in r.stderr) == (not has_account("alice")), r.stderr
    r = inst.cli("admin", "import", "root", "--secret", "-", input=SECRET + "\n")
    assert r.stderr == "" and "root enrolled" in r.stdout, r.stdout + r.stderr


def test_config_errors_name_the_line(inst):
    with open(inst.conf, "a") as f:
        f.write("windwo = 3\n")
    r = inst.cli("admin", "list", check=False)
    assert r.returncode != 0
    assert re.search(r"twostep\.conf:5: unknown key \"windwo\"", r.stderr), r.stderr


def test_config_writable_by_others_is_refused(inst):
    os.chmod(inst.conf, 0o666)
    r = inst.cli("admin", "list", check=False)
    assert r.returncode != 0 and "must be owned by root and not writable" in r.stderr


def test_key_from_environment_overrides_key_dir(inst):
    key = base64.b64encode(os.urandom(32)).decode()
    env = dict(os.environ, CONFIG_ENCRYPTION_KEY=key)
    r = inst.cli("admin", "import", "alice", "--secret", "-", input=SECRET + "\n", env=env)
    # Sealed with a key key_dir does not have: logins through a spawned helper cannot open it.
    assert "has no file in " + inst.keys in r.stderr and "not in logins through a spawned helper" in r.stderr, r.stderr
    assert json.loads(inst.cli("admin", "show", "alice", "--json", env=env).stdout)["enrolled"] is True
    r = inst.cli("admin", "show", "alice", check=False)
    assert r.returncode != 0 and "not found" in r.stderr


@pytest.mark.parametrize("args", [[], ["enroll"], ["try"], ["admin"], ["admin", "init"], ["admin", "import"],
                                  ["admin", "backup-codes"], ["admin", "reset"], ["admin", "unlock"],
                                  ["admin", "show"], ["admin", "list"]])
def test_help_is_available_for_every_command(args):
    r = subprocess.run([CLI, *args, "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0
    assert "USAGE" in r.stdout.upper()


def test_rotate_key_reseals_every_record(inst):
    inst.enroll("alice")
    inst.enroll("bob")
    inst.service()
    old_active = open(os.path.join(inst.keys, "active")).read().strip()
    r = inst.cli("admin", "rotate-key")
    new_active = open(os.path.join(inst.keys, "active")).read().strip()
    assert new_active != old_active and new_active in r.stdout
    for user in ("alice", "bob"):
        header = open(os.path.join(inst.state, f"{user}.record"), "rb").read()[:32]
        assert new_active.encode() in header and old_active.encode() not in header
    assert sorted(os.listdir(inst.keys)) == sorted(["active", f"{old_active}.key", f"{new_active}.key"])
    r = inst.cli("admin", "rotate-key", "--retire")
    newest = open(os.path.join(inst.keys, "active")).read().strip()
    assert sorted(os.listdir(inst.keys)) == sorted(["active", f"{newest}.key"])
    assert inst.login("alice", oathtool()).returncode == 0
    assert "admin_rotate_key" in [e["event"] for e in inst.audit_events()]


def _at_a_hidden_prompt(inst, ignore=()):
    """admin export-key on a fresh pty, waiting at its passphrase prompt with echo off, its
    signals at their defaults but for `ignore` (a test run from a background job inherits
    SIGINT ignored, and nohup SIGHUP). Returns (process, master, slave)."""
    import signal
    import termios
    import time

    def dispositions():
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGTSTP):
            signal.signal(s, signal.SIG_IGN if s in ignore else signal.SIG_DFL)
    master, slave = os.openpty()
    p = subprocess.Popen([CLI, "admin", "export-key", "--output", os.path.join(inst.root, "bundle"),
                          "--config", inst.conf], stdin=slave, stdout=slave, stderr=slave,
                         start_new_session=True, preexec_fn=dispositions)
    seen, deadline = b"", time.monotonic() + 30
    while b"passphrase" not in seen:
        assert time.monotonic() < deadline and p.poll() is None, seen
        seen += os.read(master, 4096)
    _wait_for_echo(slave, False)
    return p, master, slave


def _wait_for_echo(fd, on, timeout=10):
    import termios
    import time
    deadline = time.monotonic() + timeout
    while bool(termios.tcgetattr(fd)[3] & termios.ECHO) != on:
        assert time.monotonic() < deadline, f"echo never turned {'on' if on else 'off'}"
        time.sleep(0.01)


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_signal_at_a_hidden_prompt_gives_the_terminal_its_echo_back(inst, sig):
    """A passphrase, password or code is typed with echo off. Ctrl-C there (or a kill, or a
    hang-up) must not leave the terminal that way: bash repairs a terminal itself, but dash,
    scripts and other callers do not. The process still ends by the signal."""
    import signal
    import termios
    p, master, slave = _at_a_hidden_prompt(inst)
    try:
        p.send_signal(getattr(signal, sig))
        assert p.wait(timeout=10) == -getattr(signal, sig)
        assert termios.tcgetattr(slave)[3] & termios.ECHO, "the terminal was left with echo off"
    finally:
        if p.poll() is None:
            p.kill()
        os.close(master)
        os.close(slave)


def test_a_signal_that_does_not_end_the_process_leaves_the_input_hidden(inst):
    """A signal the caller ignores changes nothing; one whose action returns (here Ctrl-Z
    in a process group that cannot stop: the kernel discards it, as for any orphaned group)
    gives the terminal back for that moment and hides the input again. Either way the
    prompt goes on reading, and what is typed is not shown."""
    import signal
    import time
    p, master, slave = _at_a_hidden_prompt(inst, ignore=(signal.SIGINT,))
    try:
        for sig in (signal.SIGINT, signal.SIGTSTP):
            p.send_signal(sig)
            time.sleep(0.3)
            assert p.poll() is None
            _wait_for_echo(slave, False, timeout=1)
        os.write(master, b"a passphrase long enough\n")   # the prompt still reads, unechoed
        seen, deadline = b"", time.monotonic() + 10
        while b"again" not in seen:
            assert time.monotonic() < deadline and p.poll() is None, seen
            seen += os.read(master, 4096)
        assert b"long enough" not in seen, seen
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)
        os.close(master)
        os.close(slave)


def test_a_replace_not_finished_gives_its_backup_code_back(inst):
    """A reviewer with one backup code left ran `enroll --replace`, gave it, then mistyped
    the new app's code three times: the code was spent and the message said nothing was
    changed. A replacement not made (cancelled, or its codes did not match) now gives the
    backup code back, and it still works."""
    inst.enroll("alice")
    codes = json.loads(inst.cli("admin", "backup-codes", "alice", "--json").stdout)["backup_codes"]
    show = lambda: json.loads(inst.cli("admin", "show", "alice", "--json").stdout)  # noqa: E731
    left = lambda: show()["backup_codes_left"]  # noqa: E731
    inst.service()
    for _ in range(2):   # two wrong codes counted before
        assert inst.login("alice", wrong(oathtool())).returncode != 0
    assert show()["recent_failures"] == 2
    # The backup code opens the replacement; then the wizard's confirmation gets end of input.
    r = inst.cli("enroll", "--replace", "--user", "alice", input=codes[0] + "\n", check=False)
    assert r.returncode != 0 and "cancelled; the change was not made" in r.stderr, r.stdout + r.stderr
    assert f"Your backup code was not used up: {len(codes)} left." in r.stdout + r.stderr, r.stdout + r.stderr
    assert left() == len(codes)
    # ...and so are the failures its success had cleared: no way to reset the limiter.
    assert show()["recent_failures"] == 2
    # Three codes that do not match the new secret: not replaced, the code given back.
    r = inst.cli("enroll", "--replace", "--user", "alice", input=codes[0] + "\n" + "000000\n" * 3, check=False)
    assert r.returncode != 0 and "codes did not match; nothing was saved" in r.stdout + r.stderr, r.stdout + r.stderr
    assert "not done (a password or code was not accepted); nothing was changed" in r.stderr, r.stderr
    assert left() == len(codes)
    events = [(e["event"], e["result"], e.get("detail")) for e in inst.audit_events() if e["user"] == "alice"]
    assert events.count(("enroll", "failure", f"not replaced; backup code given back, {len(codes)} left")) == 2, events
    # It is spent for good by a login that uses it, and then a replace cannot give it back twice.
    assert inst.login("alice", codes[0]).returncode == 0
    assert left() == len(codes) - 1
    assert inst.login("alice", codes[0]).returncode != 0
