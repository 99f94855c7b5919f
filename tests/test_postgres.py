# SPDX-License-Identifier: Apache-2.0
"""store = postgresql: one enrolment for a fleet. A real PostgreSQL 15 server (tests/pgserver.py:
initdb and pg_ctl as `postgres`, SCRAM passwords over TLS with sslmode=verify-full against a
CA made here) serves two "hosts": two configs with their own state dirs and PAM services,
the same key dir and database. Logins go through libpam (tests/harness/pam_harness.c) with
codes from oathtool; the database is inspected and damaged with psql as its superuser."""
import base64
import concurrent.futures
import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import CLI, HARNESS, HELPER, MODULE, SECRET, Installation, harness_login, oathtool, wrong
from pgserver import PGBIN, PostgresServer
from test_selfservice import Host, wait_for_socket

PAM_SUCCESS = 0
PAM_AUTH_ERR = 7
PAM_AUTHINFO_UNAVAIL = 9
PAM_MAXTRIES = 11
TIMEOUT = 10

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(not os.path.exists(f"{PGBIN}/initdb"), reason="postgresql-15 missing"),
]


@pytest.fixture(scope="session")
def pg():
    server = PostgresServer()
    try:
        yield server
    finally:
        server.close()


class Fleet:
    """Two hosts on one database: A and B differ in config, state dir and PAM services."""

    def __init__(self, pg, root, **conf):
        self.pg = pg
        self.root = root
        self.db = pg.create_database()
        self.common = dict(store="postgresql", database=pg.uri(self.db),
                           database_password_file=pg.password_file, **conf)
        self.a = Installation(os.path.join(root, "a"), **self.common)
        self.b = Installation(os.path.join(root, "b"), key_dir=self.a.keys, **self.common)
        self.a.cli("admin", "db", "init")
        self.servers = []
        for h in (self.a, self.b):
            self.service(h, "ts")

    def service(self, host, name, args=""):
        with open(os.path.join(host.pamdir, name), "w") as f:
            f.write(f"auth required {MODULE} helper={HELPER} config={host.conf} timeout={TIMEOUT} {args}\n")
        return name

    def serve(self, host):
        """Runs `twostep-helper serve` for `host`; returns a PAM service that uses its socket."""
        sock = os.path.join(os.path.dirname(host.conf), "verify.sock")
        proc = subprocess.Popen([HELPER, "serve", "--config", host.conf, "--socket", sock],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.servers.append(proc)
        wait_for_socket(sock, proc)
        return self.service(host, "ts-sock", f"socket={sock}")

    def login(self, host, user, answer, service="ts"):
        return harness_login(host.pamdir, service, user, answer)

    def sql(self, statement):
        return self.pg.psql(statement, db=self.db)

    def close(self):
        for proc in self.servers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)


@pytest.fixture
def fleet(pg):
    for path in (CLI, HELPER, MODULE, HARNESS):
        assert os.path.exists(path), f"{path} missing: run `make` first"
    root = tempfile.mkdtemp(prefix="twostep-fleet-")
    f = Fleet(pg, root)
    try:
        yield f
    finally:
        f.close()
        shutil.rmtree(root, ignore_errors=True)


def local_files(*hosts):
    """Whatever the hosts wrote to their state dirs (a database store writes nothing there;
    the host's own clock_unsynchronised marker, `.clock-*`, is not the store's)."""
    return sorted(n for h in hosts for n in os.listdir(h.state) if not n.startswith(".clock-"))


# --- one store for the fleet -----------------------------------------------------------------

def test_code_accepted_on_one_host_is_refused_on_the_other(fleet):
    fleet.a.enroll("alice")
    t = time.time()
    assert fleet.login(fleet.a, "alice", oathtool(at=t)) == PAM_SUCCESS
    assert fleet.login(fleet.b, "alice", oathtool(at=t)) == PAM_AUTH_ERR
    # The next code is good on B, and then spent on A.
    assert fleet.login(fleet.b, "alice", oathtool(at=t + 30)) == PAM_SUCCESS
    assert fleet.login(fleet.a, "alice", oathtool(at=t + 30)) == PAM_AUTH_ERR
    # Both hosts see one enrolment; the record and state live in the database only.
    assert json.loads(fleet.b.cli("admin", "show", "alice", "--json").stdout)["enrolled"] is True
    assert local_files(fleet.a, fleet.b) == []
    assert fleet.sql("SELECT count(*) FROM twostep_users WHERE name = 'alice' AND record IS NOT NULL") == "1"
    # The audit log is mirrored into the database, from both hosts (a login's rows are
    # written once its verdict is out, so the last may still be on its way).
    deadline = time.monotonic() + 10
    while True:
        rows = fleet.sql("SELECT event || ':' || result FROM twostep_audit WHERE user_name = 'alice' AND event = 'verify'").split()
        if sorted(rows) == ["verify:failure"] * 2 + ["verify:success"] * 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert sorted(rows) == ["verify:failure"] * 2 + ["verify:success"] * 2, rows
    hosts = fleet.sql("SELECT DISTINCT host FROM twostep_audit").split()
    assert len(hosts) == 1 and hosts[0], hosts   # one machine plays both hosts here


def test_parallel_logins_with_one_code_over_both_hosts_pass_once(fleet):
    fleet.a.enroll("dave")
    sock_service = fleet.serve(fleet.b)   # B relays to its running helper; A spawns one per login
    code = oathtool()
    jobs = [(fleet.a, "ts") if i % 2 else (fleet.b, sock_service) for i in range(24)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=24) as pool:
        results = list(pool.map(lambda j: fleet.login(j[0], "dave", code, service=j[1]), jobs))
    assert results.count(PAM_SUCCESS) == 1, results
    assert all(r in (PAM_SUCCESS, PAM_AUTH_ERR, PAM_MAXTRIES) for r in results), results


