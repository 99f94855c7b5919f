# SPDX-License-Identifier: Apache-2.0
"""Support tooling through the built CLI: mail through the system's real MTA (Debian's
exim4, local delivery to /var/mail/USER), and the audit log read back by `admin audit` and
summarised by `admin report`, from events that real logins through libpam wrote."""
import base64
import email
import email.policy
import gzip
import json
import os
import re
import shutil
import subprocess
import time
import uuid

import pytest

from conftest import CLI, mbox_messages, oathtool, wrong

SENDMAIL = "/usr/sbin/sendmail"


@pytest.fixture
def mail_user():
    if not os.path.exists("/usr/sbin/exim4"):
        pytest.skip("exim4 is not installed (scripts/deps.sh test installs exim4-daemon-light)")
    name = "tsm" + uuid.uuid4().hex[:8]
    subprocess.run(["useradd", "-m", "-s", "/usr/sbin/nologin", name], check=True)
    spool = f"/var/mail/{name}"
    try:
        yield name, spool
    finally:
        subprocess.run(["userdel", "-r", name], capture_output=True, check=False)
        if os.path.exists(spool):
            os.unlink(spool)


def wait_for_mail(spool, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = mbox_messages(spool)
        if got:
            return email.message_from_bytes(got[0].as_bytes(), policy=email.policy.default)
        time.sleep(0.1)
    raise AssertionError(f"no mail in {spool} after {timeout} s")


def test_test_mail_is_delivered_by_the_system_mta_and_audited(inst, mail_user):
    user, spool = mail_user
    inst.write_config(mail_from="twostep-test@localhost")
    r = inst.cli("admin", "test-mail", f"{user}@localhost")
    assert "handed to /usr/sbin/sendmail -t -i" in r.stdout
    msg = wait_for_mail(spool)
    assert msg["Subject"] == "twostep test message"
    assert msg["From"] == "twostep-test@localhost"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert "Mail from twostep reaches this address." in msg.get_content()
    sent = [e for e in inst.audit_events() if e["event"] == "mail_sent"]
    assert sent and sent[-1]["result"] == "success" and f"{user}@localhost" in sent[-1]["detail"]


def test_failing_mail_command_is_an_error_and_audited(inst):
    inst.write_config(mail_command="/bin/false")
    r = inst.cli("admin", "test-mail", "nobody@localhost", check=False)
    assert r.returncode != 0
    assert "exited with status 1" in r.stderr
    failed = [e for e in inst.audit_events() if e["event"] == "mail_failed"]
    assert failed and failed[-1]["result"] == "failure"


def test_hanging_mail_command_is_killed_at_its_timeout(inst):
    inst.write_config(mail_command="/bin/sleep 60", mail_timeout=1)
    t0 = time.monotonic()
    r = inst.cli("admin", "test-mail", "nobody@localhost", check=False)
    took = time.monotonic() - t0
    assert r.returncode != 0
    assert "did not finish within 1 s" in r.stderr
    assert took < 10, took
    assert subprocess.run(["pgrep", "-f", "^/bin/sleep 60$"], capture_output=True).returncode != 0


def test_mail_command_gets_a_clean_environment_and_no_argv_secrets(inst, tmp_path):
    # A stand-in mail command that records what it was given: argv, environment, stdin.
    probe = tmp_path / "probe.sh"
    out = tmp_path / "seen"
    probe.write_text(f"#!/bin/sh\n{{ echo \"ARGV $*\"; env; echo STDIN; cat; }} > {out}\n")
    probe.chmod(0o755)
    inst.write_config(mail_command=f"{probe} -t -i")
    active = open(os.path.join(inst.keys, "active")).read().strip()
    key = open(os.path.join(inst.keys, active + ".key"), "rb").read()
    env = dict(os.environ, TWOSTEP_CANARY="leak", CONFIG_ENCRYPTION_KEY=base64.b64encode(key).decode())
    inst.cli("admin", "test-mail", "someone@localhost", env=env)
    seen = out.read_text()
    assert "ARGV -t -i" in seen
    assert "TWOSTEP_CANARY" not in seen and "CONFIG_ENCRYPTION_KEY" not in seen
    assert "PATH=/usr/sbin:/usr/bin:/sbin:/bin" in seen
    assert "\nTo: someone@localhost\n" in seen


@pytest.mark.parametrize("address", ["a@b\nBcc: evil@localhost", "a@localhost,evil@localhost",
                                     "<a@localhost>", "@localhost", "a@", "a b@localhost"])
def test_addresses_that_could_smuggle_headers_or_recipients_are_refused(inst, address):
    r = inst.cli("admin", "test-mail", address, check=False)
    assert r.returncode != 0
    assert "not a mail address" in r.stderr


def test_bad_mail_config_names_the_line(inst):
    inst.write_config(mail_command="sendmail -t")
    r = inst.cli("admin", "list", check=False)
    assert r.returncode != 0 and re.search(r"twostep\.conf:\d+: mail_command: expected an absolute path", r.stderr)


# --- the audit log as a tool ---------------------------------------------------------------

def real_logins(inst):
    """alice: one success, two failures; bob: one failure; carol: locked out."""
    inst.write_config(rate_limit="3/300", lockout="1h")
    for u in ("alice", "bob", "carol"):
        inst.enroll(u)
    inst.service()
    assert inst.login("alice", oathtool()).returncode == 0
    assert inst.login("alice", wrong(oathtool())).returncode != 0
    assert inst.login("alice", "12345678abc").returncode != 0
    assert inst.login("bob", wrong(oathtool())).returncode != 0
    for _ in range(3):
        inst.login("carol", wrong(oathtool()))


def audit_json(inst, *args):
    r = inst.cli("admin", "audit", "--json", *args)
    return json.loads(r.stdout)


def test_audit_filters_events_written_by_real_logins(inst):
    real_logins(inst)
    everything = audit_json(inst)
    assert everything == inst.audit_events()  # every line, in order, every field
    alice_fail = audit_json(inst, "--user", "alice", "--result", "failure")
    assert len(alice_fail) == 2 and all(e["event"] == "verify" for e in alice_fail)
    lockouts = audit_json(inst, "--event", "lockout")
    assert [e["user"] for e in lockouts] == ["carol"]
    assert audit_json(inst, "--since", "1h") == everything
    assert audit_json(inst, "--since", "2999-01-01") == []
    table = inst.cli("admin", "audit", "--user", "bob").stdout.splitlines()
    assert table[0].split() == ["TIME", "EVENT", "USER", "SERVICE", "RHOST", "RESULT", "DETAIL"]
    # A misspelt event matches nothing, and says which events there are.
    r = inst.cli("admin", "audit", "--event", "lockoutt")
    assert "no matching events" in r.stdout and "no event named lockoutt" in r.stderr and "lockout" in r.stderr, r.stderr
    # A misspelt result is refused, with the results there are (warning among them).
    r = inst.cli("admin", "audit", "--result", "failed", check=False)
    assert r.returncode == 64 and "--result: one of success, failure, refused, error, cancelled, warning" in r.stderr, r.stderr
    assert any(" bob " in l and "failure" in l and "wrong code" in l for l in table[1:])


def test_audit_reads_rotated_and_gzipped_logs_oldest_first(inst):
    real_logins(inst)
    current = inst.audit_events()
    # logrotate with delaycompress: audit.jsonl.2.gz (oldest), audit.jsonl.1, audit.jsonl.
    old = [{"time": "2026-01-01T00:00:00Z", "event": "verify", "user": "old", "service": "sshd",
            "result": "failure", "severity": "warning"}]
    mid = [{"time": "2026-02-01T00:00:00Z", "event": "verify", "user": "mid", "service": "sshd",
            "result": "success", "severity": "warning"}]
    with gzip.open(inst.audit + ".2.gz", "wt") as f:
        f.write("".join(json.dumps(e) + "\n" for e in old))
    with open(inst.audit + ".1", "w") as f:
        f.write("".join(json.dumps(e) + "\n" for e in mid))
    os.utime(inst.audit + ".2.gz", (time.time() - 200, time.time() - 200))
    os.utime(inst.audit + ".1", (time.time() - 100, time.time() - 100))
    assert audit_json(inst) == old + mid + current


def test_audit_skips_and_counts_a_damaged_line(inst):
    real_logins(inst)
    n = len(inst.audit_events())
    with open(inst.audit, "a") as f:
        f.write('{"time":"2026-11-29T00:00:00Z","event":"ver')  # a crash mid-line
    r = inst.cli("admin", "audit", "--json")
    assert len(json.loads(r.stdout)) == n
    assert "1 line(s) of the audit log could not be read" in r.stderr
    # The next event starts a line of its own instead of joining the torn one.
    assert inst.login("bob", wrong(oathtool())).returncode != 0
    r = inst.cli("admin", "audit", "--json")
    events = json.loads(r.stdout)
    assert len(events) == n + 1 and events[-1]["user"] == "bob", events[-1]
    assert "1 line(s) of the audit log could not be read" in r.stderr


def test_a_damaged_gzip_rotation_costs_its_own_lines_only(inst):
    """A reviewer flipped bytes inside an old .gz rotation: `admin audit` printed nothing at
    all (the current log neither), `--json` a lone "[", and `admin report` failed."""
    real_logins(inst)
    current = inst.audit_events()
    old = [{"time": "2026-01-01T00:00:00Z", "event": "verify", "user": f"old{i}", "service": "sshd",
            "result": "failure", "severity": "warning", "detail": "x" * 40} for i in range(3000)]
    blob = bytearray(gzip.compress("".join(json.dumps(e) + "\n" for e in old).encode()))
    blob[len(blob) // 2:len(blob) // 2 + 8] = b"\xff" * 8
    with open(inst.audit + ".2.gz", "wb") as f:
        f.write(blob)
    os.chmod(inst.audit + ".2.gz", 0o600)
    os.utime(inst.audit + ".2.gz", (time.time() - 200, time.time() - 200))
    r = inst.cli("admin", "audit", "--json")
    events = json.loads(r.stdout)
    assert events[-len(current):] == current, r.stderr
    # What inflated before the damage is read (the damage itself may inflate to garbage
    # lines first: gzip finds it at the latest at its checksum).
    recovered = events[:-len(current)]
    assert len(recovered) > 100 and recovered[:100] == old[:100], len(recovered)
    assert "line(s) of the audit log could not be read" in r.stderr, r.stderr
    assert inst.cli("admin", "report").returncode == 0


def test_audit_says_when_its_log_cannot_be_trusted_or_read(inst):
    real_logins(inst)
    os.chmod(inst.audit, 0o666)
    r = inst.cli("admin", "audit")
    assert "others could have written its lines" in r.stderr, r.stderr
    os.chmod(inst.audit, 0o600)
    os.rename(inst.audit, inst.audit + ".1")
    os.mkdir(inst.audit)
    r = inst.cli("admin", "report")
    assert f"{inst.audit}: not a regular file; skipped" in r.stderr, r.stderr
    os.rmdir(inst.audit)
    os.mkfifo(inst.audit)   # a FIFO neither hangs the reader nor counts
    r = inst.cli("admin", "audit", "--user", "alice")
    assert "not a regular file" in r.stderr and "alice" in r.stdout, r.stdout + r.stderr
    os.remove(inst.audit)
    assert "does not exist" in inst.cli("admin", "audit").stderr
    # The documented /var/log/twostep/audit.jsonl: nothing creates the directory.
    inst.write_config(audit_log=os.path.join(inst.root, "log", "audit.jsonl"))
    r = inst.cli("admin", "audit")
    assert f"its directory {inst.root}/log does not exist, so no event is written there" in r.stderr, r.stderr
    # A directory others may write: they can remove the log (doctor said "ok").
    os.mkdir(os.path.join(inst.root, "log"), 0o777)
    os.chmod(os.path.join(inst.root, "log"), 0o777)
    r = inst.cli("doctor", check=False)
    assert f"its directory {inst.root}/log is owned by uid 0 with mode 777" in r.stdout + r.stderr, r.stdout + r.stderr


def test_a_fifo_in_place_of_the_config_fails_at_once(inst):
    os.rename(inst.conf, inst.conf + ".real")
    os.mkfifo(inst.conf)
    r = subprocess.run([CLI, "admin", "list", "--config", inst.conf], capture_output=True, text=True, timeout=20)
    assert r.returncode != 0 and "not a regular file" in r.stderr, r.stdout + r.stderr
    inst.service()
    started = time.monotonic()
    assert inst.login("alice", oathtool()).returncode != 0
    assert time.monotonic() - started < 20
    os.remove(inst.conf)
    os.rename(inst.conf + ".real", inst.conf)


def test_report_figures_match_real_logins(inst):
    real_logins(inst)
    inst.cli("admin", "backup-codes", "alice", "--json")
    rep = json.loads(inst.cli("admin", "report", "--json").stdout)
    assert rep["enrolled"] == 3 and sorted(rep["users"]) == ["alice", "bob", "carol"]
    assert sorted(rep["no_backup_codes"]) == ["bob", "carol"]
    assert [l["user"] for l in rep["locked_out"]] == ["carol"]
    assert rep["failures_24h"] == {"alice": 2, "bob": 1, "carol": 3}
    assert rep["unreadable"] == []
    text = inst.cli("admin", "report").stdout
    assert "enrolled users: 3" in text and "locked out now: carol" in text


def test_report_names_an_unreadable_record_and_still_reports_the_rest(inst):
    real_logins(inst)
    path = os.path.join(inst.state, "bob.record")
    data = bytearray(open(path, "rb").read())
    data[-1] ^= 0xFF
    open(path, "wb").write(bytes(data))
    rep = json.loads(inst.cli("admin", "report", "--json").stdout)
    assert rep["unreadable"] == ["bob"] and rep["enrolled"] == 3


def test_audit_and_report_need_root(inst, mail_user):
    user, _ = mail_user
    os.chmod(inst.root, 0o755)
    os.chmod(inst.conf, 0o644)
    for cmd in (["admin", "audit"], ["admin", "report"], ["admin", "test-mail", "x@localhost"]):
        r = subprocess.run(["runuser", "-u", user, "--", inst_cli(), *cmd, "--config", inst.conf],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and "needs root" in r.stderr, (cmd, r.stderr)


def inst_cli():
    from conftest import CLI
    return CLI
