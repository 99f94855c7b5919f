# SPDX-License-Identifier: Apache-2.0
"""A real sshd on 127.0.0.1 logs a user in through pam_twostep.so (keyboard-interactive).

Needs root, /usr/sbin/sshd, ssh, ssh-keygen, oathtool, useradd/userdel. Builds nothing: uses
the binaries in $TWOSTEP_BUILD (default <repo>/build), copied once at the start.

The host's /etc/pam.d/sshd is never touched. sshd names its PAM service after its program
name (__progname, the basename of argv[0]), so sshd is started through a symlink
<tmp>/twostep-sshd-test-<hex> -> /usr/sbin/sshd and its PAM stack is written to
/etc/pam.d/twostep-sshd-test-<hex>. sshd re-execs itself for every connection with the
same argv[0] (that is why it must be started by an absolute path), so the name survives;
test_correct_code_logs_in checks the service name the helper really saw (audit log).

Everything (user, pam.d file, temp dir, sshd) is removed afterwards, also on failure.
Run: /usr/bin/python3 -m pytest -q tests/test_sshd.py
"""
import base64
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import conftest
from conftest import oathtool, run

ROOT = Path(os.path.dirname(os.path.abspath(__file__))).parent
BUILD = Path(conftest.BUILD)
MODULE = Path(conftest.MODULE)
HELPER = Path(conftest.HELPER)
CLI = Path(conftest.CLI)
SSHD = Path("/usr/sbin/sshd")
PAM_DIR = Path("/etc/pam.d")