def test_failures_on_both_hosts_add_up_to_one_lockout(pg):
    root = tempfile.mkdtemp(prefix="twostep-fleet-")
    fleet = Fleet(pg, root, rate_limit="4/300", lockout="1h")
    try:
        fleet.a.enroll("erin")
        t = time.time()
        bad = wrong(oathtool(at=t))
        assert fleet.login(fleet.a, "erin", bad) == PAM_AUTH_ERR
        assert fleet.login(fleet.b, "erin", bad) == PAM_AUTH_ERR
        assert fleet.login(fleet.a, "erin", bad) == PAM_AUTH_ERR
        assert fleet.login(fleet.b, "erin", bad) == PAM_MAXTRIES   # the 4th, on either host
        # Locked on both: even the right code is refused.
        assert fleet.login(fleet.a, "erin", oathtool(at=t)) == PAM_MAXTRIES
        assert fleet.login(fleet.b, "erin", oathtool(at=t)) == PAM_MAXTRIES
        for h in (fleet.a, fleet.b):
            assert json.loads(h.cli("admin", "show", "erin", "--json").stdout)["locked"] is True
        fleet.b.cli("admin", "unlock", "erin")
        assert json.loads(fleet.a.cli("admin", "show", "erin", "--json").stdout)["locked"] is False
        assert fleet.login(fleet.a, "erin", oathtool(at=t)) == PAM_SUCCESS
    finally:
        fleet.close()
        shutil.rmtree(root, ignore_errors=True)


def test_user_enrolled_over_host_a_socket_logs_in_on_host_b(pg):
    root = tempfile.mkdtemp(prefix="twostep-fleet-")
    db = pg.create_database()
    conf = dict(store="postgresql", database=pg.uri(db), database_password_file=pg.password_file)
    os.chmod(root, 0o755)  # the enrolling user reads host A's config
    os.makedirs(os.path.join(root, "a"))
    host_a = Host(os.path.join(root, "a"), **conf)
    try:
        host_a.inst.cli("admin", "db", "init")
        host_b = Installation(os.path.join(root, "b"), key_dir=host_a.inst.keys, **conf)
        svc_b = "ts"
        with open(os.path.join(host_b.pamdir, svc_b), "w") as f:
            f.write(f"auth required {MODULE} helper={HELPER} config={host_b.conf} timeout={TIMEOUT}\n")
        host_a.serve("serve")
        user = host_a.user()
        rc, out, err, key = host_a.enroll(user)
        assert rc == 0, out + err
        code = host_a.next_code(key)
        assert harness_login(host_b.pamdir, svc_b, user, code) == PAM_SUCCESS
        # Spent for the fleet: the same code on A is a replay.
        host_a.inst.service()
        assert host_a.inst.login(user, code).returncode != 0
        assert local_files(host_b) == []
        st = json.loads(host_a.as_user(user, "status", "--json").stdout)
        assert st["enrolled"] is True and st["backup_codes_left"] == 10
    finally:
        host_a.close()
        shutil.rmtree(root, ignore_errors=True)


def test_database_down_fails_closed_within_the_timeout_and_recovers(fleet):
    fleet.a.enroll("frank")
    sock_service = fleet.serve(fleet.a)
    t = time.time()
    assert fleet.login(fleet.a, "frank", oathtool(at=t - 30), service=sock_service) == PAM_SUCCESS
    fleet.pg.stop()
    try:
        for host, svc in ((fleet.a, sock_service), (fleet.b, "ts"), (fleet.a, "ts")):
            start = time.monotonic()
            assert fleet.login(host, "frank", oathtool(at=t), service=svc) == PAM_AUTHINFO_UNAVAIL
            assert time.monotonic() - start < TIMEOUT
        # Nothing fell back to local files; the failure is audited locally.
        assert local_files(fleet.a, fleet.b) == []
        assert any(e["user"] == "frank" and e["result"] == "error" for e in fleet.b.audit_events())
    finally:
        fleet.pg.start()
    # Back: the running helper's workers reconnect, spawned helpers connect afresh, and the
    # code that could not be checked while the database was down is good now.
    assert fleet.login(fleet.a, "frank", oathtool(at=t), service=sock_service) == PAM_SUCCESS
    assert fleet.login(fleet.b, "frank", oathtool(at=t + 30)) == PAM_SUCCESS
    assert fleet.login(fleet.a, "frank", oathtool(at=t + 30)) == PAM_AUTH_ERR


def test_swapped_or_tampered_row_is_refused_and_only_that_user_affected(fleet):
    others = "JBSWY3DPEHPK3PXQJBSWY3DPEHPK3PXQ"
    for user, secret in (("gina", SECRET), ("hank", others), ("ivan", SECRET), ("judy", SECRET)):
        fleet.a.enroll(user, secret)
    # gina's and hank's sealed bytes swapped; ivan's ciphertext has one bit flipped.
    fleet.sql("""
        UPDATE twostep_users u SET record = o.record
        FROM twostep_users o
        WHERE (u.name, o.name) IN (('gina', 'hank'), ('hank', 'gina'))""")
    fleet.sql("UPDATE twostep_users SET record = set_byte(record, length(record) - 1, "
              "get_byte(record, length(record) - 1) # 1) WHERE name = 'ivan'")
    t = time.time()
    assert fleet.login(fleet.a, "gina", oathtool(SECRET, at=t)) == PAM_AUTHINFO_UNAVAIL
    assert fleet.login(fleet.b, "gina", oathtool(others, at=t)) == PAM_AUTHINFO_UNAVAIL
    assert fleet.login(fleet.b, "hank", oathtool(others, at=t)) == PAM_AUTHINFO_UNAVAIL
    assert fleet.login(fleet.a, "hank", oathtool(SECRET, at=t)) == PAM_AUTHINFO_UNAVAIL
    assert fleet.login(fleet.a, "ivan", oathtool(SECRET, at=t)) == PAM_AUTHINFO_UNAVAIL
    assert fleet.login(fleet.b, "judy", oathtool(SECRET, at=t)) == PAM_SUCCESS
    errors = [e["detail"] for e in fleet.a.audit_events() if e["user"] in ("gina", "ivan") and e["result"] == "error"]
    assert errors and all("does not authenticate" in d for d in errors), errors


