# SPDX-License-Identifier: Apache-2.0
"""`twostep admin rotate-key` killed with SIGKILL at random instants: every record stays
readable under its old or its new key, a rerun finishes the job, logins go on during a
rotation, and --retire removes only keys that no record names."""
import concurrent.futures
import json
import os
import random
import signal
import subprocess
import time

from conftest import CLI, SECRET, oathtool
from test_scale import holding_lock, wait_while_running

USERS = int(os.environ.get("TWOSTEP_ROTATION_USERS", "2000"))
KILLS = int(os.environ.get("TWOSTEP_ROTATION_KILLS", "20"))


def enroll_many(inst, users):
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        list(ex.map(inst.enroll, users))


def import_many(inst, users):
    """Enrols `users` (the test secret) with one `admin import --batch`: the records a
    rotation re-seals, in a second instead of the minute 2,000 `admin import USER` runs
    take. What is tested is the rotation, not how its records were first written."""
    text = "".join(json.dumps({"user": u, "secret": SECRET}) + "\n" for u in users)
    r = inst.cli("admin", "import", "--batch", "-", input=text)
    assert f"{len(users)} user(s) imported, 0 line(s) failed" in r.stdout, r.stdout


def status(inst):
    return json.loads(inst.cli("admin", "rotate-key", "--status", "--json").stdout)


def key_files(inst):
    return sorted(n[:-4] for n in os.listdir(inst.keys) if n.endswith(".key"))