if not SSHD.exists():
    pytest.skip("/usr/sbin/sshd is not installed", allow_module_level=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def totp(secret, at=None):
    return oathtool(secret, at=at)


# The askpass program answers the n-th keyboard-interactive prompt with line n of the
# answers file and appends {"prompt": argv[1], "answer": ...} to the prompts file (JSON
# lines: sshd puts PAM info messages into the prompt text, so a prompt may span many lines).
# Two answers are computed here, while ssh waits, from the otpauth:// URI the enrolment
# wizard showed in an earlier prompt of the same login (oathtool is the reference):
#   {totp}   the current code;  {wrong}  a code that matches no step within +-2 of now.
ASKPASS = r"""#!/usr/bin/python3
import json, re, subprocess, sys, time
PROMPTS, ANSWERS = %(prompts)r, %(answers)r
prompt = sys.argv[1] if len(sys.argv) > 1 else ""
try:
    with open(PROMPTS) as f:
        asked = [json.loads(l) for l in f if l.strip()]
except FileNotFoundError:
    asked = []
with open(ANSWERS) as f:
    answers = f.read().splitlines()
answer = answers[len(asked)] if len(asked) < len(answers) else ""

def code(secret, at):
    return subprocess.run(["oathtool", "--totp", "-b", secret, "-N", "@%%d" %% at], check=True,
                          capture_output=True, text=True, timeout=10).stdout.strip()

if answer in ("{totp}", "{wrong}"):
    uris = re.findall(r"otpauth://totp/\S*?[?&]secret=([A-Z2-7]+)",
                      "\n".join([a["prompt"] for a in asked] + [prompt]))
    if not uris:
        answer = "no-otpauth-uri-seen"
    else:
        wrong, now = answer == "{wrong}", int(time.time())
        answer = code(uris[-1], now)
        if wrong:
            near = {code(uris[-1], now + d * 30) for d in (-2, -1, 0, 1, 2)}
            answer = next(c for c in (answer[:-1] + str((int(answer[-1]) + b) %% 10)
                                      for b in range(1, 10)) if c not in near)
with open(PROMPTS, "a") as f:
    f.write(json.dumps({"prompt": prompt, "answer": answer}) + "\n")
print(answer)
"""


class Login:
    """One ssh run. Its repr (shown by failing asserts) carries sshd's log of the run."""

    def __init__(self, proc, asked, sshd_log):
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr
        self.prompts = [a["prompt"] for a in asked]  # whole prompts, possibly multi-line
        self.answers = [a["answer"] for a in asked]  # what the askpass program answered
        self.sshd_log = sshd_log

    def __repr__(self):
        return "Login(rc=%r, out=%r, err=%r, prompts=%r, answers=%r)\n%s" % (
            self.rc, self.out, self.err, self.prompts, self.answers, self.sshd_log[-8000:])


class SshdEnv:
    """One sshd, one test user with an ssh key, one twostep store, one unique PAM service."""

    def __init__(self):
        tag = os.urandom(3).hex()
        self.user = "tsssh" + tag
        self.service = "twostep-sshd-test-" + tag
        self.dir = Path(tempfile.mkdtemp(prefix="twostep-sshd-"))  # 0700, owned by root
        self.pam_file = PAM_DIR / self.service
        self.config = self.dir / "twostep.conf"
        self.audit = self.dir / "audit.jsonl"
        self.sshd_log = self.dir / "sshd.log"
        self.key = self.dir / "client_key"
        self.code_file = self.dir / "code"
        self.prompt_file = self.dir / "prompts"
        self.askpass = self.dir / "askpass.sh"
        self.sshd = None
        self.user_created = False
        self.port = None

    # --- setup ------------------------------------------------------------------------

    def setup(self):
        # Snapshot the binaries: a rebuild of build/ while the tests run cannot then swap
        # a half-written module or helper under the running sshd.
        bindir = self.dir / "bin"
        bindir.mkdir(mode=0o755)
        self.module, self.helper, self.cli = (Path(shutil.copy2(p, bindir / p.name))
                                              for p in (MODULE, HELPER, CLI))
        self.write_config()
        run([self.cli, "admin", "init", "--config", self.config])
        self.write_pam()

        run(["useradd", "-m", "-s", "/bin/sh", "-c", "twostep sshd test", self.user])
        self.user_created = True
        pw = pwd.getpwnam(self.user)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "twostep-test", "-f", self.key])
        ssh_dir = Path(pw.pw_dir) / ".ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        shutil.copyfile(str(self.key) + ".pub", ssh_dir / "authorized_keys")
        os.chmod(ssh_dir / "authorized_keys", 0o600)
        for p in (ssh_dir, ssh_dir / "authorized_keys"):
            os.chown(p, pw.pw_uid, pw.pw_gid)
        os.chmod(pw.pw_dir, 0o750)  # StrictModes: home not group/world writable

        self.askpass.write_text(ASKPASS % {"prompts": str(self.prompt_file),
                                            "answers": str(self.code_file)})
        os.chmod(self.askpass, 0o700)

        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", self.dir / "host_key"])
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation dir
        # sshd's PAM service is its program name: run it through a uniquely named symlink.
        self.sshd_path = self.dir / self.service
        os.symlink(SSHD, self.sshd_path)
        self.start_sshd()

    def write_config(self, *extra):
        """The store's config, plus `extra` lines (the helper reads it at every login)."""
        self.config.write_text("state_dir = %s/state\nkey_dir = %s/keys\naudit_log = %s\n"
                               % (self.dir, self.dir, self.audit)
                               + "".join(l + "\n" for l in extra))
        os.chmod(self.config, 0o600)

    def module_line(self, module_args=""):
        return "auth required %s helper=%s config=%s timeout=10 %s" % (
            self.module, self.helper, self.config, module_args)

    def write_pam_text(self, text):
        self.pam_file.write_text(text)
        os.chmod(self.pam_file, 0o644)

    def write_pam(self, module_args="", extra_auth=(), before=()):
        """The test's own minimal stack: [before...], pam_twostep, [extra_auth...]."""
        lines = [
            "# twostep test stack (tests/test_sshd.py); removed after the test",
            *before,
            self.module_line(module_args),
            *extra_auth,
            "account required pam_unix.so",
            "session required pam_permit.so",
        ]
        self.write_pam_text("\n".join(l.rstrip() for l in lines) + "\n")

    def sshd_config(self):
        cfg = self.dir / "sshd_config"
        cfg.write_text("\n".join([
            "ListenAddress 127.0.0.1",
            "HostKey %s" % (self.dir / "host_key"),
            "PidFile %s" % (self.dir / "sshd.pid"),
            "LogLevel DEBUG",
            "UsePAM yes",
            "PubkeyAuthentication yes",
            "KbdInteractiveAuthentication yes",
            "PasswordAuthentication no",
            "AuthenticationMethods publickey,keyboard-interactive",
            "AuthorizedKeysFile .ssh/authorized_keys",
            "StrictModes yes",
            "PermitRootLogin no",
            "AllowUsers %s" % self.user,
            "MaxAuthTries 6",
            "X11Forwarding no",
            "PrintMotd no",
            "UseDNS no",
            "",
        ]))
        return cfg

    def start_sshd(self):
        for _attempt in range(5):
            self.port = free_port()
            cfg = self.sshd_config()
            log = open(self.sshd_log, "ab")
            try:
                self.sshd = subprocess.Popen(
                    [str(self.sshd_path), "-D", "-e", "-f", str(cfg), "-p", str(self.port)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
            finally:
                log.close()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if self.sshd.poll() is not None:
                    break  # exited: port taken or bad config; retry or report below
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                        return
                except OSError:
                    time.sleep(0.05)
            self.stop_sshd()
        pytest.fail("sshd did not start\n" + self.log_text())

    # --- teardown ---------------------------------------------------------------------

    def stop_sshd(self):
        if self.sshd is None:
            return
        if self.sshd.poll() is None:
            try:
                os.killpg(self.sshd.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.sshd.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.sshd.pid, signal.SIGKILL)
                self.sshd.wait(timeout=5)
        self.sshd = None

    def teardown(self):
        errors = []
        for step in (self.stop_sshd, self._remove_user, self._remove_files):
            try:
                step()
            except Exception as e:  # keep going: every step must get its chance
                errors.append("%s: %r" % (step.__name__, e))
        if errors:
            raise RuntimeError("teardown: " + "; ".join(errors))

    def _remove_user(self):
        if self.user_created:
            # -f: even if a session of the user were somehow still alive.
            subprocess.run(["userdel", "-r", "-f", self.user], capture_output=True, timeout=30)
            try:
                pwd.getpwnam(self.user)
                raise RuntimeError("user %s still exists" % self.user)
            except KeyError:
                pass

    def _remove_files(self):
        if self.pam_file.exists() or self.pam_file.is_symlink():
            self.pam_file.unlink()
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- helpers ----------------------------------------------------------------------

    def log_size(self):
        try:
            return self.sshd_log.stat().st_size
        except OSError:
            return 0

    def log_text(self, since=0):
        try:
            with open(self.sshd_log, "rb") as f:
                f.seek(since)
                text = f.read().decode(errors="replace")
        except OSError:
            return "(no sshd log)"
        return "--- sshd log ---\n" + text[-30000:]

    def audit_events(self):
        if not self.audit.exists():
            return []
        return [json.loads(l) for l in self.audit.read_text().splitlines() if l.strip()]

    def enroll(self):
        """A fresh enrolment with a fresh random secret: no state left by other tests."""
        subprocess.run([str(self.cli), "admin", "reset", self.user, "--config", str(self.config)],
                       capture_output=True, timeout=30)
        secret = base64.b32encode(os.urandom(20)).decode()
        run([self.cli, "admin", "import", self.user, "--secret", "-", "--config", self.config],
            input=secret + "\n")
        return secret

    def unenroll(self):
        run([self.cli, "admin", "reset", self.user, "--config", self.config])

    def enrolled(self):
        out = run([self.cli, "admin", "show", self.user, "--json", "--config", self.config]).stdout
        return json.loads(out)["enrolled"]

    def login(self, *answers, log_level="ERROR"):
        """ssh USER@127.0.0.1 "echo LOGGED-IN". At log_level INFO or up, ssh prints to
        stderr what sshd sends outside prompts (banners, keyboard-interactive instructions);
        at ERROR it drops them."""
        log_mark = self.log_size()
        self.code_file.write_text("".join(a + "\n" for a in answers))
        if self.prompt_file.exists():
            self.prompt_file.unlink()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SSH_") and k != "DISPLAY"}
        env.update(SSH_ASKPASS=str(self.askpass), SSH_ASKPASS_REQUIRE="force")
        cmd = ["ssh", "-F", "/dev/null", "-i", str(self.key), "-o", "IdentitiesOnly=yes",
               "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "PreferredAuthentications=publickey,keyboard-interactive",
               "-o", "BatchMode=no", "-o", "NumberOfPasswordPrompts=1",
               "-o", "ConnectTimeout=10", "-o", "LogLevel=" + log_level,
               "-p", str(self.port), "%s@127.0.0.1" % self.user, "echo LOGGED-IN"]
        # No stdin and a new session: ssh has no tty, so it must use the askpass program.
        proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=30, start_new_session=True)
        asked = ([json.loads(l) for l in self.prompt_file.read_text().splitlines() if l.strip()]
                 if self.prompt_file.exists() else [])
        return Login(proc, asked, self.log_text(log_mark))


@pytest.fixture(scope="module")
def sshd_env(request):
    if os.geteuid() != 0:
        pytest.fail("must run as root (useradd, /etc/pam.d, sshd)")
    missing = [str(p) for p in (MODULE, HELPER, CLI) if not p.exists()]
    if missing:
        pytest.fail("missing build artifacts: %s (set TWOSTEP_BUILD or run make)"
                    % ", ".join(missing))
    env = SshdEnv()
    request.addfinalizer(env.teardown)
    env.setup()
    return env


@pytest.fixture
def sshd(sshd_env):
    """The module's sshd, with the default PAM stack restored after each test."""
    sshd_env.write_pam()
    yield sshd_env
    sshd_env.write_pam()
    assert sshd_env.sshd is not None and sshd_env.sshd.poll() is None, "sshd died"


def new_events(env, before, **match):
    return [e for e in env.audit_events()[before:]
            if all(e.get(k) == v for k, v in match.items())]


def wrong_code(secret):
    """The current code with its last digit changed, and not by chance the code of a
    neighbouring time step (which window=1 would accept)."""
    now = int(time.time())
    good = {totp(secret, now + d * 30) for d in (-2, -1, 0, 1, 2)}
    code = totp(secret, now)
    for bump in range(1, 10):
        candidate = code[:-1] + str((int(code[-1]) + bump) % 10)
        if candidate not in good:
            return candidate
    raise AssertionError("no wrong code found")


# --- tests --------------------------------------------------------------------------------

def test_correct_code_logs_in(sshd):
    secret = sshd.enroll()
    before = len(sshd.audit_events())
    r = sshd.login(totp(secret))
    assert r.rc == 0, r
    assert "LOGGED-IN" in r.out, r
    assert len(r.prompts) == 1 and "Verification code" in r.prompts[0], r
    ok = new_events(sshd, before, event="verify", user=sshd.user, result="success")
    assert ok, sshd.audit_events()[before:]
    # The __progname trick: the PAM service really is the symlink's name, not "sshd".
    assert ok[-1]["service"] == sshd.service, ok


def test_wrong_code_is_refused(sshd):
    secret = sshd.enroll()
    before = len(sshd.audit_events())
    r = sshd.login(wrong_code(secret))
    assert r.rc != 0, r
    assert "LOGGED-IN" not in r.out, r
    assert any("Verification code" in p for p in r.prompts), r
    failed = new_events(sshd, before, event="verify", user=sshd.user, service=sshd.service,
                        result="failure")
    assert failed, sshd.audit_events()[before:]
    assert not new_events(sshd, before, user=sshd.user, result="success")


def test_replayed_code_is_refused(sshd):
    secret = sshd.enroll()
    now = int(time.time())
    code = totp(secret, now)
    first = sshd.login(code)
    assert first.rc == 0 and "LOGGED-IN" in first.out, first
    before = len(sshd.audit_events())
    again = sshd.login(code)
    assert again.rc != 0 and "LOGGED-IN" not in again.out, again
    assert new_events(sshd, before, event="verify", user=sshd.user, result="failure"), \
        sshd.audit_events()[before:]
    # Not a lockout: the next time step's code is still good.
    following = sshd.login(totp(secret, now + 30))
    assert following.rc == 0 and "LOGGED-IN" in following.out, following


def test_unenrolled_user_is_refused_without_nullok(sshd):
    secret = sshd.enroll()
    sshd.unenroll()
    before = len(sshd.audit_events())
    r = sshd.login(totp(secret))
    assert r.rc != 0, r
    assert "LOGGED-IN" not in r.out, r
    assert r.prompts == [], r  # refused before any prompt
    assert new_events(sshd, before, event="verify", user=sshd.user, service=sshd.service,
                      result="failure"), sshd.audit_events()[before:]


def test_nullok_alone_still_refuses_unenrolled_user(sshd):
    # With nullok the module returns PAM_IGNORE for an unenrolled user. If it is the only
    # auth module, libpam has no module result to go by and the stack fails: nullok in an
    # sshd stack without a password needs a second module that can succeed.
    sshd.enroll()
    sshd.unenroll()
    sshd.write_pam("nullok")
    r = sshd.login("000000")
    assert r.rc != 0 and "LOGGED-IN" not in r.out, r


def test_nullok_with_pam_permit_lets_unenrolled_user_in_but_not_a_wrong_code(sshd):
    sshd.write_pam("nullok", extra_auth=["auth required pam_permit.so"])
    sshd.enroll()
    sshd.unenroll()
    r = sshd.login("000000")
    assert r.rc == 0 and "LOGGED-IN" in r.out, r
    # An enrolled user still needs the right code under the same stack.
    secret = sshd.enroll()
    r = sshd.login(wrong_code(secret))
    assert r.rc != 0 and "LOGGED-IN" not in r.out, r
    r = sshd.login(totp(secret))
    assert r.rc == 0 and "LOGGED-IN" in r.out, r


# --- the stacks shipped in pam.d/ ---------------------------------------------------------

def shipped_sshd_stack(env):
    """pam.d/sshd as shipped, with its path-less pam_twostep line pointed at the build."""
    text = (ROOT / "pam.d" / "sshd").read_text()
    active = re.compile(r"^auth\s+required\s+pam_twostep\.so[ \t]*(.*)$", re.M)
    assert len(active.findall(text)) == 1, "pam.d/sshd: expected one active pam_twostep line"
    return active.sub(lambda m: env.module_line(m.group(1)), text)


def test_shipped_sshd_stack_key_then_code(sshd):
    sshd.write_pam_text(shipped_sshd_stack(sshd))
    secret = sshd.enroll()
    good = sshd.login(totp(secret))
    assert good.rc == 0 and "LOGGED-IN" in good.out, good
    # No password was asked for: the one prompt is the code.
    assert len(good.prompts) == 1 and "Verification code" in good.prompts[0], good


def test_password_then_code_alternative(sshd):
    # The alternative documented in pam.d/sshd: Debian's common-auth, then the code.
    password = "Tw0-" + os.urandom(8).hex()
    run(["chpasswd"], input="%s:%s\n" % (sshd.user, password))
    sshd.write_pam(before=["@include common-auth"])
    secret = sshd.enroll()
    # A wrong password ends the stack before the code is asked for.
    r = sshd.login("not-" + password, totp(secret))
    assert r.rc != 0 and "LOGGED-IN" not in r.out, r
    assert len(r.prompts) == 1 and "assword" in r.prompts[0], r
    # Right password, wrong code: refused.
    r = sshd.login(password, wrong_code(secret))
    assert r.rc != 0 and "LOGGED-IN" not in r.out, r
    assert len(r.prompts) == 2 and "Verification code" in r.prompts[1], r
    # Both right: in.
    r = sshd.login(password, totp(secret))
    assert r.rc == 0 and "LOGGED-IN" in r.out, r
    assert len(r.prompts) == 2 and "assword" in r.prompts[0] \
        and "Verification code" in r.prompts[1], r
    # With nullok, an unenrolled user needs only the password (common-auth carries the stack).
    sshd.write_pam("nullok", before=["@include common-auth"])
    sshd.unenroll()
    r = sshd.login(password)
    assert r.rc == 0 and "LOGGED-IN" in r.out, r
    assert len(r.prompts) == 1, r


# --- enrol at first login (enroll = prompt) -----------------------------------------------
#
# How the wizard's messages reach an ssh user (OpenSSH 9.2): the module passes every
# PAM_TEXT_INFO and PAM_ERROR_MSG on as its own conversation call; sshd (auth-pam.c,
# sshpam_query) gathers them and puts them IN FRONT OF THE TEXT OF THE NEXT PROMPT, so the
# keyboard-interactive request carries one prompt "<info>\n<info>\n...Enter the 6-digit
# code the app shows now: ". The client prefixes "(user@host) " and hands the whole text to
# the askpass program as argv[1] (in the C locale with non-ASCII bytes escaped as \ooo, so
# the QR code is mangled there; the otpauth:// URI is ASCII). Messages still pending when the
# stack ends:
#   success (backup codes, "Done: ..."): sshd adds them to loginmsg and sends that as a
#     userauth banner (auth2.c userauth_finish); a pty login also prints it before the shell.
#   failure ("3 codes did not match"): sshd sends them as the instruction of one more
#     keyboard-interactive request without prompts.
# ssh prints banners and instructions on stderr only at LogLevel INFO or up.

@pytest.fixture
def enrol_at_login(sshd):
    """The user has no enrolment; the config makes every user enrol at first login."""
    sshd.enroll()
    sshd.unenroll()
    sshd.write_config("enroll = prompt", "require = all")
    yield sshd
    sshd.write_config()


URI = re.compile(r"^    otpauth://totp/[^:\s]+:(\S+?)\?secret=([A-Z2-7]+)&issuer=\S+$", re.M)
FULL_BLOCK = ("\u2588", "\\342\\226\\210")  # the QR code's U+2588, as is or as ssh escapes it


def test_enrol_at_first_login_then_verify(enrol_at_login):
    sshd = enrol_at_login
    assert not sshd.enrolled()
    before = len(sshd.audit_events())
    # One wrong try (the wizard allows three), then the code for the secret it showed.
    r = sshd.login("{wrong}", "{totp}", log_level="INFO")
    assert r.rc == 0 and "LOGGED-IN" in r.out, r
    # Steps 1 and 2 came in the text of the first prompt.
    assert len(r.prompts) == 2, r
    first, second = r.prompts
    assert first.startswith("(%s@127.0.0.1) Two-step login for %s on " % (sshd.user, sshd.user)), r
    assert "Step 1 of 3: Scan this QR code" in first, r
    assert any(b * 10 in first for b in FULL_BLOCK), r  # the QR code's quiet zone
    uri = URI.findall(first)
    assert len(uri) == 1 and uri[0][0] == sshd.user, r
    secret = uri[0][1]
    assert " ".join(secret[i:i + 4] for i in range(0, len(secret), 4)) in first, r  # by hand
    assert "Step 2 of 3: confirm that the app works." in first, r
    assert first.endswith("\nEnter the 6-digit code the app shows now: "), r
    # The wrong try's PAM_ERROR_MSG came in front of the second prompt.
    assert "That code does not match" in second, r
    assert second.endswith("\nEnter the 6-digit code the app shows now: "), r
    assert "otpauth://" not in second, r
    wrong, confirming = r.answers
    assert re.fullmatch(r"\d{6}", confirming) and confirming != wrong, r
    # Step 3, after the last prompt: the userauth banner, on stderr.
    assert "Step 3 of 3: your backup codes." in r.err, r
    assert len(re.findall(r"^    (\S+)    (\S+)$", r.err, re.M)) == 5, r  # 10 codes
    assert "Done: %s is enrolled. The next login will ask for a verification code." \
        % sshd.user in r.err, r
    assert sshd.enrolled()
    assert new_events(sshd, before, event="enroll", user=sshd.user, service=sshd.service,
                      result="success"), sshd.audit_events()[before:]

    # Enrolled now: the next login asks for a verification code, not the wizard.
    now = int(time.time())
    before = len(sshd.audit_events())
    r = sshd.login(confirming)  # the confirming code's time step is spent
    assert r.rc != 0 and "LOGGED-IN" not in r.out, r
    assert len(r.prompts) == 1 and "Verification code" in r.prompts[0], r
    assert "Step 1 of 3" not in r.prompts[0], r
    r = sshd.login(wrong_code(secret))
    assert r.rc != 0 and "LOGGED-IN" not in r.out, r
    assert len(r.prompts) == 1 and "Verification code" in r.prompts[0], r
    r = sshd.login(totp(secret, now + 30))
    assert r.rc == 0 and "LOGGED-IN" in r.out, r
    assert len(r.prompts) == 1 and "Verification code" in r.prompts[0], r
    events = new_events(sshd, before, event="verify", user=sshd.user, service=sshd.service)
    assert [e["result"] for e in events] == ["failure", "failure", "success"], events
    assert sshd.enrolled()


def test_enrol_at_first_login_three_wrong_codes_save_nothing(enrol_at_login):
    sshd = enrol_at_login
    before = len(sshd.audit_events())
    r = sshd.login("{wrong}", "{wrong}", "{wrong}", log_level="INFO")
    assert r.rc != 0 and "LOGGED-IN" not in r.out, r
    assert len(r.prompts) == 3, r
    assert all(p.endswith("Enter the 6-digit code the app shows now: ") for p in r.prompts), r
    assert all("That code does not match" in p for p in r.prompts[1:]), r
    assert all(re.fullmatch(r"\d{6}", a) for a in r.answers), r  # computed from the URI
    # The last message came after the last prompt, as the instruction of a request without
    # prompts: ssh shows it on stderr, the askpass program never sees it.
    assert "3 codes did not match; nothing was saved." in r.err, r
    assert not sshd.enrolled()
    assert new_events(sshd, before, event="enroll", user=sshd.user, result="failure"), \
        sshd.audit_events()[before:]