def test_password_file_must_be_private(fleet):
    fleet.a.enroll("kate")
    shutil.copy(fleet.pg.password_file, os.path.join(fleet.root, "pw"))
    loose = os.path.join(fleet.root, "pw")
    os.chmod(loose, 0o644)
    fleet.a.write_config(database_password_file=loose,
                         **{k: v for k, v in fleet.common.items() if k != "database_password_file"})
    r = fleet.a.cli("admin", "show", "kate", check=False)
    assert r.returncode != 0 and "group or others" in r.stderr, r.stderr
    assert fleet.login(fleet.a, "kate", oathtool()) == PAM_AUTHINFO_UNAVAIL
    # A password in the URI is refused outright: it would sit in a world-readable config.
    fleet.a.write_config(**{**fleet.common, "database": fleet.common["database"].replace("twostep@", "twostep:pw@")})
    r = fleet.a.cli("admin", "show", "kate", check=False)
    assert r.returncode != 0 and "must not hold a password" in r.stderr, r.stderr


# --- moving between stores -------------------------------------------------------------------

def test_migrate_files_to_postgresql_and_back_with_1000_users(pg):
    root = tempfile.mkdtemp(prefix="twostep-migrate-")
    try:
        db = pg.create_database()
        inst = Installation(root)
        inst.service()
        users = [f"mu{i:04d}" for i in range(1000)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(inst.enroll, users))
        t = time.time()
        used = oathtool(at=t)
        assert inst.login("mu0000", used).returncode == 0
        with open(os.path.join(inst.state, "mu0001.record"), "rb") as f:
            original = f.read()

        uri = pg.uri(db)
        to_pg = ["admin", "migrate", "--to", "postgresql", "--database", uri,
                 "--database-password-file", pg.password_file, "--json"]
        inst.cli("admin", "db", "init", "--database", uri, "--database-password-file", pg.password_file)
        first = json.loads(inst.cli(*to_pg).stdout)
        assert (first["copied"], first["unchanged"], first["failed"]) == (1000, 0, [])
        again = json.loads(inst.cli(*to_pg).stdout)
        assert (again["copied"], again["unchanged"], again["failed"]) == (0, 1000, [])

        # Switch the host to the database: used codes stay used, logins work.
        inst.write_config(store="postgresql", database=uri, database_password_file=pg.password_file)
        assert inst.login("mu0000", used).returncode != 0
        assert inst.login("mu0999", used).returncode == 0
        assert inst.login("mu0001", oathtool(at=t + 30)).returncode == 0

        back = os.path.join(root, "state-back")
        to_files = ["admin", "migrate", "--to", "files", "--state-dir", back, "--json"]
        first = json.loads(inst.cli(*to_files).stdout)
        assert (first["copied"], first["unchanged"], first["failed"]) == (1000, 0, [])
        again = json.loads(inst.cli(*to_files).stdout)
        assert (again["copied"], again["unchanged"], again["failed"]) == (0, 1000, [])
        # Sealed records travel byte for byte.
        with open(os.path.join(back, "mu0001.record"), "rb") as f:
            assert f.read() == original

        inst.write_config(state_dir=back)
        assert inst.login("mu0000", used).returncode != 0
        assert inst.login("mu0999", used).returncode != 0
        assert inst.login("mu0001", oathtool(at=t + 30)).returncode != 0
        assert inst.login("mu0500", used).returncode == 0
        assert sum(1 for n in os.listdir(back) if n.endswith(".record")) == 1000
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_new_host_joins_with_an_exported_key_bundle(fleet):
    fleet.a.enroll("lena")
    bundle = os.path.join(fleet.root, "keys.bundle")
    passphrase = "correct horse battery staple"
    r = fleet.a.cli("admin", "export-key", "--output", bundle, input=f"{passphrase}\n{passphrase}x\n", check=False)
    assert r.returncode != 0 and "differ" in r.stderr and not os.path.exists(bundle)
    fleet.a.cli("admin", "export-key", "--output", bundle, input=f"{passphrase}\n{passphrase}\n")
    assert os.stat(bundle).st_mode & 0o777 == 0o600
    with open(bundle) as f:
        text = f.read()
    for name in os.listdir(fleet.a.keys):
        if name.endswith(".key"):
            with open(os.path.join(fleet.a.keys, name), "rb") as k:
                raw = k.read()
            assert raw.hex() not in text and base64.b64encode(raw).decode() not in text

    # A new host with keys of its own cannot open the fleet's records...
    c = Installation(os.path.join(fleet.root, "c"), **fleet.common)
    fleet.service(c, "ts")
    t = time.time()
    assert fleet.login(c, "lena", oathtool(at=t)) == PAM_AUTHINFO_UNAVAIL
    r = c.cli("admin", "import-key", bundle, input="not the passphrase\n", check=False)
    assert r.returncode != 0 and "wrong passphrase" in r.stderr
    # ...until it imports the bundle; then what it seals, the others open.
    c.cli("admin", "import-key", bundle, input=passphrase + "\n")
    assert fleet.login(c, "lena", oathtool(at=t)) == PAM_SUCCESS
    codes = json.loads(c.cli("admin", "backup-codes", "lena", "--json").stdout)["backup_codes"]
    assert fleet.login(fleet.a, "lena", codes[0]) == PAM_SUCCESS
    assert fleet.login(fleet.b, "lena", codes[0]) == PAM_AUTH_ERR


def test_rotate_key_across_the_fleet_while_logins_go_on(fleet):
    users = [f"rk{i:02d}" for i in range(40)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(fleet.a.enroll, users))
    old = fleet.sql("SELECT DISTINCT key_id FROM twostep_users WHERE record IS NOT NULL")
    # A new key, not yet used, carried to host C (keys of its own) before any record needs it.
    r = fleet.a.cli("admin", "rotate-key", "--prepare")
    new = r.stdout.split("master key ")[1].split()[0]
    bundle = os.path.join(fleet.root, "keys.bundle")
    passphrase = "rotate these keys now"
    fleet.a.cli("admin", "export-key", "--output", bundle, input=f"{passphrase}\n{passphrase}\n")
    c = Installation(os.path.join(fleet.root, "c"), **fleet.common)
    fleet.service(c, "ts")
    c.cli("admin", "import-key", bundle, input=passphrase + "\n")
    assert fleet.sql("SELECT DISTINCT key_id FROM twostep_users WHERE record IS NOT NULL") == old

    # Re-sealing on A (one short transaction per row) while C logs users in.
    t = time.time()
    code = oathtool(at=t)
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        rotation = pool.submit(fleet.a.cli, "admin", "rotate-key", "--use", new)
        logins = list(pool.map(lambda u: fleet.login(c, u, code), users[:20]))
        out = rotation.result().stdout
    assert logins == [PAM_SUCCESS] * 20, logins
    assert "40 record(s) re-sealed" in out, out
    assert fleet.sql("SELECT DISTINCT key_id FROM twostep_users WHERE record IS NOT NULL") == new

    # C still seals with the old key (its active one) until it imports again; running the
    # rotation again picks up exactly what is left.
    c.cli("admin", "backup-codes", "rk00", "--json")
    assert fleet.sql("SELECT key_id FROM twostep_users WHERE name = 'rk00'") == old
    out = fleet.a.cli("admin", "rotate-key", "--use", new).stdout
    # Only the one row left under the old key is touched (a census, not 40 re-seals).
    assert "1 record(s) still under an older key" in out and "1 record(s) re-sealed" in out, out
    assert fleet.login(c, "rk39", code) == PAM_SUCCESS
    assert fleet.login(fleet.a, "rk00", oathtool(at=t + 30)) == PAM_SUCCESS   # the step after rk00's first


