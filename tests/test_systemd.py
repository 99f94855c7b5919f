# SPDX-License-Identifier: Apache-2.0
"""The shipped systemd units under a real systemd, installed by `make install`: a container
booted with systemd-nspawn on an overlay of this machine's root (everything it writes lands
in a scratch upper layer, removed afterwards; the host's /etc, /run and services are not
touched). There twostep-helperd.socket and twostep-helper.socket are started as the README
says, and logins use the module's defaults (socket=/run/twostep/verify.sock). This is where a
unit's sandbox meets what the helper does at a login: the email fallback's MTA (exim4,
writing its spool and log under /var), a PostgreSQL store over TCP, and the self-service
instance started per connection."""
import email
import email.policy
import json
import mailbox
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import HARNESS, ROOT, SECRET, oathtool, run
from pgserver import PostgresServer

SERVICE = "twostep-nspawn-test"
MAIL_FROM = "twostep-test@localhost"

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("systemd-nspawn") is None,
                                reason="needs root and systemd-nspawn (Debian's systemd-container)")


def init_pid_of(nspawn_pid):
    """The container's PID 1 (systemd) as this machine sees it: a `systemd` process that
    descends from the systemd-nspawn process."""
    def parent(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                return int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                if f.read().strip() != "systemd":
                    continue
        except OSError:
            continue
        pid = int(entry)
        p = parent(pid)
        for _ in range(4):
            if p == nspawn_pid:
                return pid
            p = parent(p)
    return None


class Machine:
    def __init__(self, root, pid):
        self.root = root  # the container's / as seen from here
        self.pid = pid

    def run(self, argv, check=True, **kw):
        """Runs argv inside the container (all of its namespaces)."""
        return run(["nsenter", "-t", str(self.pid), "-a", "--", *argv], check=check, **kw)

    def sh(self, script, check=True, **kw):
        return self.run(["sh", "-ec", script], check=check, **kw)

    def path(self, p):
        return os.path.join(self.root, p.lstrip("/"))

    def write(self, p, text, mode=0o644):
        with open(self.path(p), "w") as f:
            f.write(text)
        os.chmod(self.path(p), mode)

    def login(self, user, answers, service=SERVICE):
        return self.run(["/usr/local/libexec/twostep-test/pam_harness", "--confdir", "/etc/pam.d",
                         "--service", service, "--user", user, "--answers", "-"],
                        check=False, input="".join(a + "\n" for a in answers))

    def audit(self, user):
        with open(self.path("/var/log/twostep/audit.log")) as f:
            return [e for e in map(json.loads, f) if e.get("user") == user]


CONFIG = f"""# packaging/twostep.conf's defaults, plus the email fallback and an audit file
audit_log = /var/log/twostep/audit.log
mail_from = {MAIL_FROM}
email_fallback = on
"""


@pytest.fixture(scope="module")
def machine():
    tmp = tempfile.mkdtemp(prefix="twostep-nspawn.", dir="/var/tmp")
    root = os.path.join(tmp, "root")
    for d in ("upper", "work", "root"):
        os.mkdir(os.path.join(tmp, d))
    mounted = subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                              f"lowerdir=/,upperdir={tmp}/upper,workdir={tmp}/work", root],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.skip(f"this machine cannot mount an overlay of /: {mounted.stderr.strip()}")
    proc = None
    log = open(os.path.join(tmp, "nspawn.log"), "w+")
    try:
        # Installed the way an administrator does, into the container's root.
        run(["make", "-s", "install", f"DESTDIR={root}"], cwd=ROOT, timeout=900)
        os.makedirs(os.path.join(root, "usr/local/libexec/twostep-test"), exist_ok=True)
        shutil.copy(HARNESS, os.path.join(root, "usr/local/libexec/twostep-test/pam_harness"))
        with open(os.path.join(root, "etc/twostep/twostep.conf"), "w") as f:
            f.write(CONFIG)
        # The module's defaults; and with no helper to spawn, so that only the running
        # helper can answer.
        with open(os.path.join(root, "etc/pam.d", SERVICE), "w") as f:
            f.write("auth required pam_twostep.so\naccount required pam_permit.so\n")
        with open(os.path.join(root, "etc/pam.d", SERVICE + "-nospawn"), "w") as f:
            f.write("auth required pam_twostep.so helper=/nonexistent\naccount required pam_permit.so\n")
        # basic.target: systemd and the socket units, none of the host's network services
        # (the container shares this machine's network, for the PostgreSQL test).
        proc = subprocess.Popen(["systemd-nspawn", "--quiet", "-D", root, "--register=no", "--keep-unit",
                                 "--boot", "--console=passive", "systemd.unit=basic.target"],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        pid = None
        deadline = time.time() + 60
        while pid is None and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
            pid = init_pid_of(proc.pid)
        if pid is None:
            log.seek(0)
            # Where containers cannot run at all (no namespaces, a foreign cgroup setup), say
            # so and skip; a container that boots and then misbehaves fails below.
            pytest.skip(f"systemd-nspawn could not boot a container here: {log.read()[-2000:]}")
        m = Machine(root, pid)
        # Until its manager answers on the container's bus socket, then until it is up.
        state = ""
        while time.time() < deadline + 60 and state not in ("running", "degraded"):
            r = m.run(["systemctl", "is-system-running", "--wait"], check=False, timeout=120)
            state = r.stdout.strip()
            if state not in ("running", "degraded"):
                time.sleep(0.5)
        assert state in ("running", "degraded"), f"{state} {r.stderr}"
        m.sh("twostep admin init >/dev/null; install -d -m 0700 /var/log/twostep; systemctl start twostep-helperd.socket twostep-helper.socket")
        yield m
    finally:
        if proc is not None and proc.poll() is None:
            # A clean shutdown; failing that, SIGKILL to the container's PID 1 ends every
            # process in it (killing systemd-nspawn alone would leave the container running).
            pid = init_pid_of(proc.pid)
            if pid:
                subprocess.run(["nsenter", "-t", str(pid), "-a", "--", "systemctl", "poweroff"],
                               capture_output=True, timeout=30)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                if pid:
                    os.kill(pid, 9)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, 9)
                    proc.wait(timeout=30)
        log.close()
        for _ in range(20):
            if subprocess.run(["umount", root], capture_output=True).returncode == 0:
                break
            time.sleep(0.5)
        else:
            subprocess.run(["umount", "-l", root], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def user(machine):
    names = iter(f"tsn{os.getpid() % 1000}u{i}" for i in range(100))

    def make(email=False):
        name = next(n for n in names if machine.run(["id", n], check=False).returncode != 0)
        machine.run(["useradd", "-m", name])
        machine.run(["twostep", "admin", "import", name, "--secret", "-"], input=SECRET + "\n")
        if email:
            machine.run(["twostep", "admin", "email", name, f"{name}@localhost"])
        return name
    return make


def test_the_default_stack_logs_in_through_the_socket_activated_helperd(machine, user):
    alice = user()
    r = machine.login(alice, [oathtool()])
    assert "RESULT: Success (0)" in r.stdout, r.stdout + r.stderr
    # The first connection to /run/twostep/verify.sock started the service (Accept=no).
    assert machine.run(["systemctl", "is-active", "twostep-helperd.service"], check=False).stdout.strip() == "active"
    # With no helper to spawn, only the running helper can have answered.
    bob = user()
    r = machine.login(bob, [oathtool()], service=f"{SERVICE}-nospawn")
    assert "RESULT: Success (0)" in r.stdout, r.stdout + r.stderr
    assert [e["result"] for e in machine.audit(bob) if e["event"] == "verify"] == ["success"]


def test_the_email_fallback_mails_through_the_mta_from_inside_helperd(machine, user):
    """helperd's sandbox once made /var read-only (ProtectSystem=strict): exim4 could not
    write its spool and the login failed with "The email could not be sent"."""
    carol = user(email=True)
    mbox = machine.path(f"/var/mail/{carol}")
    # `twostep try` asks for each answer when its prompt comes (pam_harness reads them all
    # at start).
    p = subprocess.Popen(["nsenter", "-t", str(machine.pid), "-a", "--",
                          "twostep", "try", "--service", SERVICE, "--pam-dir", "/etc/pam.d", "--user", carol],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        p.stdin.write("email\n")
        p.stdin.flush()
        code = None
        deadline = time.time() + 30
        while code is None and time.time() < deadline and p.poll() is None:
            time.sleep(0.1)
            if os.path.exists(mbox):
                for msg in mailbox.mbox(mbox, create=False):
                    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
                    text = parsed.get_body(preferencelist=("plain",)).get_content()
                    found = re.search(r"Your one-time code: ([0-9a-z]{4}-[0-9a-z]{4})", text)
                    if found:
                        code = found.group(1)
        out, _ = p.communicate((code or "no-mail-came") + "\n", timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    if code is None:
        log = machine.path("/var/log/exim4/mainlog")
        exim = open(log).read()[-3000:] if os.path.exists(log) else "(no exim log)"
        box = open(mbox, errors="replace").read()[-3000:] if os.path.exists(mbox) else "(no mailbox)"
        queue = machine.run(["sh", "-c", "exim4 -bp; cat /var/log/exim4/paniclog"], check=False)
        pytest.fail(f"no code mailed to {carol}: {out}\nmailbox: {box}\nexim: {exim}\nqueue: {queue.stdout}{queue.stderr}")
    assert p.returncode == 0, out
    assert [e["detail"] for e in machine.audit(carol) if e["event"] == "verify"] == ["email code"]


def test_self_service_runs_in_a_per_connection_instance(machine, user):
    dave = user()
    r = machine.run(["runuser", "-u", dave, "--", "twostep", "status", "--json"])
    assert json.loads(r.stdout)["enrolled"] is True, r.stdout
    # As a user the CLI cannot read the store: the answer came from an instance of
    # twostep-helper@.service, started for the connection (Accept=yes).
    accepted = machine.run(["systemctl", "show", "-P", "NAccepted", "twostep-helper.socket"]).stdout
    assert int(accepted) >= 1, accepted


def test_helperd_reaches_a_postgresql_store_over_tcp(machine, user, tmp_path):
    """helperd once had PrivateNetwork=yes and AF_UNIX only: a fleet store on another host
    (here: this machine's 127.0.0.1, outside the service's namespace) was out of reach."""
    pg = PostgresServer()
    try:
        db = pg.create_database()
        shutil.copy(pg.ca, machine.path("/etc/twostep/pg-ca.crt"))
        machine.write("/etc/twostep/db.password", pg.password + "\n", mode=0o600)
        machine.write("/etc/twostep/twostep.conf", CONFIG + "store = postgresql\n"
                      f"database = postgresql://twostep@localhost:{pg.port}/{db}"
                      "?sslmode=verify-full&sslrootcert=/etc/twostep/pg-ca.crt\n"
                      "database_password_file = /etc/twostep/db.password\n")
        machine.run(["twostep", "admin", "db", "init"])
        machine.run(["systemctl", "restart", "twostep-helperd.service"])
        erin = user()
        assert pg.psql("SELECT count(*) FROM twostep_users WHERE name = '%s'" % erin, db=db) == "1"
        r = machine.login(erin, [oathtool()], service=f"{SERVICE}-nospawn")
        assert "RESULT: Success (0)" in r.stdout, r.stdout + r.stderr
    finally:
        machine.write("/etc/twostep/twostep.conf", CONFIG)
        machine.run(["systemctl", "restart", "twostep-helperd.service"], check=False)
        pg.close()
