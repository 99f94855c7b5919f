# SPDX-License-Identifier: Apache-2.0
"""Many users: `twostep admin import --batch` (JSON lines, all or nothing per line, a bad
line reported by number, Ctrl-C leaves every record whole), progress only on a terminal,
streamed `admin list --json`, an interruptible `admin rotate-key`, and a login path that
never reads the whole store directory."""
import base64
import contextlib
import fcntl
import json
import os
import pty
import random
import re
import select
import signal
import subprocess
import time

import pytest

from conftest import CLI, HARNESS, PAM_SUCCESS, harness_login, oathtool


def b32(raw):
    return base64.b32encode(raw).decode().rstrip("=")


def new_secret():
    return b32(os.urandom(20))


def jsonl(inst, name, rows):
    path = os.path.join(inst.root, name)
    with open(path, "w") as f:
        for r in rows:
            f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return path


def batch(inst, source, *extra, input=None, check=False):
    return inst.cli("admin", "import", "--batch", source, *extra, input=input, check=check)


def records(inst):
    return sorted(n[:-len(".record")] for n in os.listdir(inst.state) if n.endswith(".record"))


def leftovers(inst):
    return [n for n in os.listdir(inst.state) if ".tmp" in n or n.startswith(".twostep-spare.") and n != ".twostep-spare.lock"]


def listed(inst):
    return json.loads(inst.cli("admin", "list", "--json").stdout)["users"]


def many(prefix, n):
    return [{"user": f"{prefix}{i:05d}", "secret": new_secret()} for i in range(n)]