# --- one login's transaction: BEGIN + the locking SELECT in one pipeline, the writes + COMMIT in another

def row_bytes(fleet, user):
    """The user's row as the server holds it (hex of record and state)."""
    return fleet.sql(f"SELECT encode(record, 'hex') || ':' || encode(state, 'hex') FROM twostep_users WHERE name = '{user}'")


def failing_trigger(fleet, when, body="RAISE EXCEPTION 'injected failure'"):
    """A trigger on twostep_users that fails the transaction: `before` fails the UPDATE sent
    in the COMMIT's pipeline, `commit` (a deferred constraint trigger) fails the COMMIT
    itself, after every statement of the transaction has succeeded."""
    fleet.sql(f"CREATE OR REPLACE FUNCTION ts_fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body}; RETURN NEW; END $$")
    if when == "before":
        fleet.sql("CREATE TRIGGER ts_fail BEFORE UPDATE ON twostep_users FOR EACH ROW EXECUTE FUNCTION ts_fail()")
    else:
        fleet.sql("CREATE CONSTRAINT TRIGGER ts_fail AFTER UPDATE ON twostep_users DEFERRABLE INITIALLY DEFERRED "
                  "FOR EACH ROW EXECUTE FUNCTION ts_fail()")


@pytest.mark.parametrize("when", ["before", "commit", "connection"])
def test_a_failure_inside_the_login_transaction_fails_closed_and_spends_nothing(fleet, when):
    """The state write goes to the server with the COMMIT: whether the write fails, the
    COMMIT fails, or the connection dies mid-pipeline, the login is refused as unavailable,
    the row is as before (the code was not spent), and the running helper's next login on
    the same worker connection works (the connection is reset, never reused half-way)."""
    user = "pipe" + when[:4]
    fleet.a.enroll(user)
    sock_service = fleet.serve(fleet.a)
    t = time.time()
    assert fleet.login(fleet.a, user, oathtool(at=t - 30), service=sock_service) == PAM_SUCCESS
    before = row_bytes(fleet, user)
    seen = len(fleet.a.audit_events()), len(fleet.b.audit_events())
    body = ("PERFORM pg_terminate_backend(pg_backend_pid())" if when == "connection"
            else "RAISE EXCEPTION 'injected failure'")
    failing_trigger(fleet, "before" if when == "connection" else when, body)
    try:
        for host, svc in ((fleet.a, sock_service), (fleet.b, "ts")):
            assert fleet.login(host, user, oathtool(at=t), service=svc) == PAM_AUTHINFO_UNAVAIL
            assert row_bytes(fleet, user) == before
        # Failed closed and audited as an error, never as a success that was not written.
        said = fleet.a.audit_events()[seen[0]:] + fleet.b.audit_events()[seen[1]:]
        assert [e["result"] for e in said if e["user"] == user] == ["error", "error"], said
    finally:
        fleet.sql("DROP TRIGGER IF EXISTS ts_fail ON twostep_users")
    # Nothing was spent: the same code passes now, through the same running helper, once.
    assert fleet.login(fleet.a, user, oathtool(at=t), service=sock_service) == PAM_SUCCESS
    assert row_bytes(fleet, user) != before
    assert fleet.login(fleet.b, user, oathtool(at=t)) == PAM_AUTH_ERR


@contextlib.contextmanager
def mail_fleet(pg):
    """A fleet whose hosts mail through exim4, and an enrolled local mail user."""
    from test_recovery import MAIL_FROM, drop_mail_user, make_mail_user
    if not os.path.exists("/usr/sbin/exim4"):
        pytest.skip("exim4 is not installed")
    root = tempfile.mkdtemp(prefix="twostep-fleet-")
    f = Fleet(pg, root, mail_from=MAIL_FROM, email_fallback="on")
    user = make_mail_user()
    try:
        f.a.enroll(user)
        yield f, user
    finally:
        f.sql("DROP TRIGGER IF EXISTS ts_fail ON twostep_users")
        f.close()
        drop_mail_user(user)
        shutil.rmtree(root, ignore_errors=True)