def test_rotation_killed_at_random_instants_loses_no_record(inst):
    users = [f"rot{i:04d}" for i in range(USERS)]
    import_many(inst, users)
    inst.service()
    first = status(inst)
    assert first["complete"] and first["keys"][0]["records"] == USERS

    # One whole rotation, timed, with logins going on at the same time.
    t0 = time.monotonic()
    rot = subprocess.Popen([CLI, "admin", "rotate-key", "--config", inst.conf],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Users other than the first and the last: those log in at the end, maybe in this step.
    logged_in = random.sample(users[1:-1], 5)
    during = [inst.login(u, oathtool()).returncode for u in logged_in]
    out, err = rot.communicate(timeout=600)
    full = time.monotonic() - t0
    assert rot.returncode == 0, out + err
    assert during == [0] * 5
    assert status(inst)["complete"]

    rng = random.Random(int(os.environ.get("TWOSTEP_ROTATION_SEED", str(int(time.time())))))
    partial = 0
    for kill in range(KILLS + 1):
        p = subprocess.Popen([CLI, "admin", "rotate-key", "--config", inst.conf],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if kill < KILLS:
            time.sleep(rng.uniform(0, full))
        else:
            # The random instants above may all miss the re-sealing (the timed run shared the
            # machine with logins and whatever else ran; a later run can be much faster).
            # This last kill cannot: with one user's lock held, as that user's login would
            # hold it, the run waits there, and it dies once a record is under the new key.
            with holding_lock(inst, users[USERS // 2]):
                wait_while_running(p, lambda: not status(inst)["complete"], "a first re-sealed record")
                p.send_signal(signal.SIGKILL)
                p.wait()
        p.send_signal(signal.SIGKILL)
        p.wait()
        s = status(inst)
        assert s["unreadable"] == [], s["unreadable"]
        assert sum(k["records"] for k in s["keys"]) == USERS
        # Every key a record names still has its file.
        assert all(k["key_file"] for k in s["keys"] if k["records"]), s
        partial += not s["complete"]
    # The kills landed mid-rotation at least once (otherwise this test proved nothing).
    assert partial > 0

    # A rerun finishes the job (resuming, not starting yet another rotation, when unfinished).
    unfinished = not status(inst)["complete"]
    r = inst.cli("admin", "rotate-key")
    assert ("finishing an unfinished rotation" in r.stdout) == unfinished, r.stdout
    s = status(inst)
    assert s["complete"], s
    active = [k for k in s["keys"] if k["active"]]
    assert active[0]["records"] == USERS

    # Every record opens (admin list decrypts each) and users log in.
    listed = json.loads(inst.cli("admin", "list", "--json").stdout)["users"]
    assert len(listed) == USERS and not [u for u in listed if "error" in u]
    for u in rng.sample(sorted(set(users[1:-1]) - set(logged_in)), 10) + [users[0], users[-1]]:
        assert inst.login(u, oathtool()).returncode == 0, u
    assert not [n for n in os.listdir(inst.state) if n.endswith(".record") and
                os.path.getsize(os.path.join(inst.state, n)) == 0]


def test_retire_keeps_a_key_that_a_record_still_needs(inst):
    users = [f"ret{i:02d}" for i in range(20)]
    enroll_many(inst, users)
    old = key_files(inst)
    assert len(old) == 1
    # A record whose ciphertext is damaged cannot be re-sealed: its key must stay.
    path = os.path.join(inst.state, "ret07.record")
    data = bytearray(open(path, "rb").read())
    data[-1] ^= 0x01
    open(path, "wb").write(bytes(data))
    r = inst.cli("admin", "rotate-key", "--retire", check=False)
    assert r.returncode != 0
    assert f"key {old[0]} kept: still named by 1 record(s): ret07" in r.stderr
    assert "ret07: not re-sealed" in r.stderr
    assert old[0] in key_files(inst) and len(key_files(inst)) == 2
    events = [e for e in inst.audit_events() if e["event"] == "admin_rotate_key"]
    assert events[-1]["result"] == "failure" and "19 re-sealed, 1 failed" in events[-1]["detail"]

    # Once that record is gone (re-enrolled), the old key goes too.
    inst.cli("admin", "reset", "ret07")
    r = inst.cli("admin", "rotate-key", "--retire")
    removed = [l for l in r.stdout.splitlines() if "removed old key(s): " in l]
    assert removed and old[0] in removed[0].split("removed old key(s): ", 1)[1].split(", "), r.stdout
    s = status(inst)
    assert key_files(inst) == [s["active"]] and s["complete"]
    assert [k["records"] for k in s["keys"]] == [19]


def test_status_changes_nothing_and_needs_root(inst):
    enroll_many(inst, ["st1", "st2"])
    before = {n: open(os.path.join(inst.state, n), "rb").read() for n in os.listdir(inst.state)}
    s = status(inst)
    assert s["complete"] and s["keys"] == [{"id": s["active"], "active": True, "records": 2, "key_file": True,
                                                                  "key_file_problem": None}]
    assert {n: open(os.path.join(inst.state, n), "rb").read() for n in os.listdir(inst.state)} == before
    text = inst.cli("admin", "rotate-key", "--status").stdout
    assert f"key {s['active']} (active): 2 record(s)" in text


def test_a_key_writer_killed_mid_write_leaves_nothing_behind_for_long(inst):
    # A key file is written as .<id>.key.tmp.<pid> and renamed; a writer killed before the
    # rename leaves a key in that file. The next key written in key_dir removes it when its
    # process is gone (a pid above any pid_max), and keeps a live process's.
    dead = os.path.join(inst.keys, ".00112233aabbccdd.key.tmp.4194305")
    alive = os.path.join(inst.keys, f".8899aabbccddeeff.key.tmp.{os.getpid()}")
    for path in (dead, alive):
        with open(path, "wb") as f:
            f.write(os.urandom(32))
        os.chmod(path, 0o400)
    inst.cli("admin", "rotate-key")
    assert not os.path.exists(dead)
    assert os.path.exists(alive)


def test_retire_removes_no_key_while_a_record_cannot_be_read(inst):
    """A record rotate-key cannot read (here: a mode that makes the store refuse it) names
    a key nobody can see. --retire must not delete any old key then: once the record is
    readable again, it opens under the key it was sealed with."""
    for u in ("rtra", "rtrb"):
        inst.enroll(u)
    old = key_files(inst)
    record = os.path.join(inst.state, "rtra.record")
    os.chmod(record, 0o644)
    r = inst.cli("admin", "rotate-key", "--retire", check=False)
    assert r.returncode != 0
    assert "no old key removed" in r.stderr, r.stdout + r.stderr
    assert "1 record(s) re-sealed, 1 failed," in r.stdout, r.stdout   # the failure is not counted as re-sealed
    assert set(old) <= set(key_files(inst)), "an old key was deleted while a record needed it"
    os.chmod(record, 0o600)
    assert inst.cli("admin", "show", "rtra", "--json").returncode == 0
    # Readable again: the rerun re-seals it and only then retires the old key.
    r = inst.cli("admin", "rotate-key", "--retire")
    assert "removed old key(s): " + old[0] in r.stdout, r.stdout
    inst.service()
    assert inst.login("rtra", oathtool()).returncode == 0


def test_a_user_with_a_hashed_file_name_is_listed_rotated_and_kept(inst):
    """A long non-ASCII directory name is stored under a hashed file name (%~<sha256>); its
    `.name` file lets list, report and rotate-key find it by name. A record written without
    it (an older version) is not re-sealed, but its key stays."""
    long_user = "rth" + "é" * 120
    inst.enroll(long_user)
    inst.enroll("rthplain")
    hashed = [n for n in os.listdir(inst.state) if n.startswith("%~") and n.endswith(".record")]
    assert len(hashed) == 1
    base = hashed[0][: -len(".record")]
    with open(os.path.join(inst.state, base + ".name"), encoding="utf-8") as f:
        assert f.read() == long_user
    assert long_user in inst.cli("admin", "list").stdout
    report = json.loads(inst.cli("admin", "report", "--json").stdout)
    assert report["enrolled"] == 2 and long_user in report["users"]

    old = key_files(inst)
    r = inst.cli("admin", "rotate-key", "--retire")
    assert "2 record(s) re-sealed" in r.stdout and "removed old key(s): " + old[0] in r.stdout, r.stdout
    assert old[0] not in key_files(inst)
    assert inst.cli("admin", "show", long_user, "--json").returncode == 0

    # A hashed record with no name beside it: counted, not re-sealed, its key kept.
    os.unlink(os.path.join(inst.state, base + ".name"))
    under = key_files(inst)
    assert long_user not in inst.cli("admin", "list").stdout
    r = inst.cli("admin", "rotate-key", "--retire", check=False)
    assert r.returncode != 0
    assert "whose user name is unknown" in r.stderr and base in r.stderr, r.stderr
    assert set(under) <= set(key_files(inst)), "the key of a record without a known name was deleted"
    st = status(inst)
    assert not st["complete"] and st["unnamed_records"] == [os.path.join(inst.state, base + ".record")]
    # Re-enrolling by name writes the name again; the next rotation then finishes.
    inst.enroll(long_user, SECRET, "--replace")
    inst.cli("admin", "rotate-key", "--retire")
    assert status(inst)["complete"] and len(key_files(inst)) == 1
    inst.service()
    assert inst.login(long_user, oathtool()).returncode == 0


def test_json_without_status_is_refused_and_rotates_nothing(inst):
    # `--json` is the report's format; given alone it must not run a rotation (a new key no
    # backup holds, made by a script that asked for a report).
    inst.enroll("ada")
    before = key_files(inst)
    r = inst.cli("admin", "rotate-key", "--json", check=False)
    assert r.returncode == 64 and "--json goes with --status" in r.stderr, r.stdout + r.stderr
    assert key_files(inst) == before
    assert status(inst)["complete"] and len(status(inst)["keys"]) == 1


def waiting_for_a_lock(pid):
    """Whether process `pid` waits for a flock (a `->` line of /proc/locks names it)."""
    with open("/proc/locks") as f:
        return any("->" in line and f" {pid} " in line for line in f)


def test_a_rotation_and_a_batch_import_over_the_same_users_both_finish(inst):
    """A reviewer ran rotate-key (users in name order) beside import --batch of a file in
    reverse order: each held the locks of about 150 users and waited for one the other
    held, for ever, and so did every login of those users. Made certain here: while one
    user's lock is held, the import takes its batch's locks up to that user and waits,
    then the rotation starts and waits too; the lock is let go. Both must finish."""
    users = [f"dl{i:02d}" for i in range(40)]
    import_many(inst, users)
    inst.cli("admin", "rotate-key", "--prepare")
    new = [k for k in key_files(inst) if k != status(inst)["active"]]
    batch = os.path.join(inst.root, "reversed.jsonl")
    with open(batch, "w") as f:
        f.write("".join(json.dumps({"user": u, "secret": SECRET}) + "\n" for u in reversed(users)))
    with holding_lock(inst, users[20]):
        imp = subprocess.Popen([CLI, "admin", "import", "--batch", batch, "--config", inst.conf],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_while_running(imp, lambda: waiting_for_a_lock(imp.pid), "the import waiting for the held lock")
        rot = subprocess.Popen([CLI, "admin", "rotate-key", "--use", new[0], "--config", inst.conf],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_while_running(rot, lambda: waiting_for_a_lock(rot.pid), "the rotation waiting for a lock")
    try:
        out, err = imp.communicate(timeout=60)
        assert "0 user(s) imported, 40 line(s) failed" in out, out + err   # every user is enrolled already
        out, err = rot.communicate(timeout=60)
        assert rot.returncode == 0, out + err
    finally:
        for p in (imp, rot):
            if p.poll() is None:
                p.kill()
                p.wait()
    assert status(inst)["complete"] and status(inst)["active"] == new[0]
    inst.service()
    assert inst.login(users[0], oathtool()).returncode == 0


def test_retire_waits_for_records_sealed_but_not_yet_in_place(inst):
    """A reviewer ran `rotate-key --retire` during an `import --batch`: the import had sealed
    256 users under the active key, rotate-key made a new one, and retire counted the
    records (the batch's not yet renamed into place) and deleted the old key; those users
    were lost. Here the batch's first rename is held for 3 s (strace) while the rotation
    and the retire run: retire now waits for the batch's records and keeps their key."""
    users = [f"rw{i:03d}" for i in range(40)]
    path = os.path.join(inst.root, "users.jsonl")
    with open(path, "w") as f:
        f.writelines(json.dumps({"user": u, "secret": SECRET}) + "\n" for u in users)
    imp = subprocess.Popen(["strace", "-f", "-o", "/dev/null", "-e",
                            "inject=rename,renameat,renameat2:delay_enter=3000000:when=1",
                            CLI, "admin", "import", "--batch", path, "--config", inst.conf],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Sealed and written under the current key: its temporary files wait to be renamed.
    deadline = time.time() + 20
    while not any(n.endswith(".tmp") for n in os.listdir(inst.state)):
        assert imp.poll() is None and time.time() < deadline, imp.communicate()
        time.sleep(0.02)
    # A new key, then every key no record names deleted.
    retire = inst.cli("admin", "rotate-key", "--retire", check=False)
    out, err = imp.communicate(timeout=60)
    assert imp.returncode == 0 and "40 user(s) imported" in out, out + err
    assert "still named by 40 record(s)" in retire.stdout + retire.stderr, retire.stdout + retire.stderr
    status = inst.cli("admin", "rotate-key", "--status").stdout
    assert "missing" not in status, status + retire.stdout
    listing = inst.cli("admin", "list").stdout
    assert "cannot be read" not in listing and all(u in listing for u in users), listing
    inst.service()
    assert inst.login(users[0], oathtool()).returncode == 0


def test_a_record_that_cannot_be_resealed_does_not_stop_later_rotations(inst):
    """One damaged record (its header still names the old key) made every later rotate-key
    \"finish an unfinished rotation\" of that record alone: no new key was ever made, and
    an admin rotating after a key leak kept the leaked key for everyone else."""
    for u in ("rtda", "rtdb", "rtdc"):
        inst.enroll(u)
    inst.cli("admin", "rotate-key")
    first = json.loads(inst.cli("admin", "rotate-key", "--status", "--json").stdout)["active"]
    record = os.path.join(inst.state, "rtda.record")
    with open(record, "r+b") as f:
        f.seek(120)
        b = f.read(1)
        f.seek(120)
        f.write(bytes([b[0] ^ 0xff]))
    inst.cli("admin", "rotate-key", check=False)      # rtda fails; the others move on
    second = json.loads(inst.cli("admin", "rotate-key", "--status", "--json").stdout)["active"]
    r = inst.cli("admin", "rotate-key", check=False)
    assert r.returncode == 1 and "cannot be re-sealed" in r.stdout, r.stdout + r.stderr
    status = json.loads(inst.cli("admin", "rotate-key", "--status", "--json").stdout)
    assert len({first, second, status["active"]}) == 3, (first, second, status)
    records = {k["id"]: k["records"] for k in status["keys"]}
    assert records[status["active"]] == 2 and records[first] == 1, status   # rtda keeps its key
    inst.service()
    assert inst.login("rtdb", oathtool()).returncode == 0