@contextlib.contextmanager
def holding_lock(inst, user):
    """Holds `user`'s lock (the flock on <state_dir>/<user>.lock that a login of that user,
    a batch import and rotate-key take): a writer that reaches the user waits there until
    the block ends. The tests below interrupt a long run with it in their hands, so the
    run cannot have finished before the signal arrives, however fast or loaded the machine."""
    fd = os.open(os.path.join(inst.state, user + ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def wait_while_running(p, done, what, timeout=300):
    """Waits until `done()` holds while `p` runs; fails (never goes on regardless) when `p`
    exits first or nothing happens for `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not done():
        if p.poll() is not None:
            out, err = p.communicate()
            pytest.fail(f"exited {p.returncode} before {what}: {out}{err}")
        if time.monotonic() > deadline:
            p.kill()
            p.communicate()
            pytest.fail(f"no {what} after {timeout} s")
        time.sleep(0.01)


# --- import --batch ------------------------------------------------------------------------

def test_batch_imported_users_log_in_with_oathtool_codes(inst):
    rows = many("tsb", 60)
    rows[1].update(algorithm="SHA256", digits=8, period=60)
    rows[2].update(algorithm="sha512", type="totp")
    path = jsonl(inst, "users.jsonl", rows)
    r = batch(inst, path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "60 user(s) imported, 0 line(s) failed" in r.stdout, r.stdout
    assert records(inst) == sorted(x["user"] for x in rows)
    assert leftovers(inst) == []
    service = inst.service()
    t = time.time()
    for row in rows[:3] + random.sample(rows[3:], 3):
        code = oathtool(row["secret"], at=t, algorithm=row.get("algorithm", "sha1").lower(),
                        digits=row.get("digits", 6), period=row.get("period", 30))
        assert harness_login(inst.pamdir, service, row["user"], code) == PAM_SUCCESS, row["user"]
    # One admin_import event per user (in audit_log) and one summary; never a secret.
    events = inst.audit_events()
    assert sorted(e["user"] for e in events if e["event"] == "admin_import") == sorted(x["user"] for x in rows)
    summary = [e for e in events if e["event"] == "admin_import_batch"]
    assert len(summary) == 1 and summary[0]["result"] == "success" and "60 imported" in summary[0]["detail"]
    text = open(inst.audit).read() + r.stdout + r.stderr
    assert not any(x["secret"] in text for x in rows)


def test_a_bad_line_is_reported_by_number_and_the_others_are_imported(inst):
    good = many("tsg", 6)
    lines = [good[0], good[1],
             '{"user": "tsbad3", "secret": ',                                     # 3: not JSON
             {"user": "tsbad4", "secret": "not base32 at all!"},                  # 4: secret
             {"user": "tsbad5", "secret": new_secret(), "digits": 7},             # 5: digits
             good[2],
             {"user": "tsbad7", "secret": new_secret(), "colour": "blue"},        # 7: unknown field
             "",                                                                  # 8: blank: no user
             {"user": "tsbad9", "secret": b32(os.urandom(5))},                    # 9: too short
             {"user": "tsbad10", "secret": new_secret(), "period": "30"},         # 10: not a number
             good[3], good[4], good[5]]
    r = batch(inst, jsonl(inst, "mixed.jsonl", lines))
    assert r.returncode == 1, r.stdout + r.stderr
    for n in (3, 4, 5, 7, 9, 10):
        assert re.search(rf"^twostep: line {n}: .*; skipped$", r.stderr, re.M), (n, r.stderr)
    assert "line 8:" not in r.stderr and "line 1:" not in r.stderr
    assert "6 user(s) imported, 6 line(s) failed (lines 3, 4, 5, 7, 9, 10)" in r.stdout, r.stdout
    # Nothing of a bad line was written: no record, no state, no temporary file.
    assert records(inst) == sorted(x["user"] for x in good)
    assert not [n for n in os.listdir(inst.state) if n.startswith(".tsbad") or n.startswith("tsbad")]
    assert leftovers(inst) == []
    # The secret never appears in what was printed, even for the bad lines.
    assert "not base32" not in r.stderr
    assert [u["user"] for u in listed(inst)] == sorted(x["user"] for x in good)
    # The batch's audit line (user "-") is no user's failure in admin report.
    assert any(e["event"] == "admin_import_batch" and e["result"] == "failure" for e in inst.audit_events())
    report = json.loads(inst.cli("admin", "report", "--json").stdout)
    assert "-" not in report["failures_24h"], report["failures_24h"]


def test_batch_from_standard_input_and_an_enrolled_user_needs_replace(inst):
    inst.enroll("tsold")
    rows = [{"user": "tsold", "secret": new_secret()}, {"user": "tsnew", "secret": new_secret()}]
    text = "".join(json.dumps(x) + "\n" for x in rows)
    r = batch(inst, "-", input=text)
    assert r.returncode == 1 and re.search(r"^twostep: line 1: tsold: tsold is already enrolled; give --replace", r.stderr, re.M), r.stderr
    assert records(inst) == ["tsnew", "tsold"]
    service = inst.service()
    t = time.time()
    assert harness_login(inst.pamdir, service, "tsold", oathtool(at=t)) == PAM_SUCCESS   # the old secret still
    r = batch(inst, "-", "--replace", input=json.dumps(rows[0]) + "\n")
    assert r.returncode == 0, r.stderr
    assert harness_login(inst.pamdir, service, "tsold", oathtool(rows[0]["secret"], at=t + 30)) == PAM_SUCCESS


def hotp(secret, counter):
    return subprocess.run(["oathtool", "--hotp", "-c", str(counter), "-b", secret],
                          check=True, capture_output=True, text=True).stdout.strip()


def test_batch_imports_hotp_tokens_and_several_authenticators_per_user(inst):
    s = [new_secret() for _ in range(4)]
    rows = [{"user": "tsh1", "secret": s[0], "type": "hotp", "counter": 5},    # a counter: one by one
            {"user": "tsh2", "secret": s[1], "type": "HOTP"},                  # next code at 0: a batch
            {"user": "tsm", "secret": s[2]},
            {"user": "tsm", "secret": s[3], "name": "token", "type": "hotp", "counter": 2},
            {"user": "tsbad", "secret": s[0], "counter": 1},                   # 5: counter without hotp
            {"user": "tsbad", "secret": s[0], "name": "Bad Name"}]             # 6: name
    r = batch(inst, jsonl(inst, "h.jsonl", rows))
    assert r.returncode == 1 and "4 user(s) imported, 2 line(s) failed (lines 5, 6)" in r.stdout, r.stdout + r.stderr
    service = inst.service()
    assert harness_login(inst.pamdir, service, "tsh1", hotp(s[0], 5)) == PAM_SUCCESS
    assert harness_login(inst.pamdir, service, "tsh2", hotp(s[1], 0)) == PAM_SUCCESS
    assert harness_login(inst.pamdir, service, "tsm", oathtool(s[2])) == PAM_SUCCESS
    assert harness_login(inst.pamdir, service, "tsm", hotp(s[3], 2)) == PAM_SUCCESS
    details = [e["detail"] for e in inst.audit_events() if e["event"] == "admin_import" and e["user"] == "tsm"]
    assert details[0].startswith("totp default, import --batch line 3") and details[1].startswith("hotp token, import --batch line 4")


def test_batch_and_a_user_argument_do_not_mix(inst):
    r = inst.cli("admin", "import", "tsx", "--batch", "-", input="", check=False)
    assert r.returncode != 0 and "--batch" in r.stderr


def test_sigint_during_a_large_batch_leaves_every_record_whole_and_the_rest_absent(inst):
    # The import writes 256 lines a flush and checks for Ctrl-C after every line, so four
    # flushes' worth of lines (the last one partial) hold every case there is: lines already
    # flushed, the batch at hand when the signal lands (written before it stops), and lines
    # never read. More lines would only repeat those.
    rows = many("tsi", 1000)
    path = jsonl(inst, "big.jsonl", rows)
    held = rows[600]["user"]   # in the third batch (lines 513-768)
    with holding_lock(inst, held):
        p = subprocess.Popen([CLI, "admin", "import", "--batch", path, "--config", inst.conf],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # The import catches SIGINT before it reads a line, so once a record exists the
        # signal is its Ctrl-C; with `held`'s lock in our hands it cannot get past line
        # 768. The signal lands anywhere between the first flush and that lock.
        wait_while_running(p, lambda: records(inst), "a first imported record")
        p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, out + err
    m = re.search(r"interrupted after line (\d+)", out)
    assert m, out
    last = int(m.group(1))
    imported = int(re.search(r"(\d+) user\(s\) imported", out).group(1))
    assert 256 <= last <= 768 and imported == last, out
    # Lines up to the interruption are imported, every one readable; none after it exists.
    assert records(inst) == [x["user"] for x in rows[:last]]
    assert leftovers(inst) == []
    assert not [u for u in listed(inst) if "error" in u]
    service = inst.service()
    for row in (rows[0], rows[last - 1]):
        assert harness_login(inst.pamdir, service, row["user"], oathtool(row["secret"])) == PAM_SUCCESS
    summary = [e for e in inst.audit_events() if e["event"] == "admin_import_batch"]
    assert summary[0]["result"] == "failure" and "interrupted" in summary[0]["detail"]


# --- progress on a terminal only -----------------------------------------------------------

def run_on_pty(argv, timeout=120):
    """Runs argv with its stdout and stderr on a pseudo-terminal; returns (status, output)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(argv[0], argv)
    out = b""
    deadline = time.time() + timeout
    while time.time() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def test_progress_is_drawn_on_a_terminal_and_quiet_otherwise(inst):
    path = jsonl(inst, "p1.jsonl", many("tsp", 1500))
    code, out = run_on_pty([CLI, "admin", "import", "--batch", path, "--config", inst.conf])
    assert code == 0, out
    assert re.search(r"\r\x1b\[K  \d+/1500 line\(s\) read, \d+/s, \d+ s left", out), repr(out[-400:])
    code, out = run_on_pty([CLI, "admin", "rotate-key", "--config", inst.conf])
    assert code == 0, out
    assert re.search(r"\r\x1b\[K  \d+/1500 record\(s\) re-sealed, \d+/s, \d+ s left", out), repr(out[-400:])
    # Not a terminal: the summary only.
    r = batch(inst, jsonl(inst, "p2.jsonl", many("tsq", 1500)))
    assert r.returncode == 0 and "\r" not in r.stdout and "\x1b" not in r.stdout, r.stdout
    assert r.stdout.splitlines()[-1] == "twostep: import --batch: 1500 user(s) imported, 0 line(s) failed"
    r = inst.cli("admin", "rotate-key")
    assert "\r" not in r.stdout and "\x1b" not in r.stdout and "3000 record(s) re-sealed in" in r.stdout, r.stdout


# --- rotate-key at scale, interrupted --------------------------------------------------------

def rotation_status(inst):
    return json.loads(inst.cli("admin", "rotate-key", "--status", "--json").stdout)


def test_rotate_key_interrupted_by_sigint_keeps_every_record_and_a_rerun_finishes(inst):
    # rotate-key re-seals 256 records a flush and stops only between flushes, so four
    # batches (the last one partial) hold every case there is: batches done, the batch at
    # hand when the signal lands (finished before it stops), and batches never started.
    # More records would only repeat those (tests/test_rotation.py kills bigger runs).
    rows = many("tsr", 1000)
    assert batch(inst, jsonl(inst, "r.jsonl", rows)).returncode == 0
    old = rotation_status(inst)["active"]
    held = rows[600]["user"]   # in the third batch (records 513-768)

    def resealed():
        s = rotation_status(inst)
        return s["active"] != old and [k["records"] for k in s["keys"] if k["active"]] != [0]

    with holding_lock(inst, held):
        p = subprocess.Popen([CLI, "admin", "rotate-key", "--config", inst.conf],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # rotate-key catches SIGINT before it re-seals a record, so once one is under the
        # new key the signal is its Ctrl-C; with `held`'s lock in our hands (as a login of
        # that user would hold it) it cannot get past the third batch. The signal lands
        # anywhere between the first re-sealed record and that lock.
        wait_while_running(p, resealed, "a first re-sealed record")
        p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, out + err
    m = re.search(r"interrupted: (\d+) record\(s\) re-sealed, (\d+) still under an older key", out)
    assert m and "run `twostep admin rotate-key` again" in out, out
    done, left = int(m.group(1)), int(m.group(2))
    # It stopped after the batch at hand: a whole number of batches, the held one at most.
    assert done in (256, 512, 768) and done + left == len(rows), out
    s = rotation_status(inst)
    assert s["unreadable"] == [] and not s["complete"], s
    assert sorted((k["active"], k["records"]) for k in s["keys"]) == [(False, left), (True, done)], s
    assert leftovers(inst) == []
    # Whole under either key: a re-sealed user and one still under the old key log in.
    service = inst.service()
    for row in (rows[0], rows[-1]):
        assert harness_login(inst.pamdir, service, row["user"], oathtool(row["secret"])) == PAM_SUCCESS
    r = inst.cli("admin", "rotate-key")
    assert "finishing an unfinished rotation" in r.stdout, r.stdout
    s = rotation_status(inst)
    assert s["complete"] and [k["records"] for k in s["keys"] if k["active"]] == [len(rows)]
    for row in random.sample(rows[1:-1], 3):
        assert harness_login(inst.pamdir, service, row["user"], oathtool(row["secret"])) == PAM_SUCCESS


# --- streamed listings -----------------------------------------------------------------------

def test_streamed_list_is_what_show_says_for_every_user(inst):
    assert inst.cli("admin", "list", "--json").stdout == '{\n  "users" : []\n}\n'
    assert inst.cli("admin", "list").stdout == "no users enrolled\n"
    rows = many("tsl", 700)
    assert batch(inst, jsonl(inst, "l.jsonl", rows)).returncode == 0
    inst.cli("admin", "backup-codes", "tsl00003")
    # A damaged record is one row with an error, not a failed listing.
    with open(os.path.join(inst.state, "tsl00005.record"), "r+b") as f:
        f.seek(40)
        f.write(b"\0\0\0\0")
    text = inst.cli("admin", "list", "--json").stdout
    got = json.loads(text)["users"]
    assert [u["user"] for u in got] == sorted(x["user"] for x in rows)
    for u in got[:8] + got[-3:]:
        if u["user"] == "tsl00005":
            assert u == {"user": "tsl00005", "enrolled": True, "error": "cannot be read"}
        else:
            shown = json.loads(inst.cli("admin", "show", u["user"], "--json").stdout)
            # show adds the authenticators, the lockouts in a row, and an empty list of
            # trusted keys; list has the summary only.
            shown.pop("authenticators")
            shown.pop("lockouts_in_a_row")
            if shown["trusted_ssh_keys"] == []:
                shown.pop("trusted_ssh_keys")
            assert u == shown
    assert got[3]["backup_codes_left"] == 10
    # The layout of printJSON (two-space indent, " : ") holds row after row.
    assert text.startswith('{\n  "users" : [\n    {\n      "algorithm" : "SHA1",\n') and text.endswith("    }\n  ]\n}\n")
    lines = inst.cli("admin", "list").stdout.splitlines()
    assert len(lines) == 700 and lines[0].startswith("tsl00000\tSHA1/6\tbackup codes left: 0")
    assert lines[5].startswith("tsl00005\t") and lines[5].endswith("(cannot be read)"), lines[5]
    report = json.loads(inst.cli("admin", "report", "--json").stdout)
    assert report["enrolled"] == 700 and report["unreadable"] == ["tsl00005"]
    assert len(report["no_backup_codes"]) == 698 and "tsl00003" not in report["no_backup_codes"]


# --- the login path does not read the store directory ---------------------------------------

@pytest.mark.skipif(not os.path.exists("/usr/bin/strace"), reason="strace not installed")
def test_a_login_never_lists_the_store_directory(inst):
    rows = many("tsd", 500)
    assert batch(inst, jsonl(inst, "d.jsonl", rows)).returncode == 0
    service = inst.service()
    trace = os.path.join(inst.root, "trace")
    r = subprocess.run(["strace", "-f", "-y", "-e", "trace=getdents64,getdents", "-o", trace,
                        HARNESS, "--confdir", inst.pamdir, "--service", service, "--user", rows[7]["user"],
                        "--answers", "-"], input=oathtool(rows[7]["secret"]) + "\n",
                       capture_output=True, text=True, timeout=60)
    assert "RESULT: " in r.stdout and "(0)" in r.stdout, r.stdout + r.stderr
    listed_dirs = [l for l in open(trace) if "getdents" in l and inst.state in l]
    assert listed_dirs == [], listed_dirs
    # A temporary file a writer killed mid-write left is still removed (by name).
    stale = os.path.join(inst.state, f".{rows[8]['user']}.state.tmp")
    with open(stale, "w") as f:
        f.write("v=1\n")
    os.chmod(stale, 0o600)
    assert harness_login(inst.pamdir, service, rows[8]["user"], oathtool(rows[8]["secret"])) == PAM_SUCCESS
    assert not os.path.exists(stale)