def test_a_failed_commit_after_an_email_code_is_audited_only_as_an_error(pg):
    """The email fallback's code check writes under the lock like a code does: when its
    COMMIT fails, the login is unavailable and the audit says "error", never a "success"
    that was not written (what it says waits for the COMMIT)."""
    from test_recovery import code_in, mails, wait_for_mails
    with mail_fleet(pg) as (f, user):
        f.a.cli("admin", "email", user, f"{user}@localhost")
        p = subprocess.Popen([CLI, "try", "--service", "ts", "--pam-dir", f.a.pamdir, "--user", user],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            p.stdin.write("email\n")
            p.stdin.flush()
            code = code_in(wait_for_mails(user, len(mails(user)) + 1)[-1], "Your one-time code")
            # The code was reserved and mailed (its own transaction); the check's COMMIT fails.
            before = row_bytes(f, user)
            seen = len(f.a.audit_events())
            failing_trigger(f, "commit")
            out, err = p.communicate(code + "\n", timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
        assert p.returncode != 0 and "unavailable" in out + err, out + err
        assert row_bytes(f, user) == before
        said = [e["result"] for e in f.a.audit_events()[seen:] if e["user"] == user and e["event"] == "verify"]
        assert said == ["error"], f.a.audit_events()[seen:]


def test_a_failed_commit_of_an_address_confirmation_is_audited_only_as_an_error(pg):
    """`twostep email --confirm` writes the confirmed address under the lock: when its COMMIT
    fails, the address stays pending and the audit has no "address confirmed" that was not
    written (what the check says waits for the COMMIT)."""
    from test_recovery import code_in, wait_for_mails
    with mail_fleet(pg) as (f, user):
        f.a.cli("email", "--user", user, f"{user}@localhost", input=oathtool() + "\n\n")
        code = code_in(wait_for_mails(user, 1)[-1], "Confirmation code")
        before = row_bytes(f, user)
        seen = len(f.a.audit_events())
        failing_trigger(f, "commit")
        try:
            r = f.a.cli("email", "--user", user, "--confirm", input=code + "\n", check=False)
        finally:
            f.sql("DROP TRIGGER IF EXISTS ts_fail ON twostep_users")
        assert r.returncode != 0 and "Could not confirm the address" in r.stdout + r.stderr, r
        assert row_bytes(f, user) == before
        said = [(e["event"], e["result"]) for e in f.a.audit_events()[seen:] if e["user"] == user]
        assert ("email", "success") not in said, said
        assert "email_pending" in f.a.cli("admin", "show", user).stdout
        # With the trigger gone the same code confirms it.
        f.a.cli("email", "--user", user, "--confirm", input=code + "\n")
        assert f"email: {user}@localhost" in f.a.cli("admin", "show", user).stdout
        confirmed = [e for e in f.a.audit_events()[seen:] if e["user"] == user and e["event"] == "email"]
        assert [(e["result"], e["detail"]) for e in confirmed][-1] == ("success", f"address confirmed: {user}@localhost")


def test_a_row_changed_on_another_host_while_the_prompt_is_open_is_opened_again(fleet):
    """Host A's running helper keeps the record it opened before the prompt for the check
    under the row lock only while the row holds the very bytes it was opened from: a secret
    replaced, or a backup code spent, on host B meanwhile is seen."""
    from types import SimpleNamespace
    from test_socket_mode import changes_while_the_prompt_is_open_are_seen
    fleet.serve(fleet.a)
    site = SimpleNamespace(sock=os.path.join(os.path.dirname(fleet.a.conf), "verify.sock"), inst=fleet.a)
    changes_while_the_prompt_is_open_are_seen(site, "rowmix", fleet.b.cli,
                                              lambda code: fleet.login(fleet.b, "rowmix", code) == PAM_SUCCESS)


def test_a_failed_state_write_also_undoes_the_backup_code_written_with_it(fleet):
    """A backup code sends two writes with the COMMIT (the record without the code, then the
    state): when the second fails, the first is rolled back too and the code still works once."""
    fleet.a.enroll("pipebk")
    codes = json.loads(fleet.a.cli("admin", "backup-codes", "pipebk", "--json").stdout)["backup_codes"]
    before = row_bytes(fleet, "pipebk")
    # Fails only the state write (the update that leaves the record as it is): the record's
    # write before it in the same pipeline has succeeded by then.
    failing_trigger(fleet, "before",
                    "IF NEW.record IS NOT DISTINCT FROM OLD.record THEN RAISE EXCEPTION 'injected failure'; END IF")
    try:
        assert fleet.login(fleet.a, "pipebk", codes[0]) == PAM_AUTHINFO_UNAVAIL
        assert row_bytes(fleet, "pipebk") == before
    finally:
        fleet.sql("DROP TRIGGER IF EXISTS ts_fail ON twostep_users")
    assert fleet.login(fleet.b, "pipebk", codes[0]) == PAM_SUCCESS
    assert fleet.login(fleet.a, "pipebk", codes[0]) == PAM_AUTH_ERR


def test_a_record_restored_from_an_old_copy_is_refused_as_in_the_file_store(fleet):
    """A reviewer copied a user's row aside, spent a backup code on host A, put the old
    record column back with UPDATE, and the spent code passed again on host B: the
    database store sealed every record as generation 0 and never compared it with the
    generation its state names, as the file store does."""
    fleet.a.enroll("restored")
    codes = json.loads(fleet.a.cli("admin", "backup-codes", "restored", "--json").stdout)["backup_codes"]
    fleet.sql("CREATE TABLE snap AS SELECT * FROM twostep_users WHERE name = 'restored'")
    assert fleet.login(fleet.a, "restored", codes[1]) == PAM_SUCCESS
    fleet.sql("CREATE TABLE newest AS SELECT * FROM twostep_users WHERE name = 'restored'")
    fleet.sql("UPDATE twostep_users u SET record = s.record FROM snap s WHERE u.name = s.name")
    assert fleet.login(fleet.b, "restored", codes[1]) == PAM_AUTHINFO_UNAVAIL
    r = fleet.b.cli("admin", "show", "restored", check=False)
    assert "a restored copy is refused" in r.stdout + r.stderr, r.stdout + r.stderr
    # The record as written last opens again: the spent code stays spent, the next passes.
    fleet.sql("UPDATE twostep_users u SET record = s.record FROM newest s WHERE u.name = s.name")
    assert fleet.login(fleet.b, "restored", codes[1]) == PAM_AUTH_ERR
    assert fleet.login(fleet.b, "restored", codes[2]) == PAM_SUCCESS


def test_doctor_warns_when_tls_to_the_database_does_not_check_the_server(fleet):
    """A reviewer left sslmode out of `database`: libpq then prefers TLS without checking the
    server, logins work, and only `admin db status` said so. doctor now does too."""
    def check():
        r = subprocess.run([CLI, "doctor", "--json", "--config", fleet.a.conf], capture_output=True, text=True, timeout=60)
        return [c for c in json.loads(r.stdout)["checks"] if c["check"] == "database"]
    assert [c["result"] for c in check()] == ["ok"] and "verify-full" in check()[0]["detail"]
    weak = fleet.common["database"].replace("sslmode=verify-full", "sslmode=require")
    fleet.a.write_config(**{**fleet.common, "database": weak})
    (found,) = check()
    assert found["result"] == "warn" and "sslmode=require" in found["detail"], found


def test_parallel_logins_with_one_code_through_two_running_helpers_pass_once(fleet):
    """Both hosts' running helpers (pre-forked workers, each with its pipelined
    transaction) race with one code: the row lock lets exactly one pass."""
    services = [fleet.serve(h) for h in (fleet.a, fleet.b)]
    for round in range(3):
        user = f"pipepar{round}"   # 15 wrong answers lock a user out: one user per race
        fleet.a.enroll(user)
        code = oathtool()
        jobs = [(fleet.a if i % 2 else fleet.b, services[i % 2]) for i in range(16)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(lambda j: fleet.login(j[0], user, code, service=j[1]), jobs))
        assert results.count(PAM_SUCCESS) == 1, results
        assert all(r in (PAM_SUCCESS, PAM_AUTH_ERR, PAM_MAXTRIES) for r in results), results


def files_host_and_database(pg, root):
    """A host on the file store in `root` (with a PAM service) and an empty database to
    migrate to: (installation, database name, URI, the CLI's database arguments)."""
    db = pg.create_database()
    uri = pg.uri(db)
    inst = Installation(root)
    inst.service()
    return inst, db, uri, ["--database", uri, "--database-password-file", pg.password_file]


def user_in_database(pg, root, user):
    """files_host_and_database, with `user` enrolled in files, migrated to the database, and
    the host's config switched to it."""
    inst, db, uri, dbargs = files_host_and_database(pg, root)
    inst.enroll(user)
    inst.cli("admin", "db", "init", *dbargs)
    inst.cli("admin", "migrate", "--to", "postgresql", *dbargs)
    inst.write_config(store="postgresql", database=uri, database_password_file=pg.password_file)
    return inst, db, uri, dbargs


def test_migrate_overwrite_copies_a_user_whose_generation_went_down_and_unlock_keeps_it(pg):
    """Two faults a fourth review found in the database's generations:
    - `migrate --overwrite` of a user reset and enrolled again in files (then generation 1,
      now 6: a reset leaves a tombstone and generations go on) over the row an earlier
      migrate wrote and the database moved on (generation 7) kept the row's higher
      generation in the state, and the copy was refused as older than its state: the rerun
      the runbook asks for never got to `0 copied`;
    - `admin unlock` of a damaged state in the database started the generations again, so
      an older copy of the record opened."""
    root = tempfile.mkdtemp(prefix="twostep-migrate3-")
    try:
        inst, db, uri, dbargs = files_host_and_database(pg, root)
        inst.enroll("mgcarl")
        for _ in range(3):
            inst.cli("admin", "backup-codes", "mgcarl")
        inst.cli("admin", "db", "init", *dbargs)
        inst.cli("admin", "migrate", "--to", "postgresql", *dbargs)
        inst.write_config(store="postgresql", database=uri, database_password_file=pg.password_file)
        for _ in range(3):
            inst.cli("admin", "backup-codes", "mgcarl")
        inst.write_config()
        inst.cli("admin", "reset", "mgcarl")
        inst.enroll("mgcarl")
        r = inst.cli("admin", "migrate", "--to", "postgresql", "--overwrite", *dbargs, "--json", check=False)
        report = json.loads(r.stdout)
        assert r.returncode == 1 and (report["copied"], report["failed"]) == (1, []), r.stdout + r.stderr
        # Said, since a copy older than the row is also what a mistaken rerun writes.
        assert report["overwritten_newer"] == [{"user": "mgcarl", "destination_generation": 7,
                                                "copied_generation": 6}], report
        r = inst.cli("admin", "migrate", "--to", "postgresql", "--overwrite", *dbargs)
        assert "0 copied, 1 unchanged" in r.stdout, r.stdout
        inst.write_config(store="postgresql", database=uri, database_password_file=pg.password_file)
        assert inst.login("mgcarl", oathtool()).returncode == 0
        # unlock of a damaged state keeps the generation: an older record stays refused.
        for _ in range(2):
            inst.cli("admin", "backup-codes", "mgcarl")
        old = pg.psql("SELECT encode(record, 'hex') FROM twostep_users WHERE name = 'mgcarl'", db=db)
        inst.cli("admin", "backup-codes", "mgcarl")
        pg.psql("UPDATE twostep_users SET state = 'damaged' WHERE name = 'mgcarl'", db=db)
        inst.cli("admin", "unlock", "mgcarl")
        inst.cli("admin", "backup-codes", "mgcarl")
        pg.psql(f"UPDATE twostep_users SET record = decode('{old}', 'hex') WHERE name = 'mgcarl'", db=db)
        r = inst.cli("admin", "show", "mgcarl", check=False)
        assert "a restored copy is refused" in r.stdout + r.stderr, r.stdout + r.stderr
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_migrate_never_puts_back_an_older_copy_and_a_round_trip_keeps_logins(pg):
    """Found by a review of the fleet store:
    - a record re-sealed in the database (PostgreSQL seals with generation 0) came back to
      files next to a state that named the file store's generation: "older than its state",
      every login of that user refused, although migrate said it copied and verified it;
    - migrate run again from files after hosts used the database overwrote their newer
      rows: a spent backup code passed again;
    - users removed in the database were silently left in an old state directory."""
    root = tempfile.mkdtemp(prefix="twostep-migrate2-")
    try:
        inst, db, uri, dbargs = files_host_and_database(pg, root)
        for u in ("mgalice", "mgbob"):
            inst.enroll(u)
        codes = json.loads(inst.cli("admin", "backup-codes", "mgalice", "--json").stdout)["backup_codes"]
        inst.cli("admin", "db", "init", *dbargs)
        r = json.loads(inst.cli("admin", "migrate", "--to", "postgresql", *dbargs, "--json").stdout)
        assert (r["copied"], r["differing"], r["only_in_destination"], r["failed"]) == (2, [], [], [])

        # The hosts use the database: a backup code is spent (the record is re-sealed there).
        inst.write_config(store="postgresql", database=uri, database_password_file=pg.password_file)
        assert inst.login("mgalice", codes[0]).returncode == 0
        assert inst.login("mgalice", codes[0]).returncode != 0

        # migrate from the old files again: Alice's newer row is left alone, the code stays spent.
        inst.write_config()
        r = inst.cli("admin", "migrate", "--to", "postgresql", *dbargs, check=False)
        assert r.returncode == 1 and "not overwritten" in r.stdout and "mgalice" in r.stdout, r.stdout + r.stderr
        inst.write_config(store="postgresql", database=uri, database_password_file=pg.password_file)
        assert inst.login("mgalice", codes[0]).returncode != 0
        inst.cli("admin", "reset", "mgbob")

        # Back to files, into the old directory: Alice differs and stays, Bob is named as
        # enrolled only there (he was reset in the database).
        r = json.loads(inst.cli("admin", "migrate", "--to", "files", "--state-dir", inst.state, "--json",
                                check=False).stdout)
        assert (r["copied"], r["differing"], r["only_in_destination"]) == (0, ["mgalice"], ["mgbob"]), r

        # Into a new directory: Alice's record, re-sealed by the database, opens and logs in
        # there, and her spent code stays spent.
        back = os.path.join(root, "state-back")
        r = json.loads(inst.cli("admin", "migrate", "--to", "files", "--state-dir", back, "--json").stdout)
        assert (r["copied"], r["differing"], r["only_in_destination"], r["failed"]) == (1, [], [], []), r
        inst.write_config(state_dir=back)
        assert inst.login("mgalice", codes[0]).returncode != 0
        assert inst.login("mgalice", codes[1]).returncode == 0, inst.cli("admin", "show", "mgalice", check=False)
        assert inst.login("mgalice", oathtool(at=time.time() + 30)).returncode == 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_migrate_does_not_copy_a_record_its_source_refuses(pg):
    """A record put back in the file store (older than its state: its spent backup code
    would pass again) is refused by the file store's logins, but migrate copied it with its
    own generation into a fresh state, where it opened: the spent code passed in the
    database. Now that user fails the copy with the source's reason."""
    root = tempfile.mkdtemp(prefix="twostep-migrate4-")
    try:
        inst, db, uri, dbargs = files_host_and_database(pg, root)
        inst.enroll("mgerin")
        inst.enroll("mgfred")
        codes = json.loads(inst.cli("admin", "backup-codes", "mgerin", "--json").stdout)["backup_codes"]
        path = os.path.join(inst.state, "mgerin.record")
        old = open(path, "rb").read()
        assert inst.login("mgerin", codes[0]).returncode == 0
        with open(path, "wb") as f:
            f.write(old)
        r = inst.cli("admin", "show", "mgerin", check=False)
        assert r.returncode != 0 and "a restored copy is refused" in r.stdout + r.stderr, r.stdout + r.stderr
        inst.cli("admin", "db", "init", *dbargs)
        r = inst.cli("admin", "migrate", "--to", "postgresql", *dbargs, "--json", check=False)
        report = json.loads(r.stdout)
        assert r.returncode != 0 and report["copied"] == 1, r.stdout + r.stderr
        assert [f["user"] for f in report["failed"]] == ["mgerin"], report
        assert "a restored copy is refused" in report["failed"][0]["error"], report
        assert pg.psql("SELECT count(*) FROM twostep_users WHERE name = 'mgerin'", db=db).strip() == "0"
        inst.write_config(store="postgresql", database=uri, database_password_file=pg.password_file)
        assert inst.login("mgerin", codes[0]).returncode != 0
        assert inst.login("mgfred", oathtool()).returncode == 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_migrate_does_not_put_back_a_user_reset_in_the_destination(pg):
    """A reviewer reset a user in the database (phone stolen) and ran the same migrate from
    the old files again: the row had no record, only its tombstone, so the copy went in
    without --overwrite, lowered the generation and the stolen phone's codes passed."""
    root = tempfile.mkdtemp(prefix="twostep-migrate5-")
    try:
        inst, db, uri, dbargs = user_in_database(pg, root, "mggwen")
        inst.cli("admin", "reset", "mggwen", "--reason", "phone stolen")
        assert pg.psql("SELECT record IS NULL FROM twostep_users WHERE name = 'mggwen'", db=db) == "t"
        assert "record_generation=2" in pg.psql("SELECT convert_from(state, 'UTF8') FROM twostep_users "
                                                "WHERE name = 'mggwen'", db=db)
        inst.write_config()
        r = inst.cli("admin", "migrate", "--to", "postgresql", *dbargs, "--json", check=False)
        report = json.loads(r.stdout)
        assert r.returncode == 1 and (report["copied"], report["differing"]) == (0, ["mggwen"]), r.stdout + r.stderr
        inst.write_config(store="postgresql", database=uri, database_password_file=pg.password_file)
        assert json.loads(inst.cli("admin", "show", "mggwen", "--json").stdout)["enrolled"] is False
        assert inst.login("mggwen", oathtool()).returncode != 0
        # --overwrite puts it back, and says that the destination was newer.
        inst.write_config()
        r = inst.cli("admin", "migrate", "--to", "postgresql", "--overwrite", *dbargs, "--json", check=False)
        report = json.loads(r.stdout)
        assert report["copied"] == 1 and report["overwritten_newer"] == [
            {"user": "mggwen", "destination_generation": 2, "copied_generation": 1}], report
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_db_status_is_ok_only_when_tls_verifies_the_server(pg):
    """`admin db status` said ok for any TLS, also sslmode=require (or libpq's default,
    prefer), which checks neither the certificate nor the name. A relative password file
    path crashed the CLI (rc 132)."""
    root = tempfile.mkdtemp(prefix="twostep-dbstatus-")
    try:
        db = pg.create_database()
        inst = Installation(root)
        verified = ["--database", pg.uri(db), "--database-password-file", pg.password_file]
        inst.cli("admin", "db", "init", *verified)
        r = inst.cli("admin", "db", "status", *verified, "--json")
        info = json.loads(r.stdout)
        assert info["ok"] is True and info["sslmode"] == "verify-full" and info["tls_verified"] is True, info
        unverified = pg.uri(db).replace("sslmode=verify-full", "sslmode=require")
        r = inst.cli("admin", "db", "status", "--database", unverified, "--database-password-file", pg.password_file,
                     check=False)
        assert r.returncode == 1 and "NOT verified (sslmode=require)" in r.stdout, r.stdout + r.stderr
        here = os.path.dirname(pg.password_file)
        r = subprocess.run([CLI, "admin", "db", "status", "--database", pg.uri(db), "--database-password-file",
                            os.path.basename(pg.password_file), "--config", inst.conf],
                           cwd=here, capture_output=True, text=True, timeout=60)
        assert r.returncode not in (0, 132, -4) and "absolute path" in r.stdout + r.stderr, r
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_migrate_interrupted_by_sigint_copies_each_user_whole_and_a_rerun_finishes(pg):
    """Long admin work stops cleanly on Ctrl-C: migrate stops between users, says how many
    it did not reach, exits 130, and running it again copies the rest."""
    root = tempfile.mkdtemp(prefix="twostep-migrate3-")
    try:
        db = pg.create_database()
        inst = Installation(root)
        users = [f"mi{i:03d}" for i in range(60)]
        path = os.path.join(root, "users.jsonl")
        with open(path, "w") as f:
            f.writelines(json.dumps({"user": u, "secret": SECRET}) + "\n" for u in users)
        inst.cli("admin", "import", "--batch", path)
        dbargs = ["--database", pg.uri(db), "--database-password-file", pg.password_file]
        inst.cli("admin", "db", "init", *dbargs)
        held = 30   # users are copied in name order; mi030's lock stays in our hands

        def rows():
            return int(pg.psql("SELECT count(*) FROM twostep_users", db=db))

        lock = os.open(os.path.join(inst.state, users[held] + ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            p = subprocess.Popen([CLI, "admin", "migrate", "--to", "postgresql", *dbargs, "--config", inst.conf],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            # migrate catches SIGINT before it copies anyone, so once a row exists the signal
            # is its Ctrl-C; it cannot get past the held user before the lock is let go.
            deadline = time.monotonic() + 120
            while rows() == 0:
                assert p.poll() is None, p.communicate()
                assert time.monotonic() < deadline, "no first copied user"
                time.sleep(0.02)
            p.send_signal(signal.SIGINT)
        finally:
            os.close(lock)
        out, err = p.communicate(timeout=120)
        assert p.returncode == 130, out + err
        m = re.search(r"(\d+) copied, 0 unchanged, .* (\d+) not reached \(interrupted\)", out)
        assert m and "Run the same command again to finish" in out, out
        copied, left = int(m.group(1)), int(m.group(2))
        assert copied + left == len(users) and 1 <= copied <= held + 1, out
        assert rows() == copied
        summary = [e for e in inst.audit_events() if e["event"] == "admin_migrate"]
        assert summary[-1]["result"] == "failure" and "not reached (interrupted)" in summary[-1]["detail"]
        # Whole or absent: the rerun copies exactly the rest and finds the others identical.
        again = json.loads(inst.cli("admin", "migrate", "--to", "postgresql", *dbargs, "--json").stdout)
        assert (again["copied"], again["unchanged"], again["failed"], again["not_reached"]) == (left, copied, [], 0)
        assert rows() == len(users)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_rows_of_earlier_versions_open_and_an_import_never_lowers_the_generation(fleet):
    """A reviewer's two findings on the generations in the database: a record an earlier
    version wrote (sealed as generation 0) beside a state that `admin migrate` had numbered
    was refused after the upgrade, locking its user out; and a replacing import handed the
    store a fresh state that lowered the generation, so an old copy of the record opened."""
    # An earlier version's record: the v1 fixture's (generation 0), its key on the host,
    # beside a state numbered 4.
    fixture = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "v1-store")
    key = open(os.path.join(fixture, "keys", "active")).read().strip()
    shutil.copy(os.path.join(fixture, "keys", key + ".key"), fleet.a.keys)
    os.chmod(os.path.join(fleet.a.keys, key + ".key"), 0o400)
    sealed = open(os.path.join(fixture, "state", "fixtureuser.record"), "rb").read()
    fleet.sql(f"INSERT INTO twostep_users (name, record, key_id, state) VALUES ('fixtureuser', "
              f"decode('{sealed.hex()}', 'hex'), '{key}', "
              f"convert_to(E'v=2\\nlocked_until=0\\nfailures=\\nrecord_generation=4\\n', 'UTF8'))")
    assert fleet.login(fleet.a, "fixtureuser", oathtool()) == PAM_SUCCESS
    # A replacing import keeps the row's generation: an old copy of the record stays refused.
    fleet.a.enroll("oathgen")
    for _ in range(3):
        fleet.a.cli("admin", "backup-codes", "oathgen")
    old = fleet.sql("SELECT encode(record, 'hex') FROM twostep_users WHERE name = 'oathgen'")
    usersfile = os.path.join(fleet.root, "users.oath")
    with open(usersfile, "w") as f:
        f.write(f"HOTP/T30 oathgen - {secrets.token_hex(20)}\n")
    os.chmod(usersfile, 0o600)
    assert "oathgen: imported" in fleet.a.cli("admin", "import-oath", usersfile, "--replace").stdout
    fleet.sql(f"UPDATE twostep_users SET record = decode('{old}', 'hex') WHERE name = 'oathgen'")
    assert fleet.login(fleet.a, "oathgen", oathtool()) == PAM_AUTHINFO_UNAVAIL


def test_migrate_to_files_killed_between_state_and_record_finishes_at_the_rerun(pg):
    """The file store wrote a copied user's record before its state: killed in between, the
    destination held the record beside no state, and every rerun called that user "different
    in the destination" (exit 1) although nothing else had touched it. The state comes first
    now: killed at the record's rename (the user's second), the rerun copies the record."""
    root = tempfile.mkdtemp(prefix="twostep-migrate5-")
    try:
        inst, db, uri, dbargs = user_in_database(pg, root, "mkdora")
        back = os.path.join(root, "state-back")
        r = subprocess.run(["strace", "-f", "-o", "/dev/null", "-e", "inject=rename,renameat,renameat2:signal=KILL:when=2",
                            CLI, "admin", "migrate", "--to", "files", "--state-dir", back, "--config", inst.conf],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode in (-signal.SIGKILL, 128 + signal.SIGKILL), (r.returncode, r.stdout, r.stderr)
        assert not os.path.exists(os.path.join(back, "mkdora.record"))
        again = json.loads(inst.cli("admin", "migrate", "--to", "files", "--state-dir", back, "--json").stdout)
        assert (again["copied"], again["differing"], again["failed"]) == (1, [], []), again
        inst.write_config(state_dir=back)
        assert inst.login("mkdora", oathtool()).returncode == 0
    finally:
        shutil.rmtree(root, ignore_errors=True)
