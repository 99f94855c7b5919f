# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures for the integration suites: a scratch twostep installation (config,
keys, state, a PAM config folder) driven through the built binaries and libpam."""
import contextlib
import json
import mailbox
import re
import os
import shutil
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(os.environ.get("TWOSTEP_BUILD") or os.path.join(ROOT, "build"))
CLI = os.path.join(BUILD, "twostep")
HELPER = os.path.join(BUILD, "twostep-helper")
# The lean static login helper the module spawns by default (it hands enrolment to HELPER).
VERIFY = os.path.join(BUILD, "twostep-verify")
# TWOSTEP_PAM_SO / TWOSTEP_PAM_HARNESS point the module suites at another build.
MODULE = os.path.abspath(os.environ.get("TWOSTEP_PAM_SO") or os.path.join(BUILD, "pam_twostep.so"))
HARNESS = os.path.abspath(os.environ.get("TWOSTEP_PAM_HARNESS") or os.path.join(BUILD, "pam_harness"))
FAKES = os.path.join(ROOT, "tests", "fakehelpers")
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

# libpam's return codes (security/_pam_types.h) and the helper's verdict bytes.
PAM_SUCCESS = 0
PAM_SERVICE_ERR = 3
PAM_SYSTEM_ERR = 4
PAM_PERM_DENIED = 6
PAM_AUTH_ERR = 7
PAM_AUTHINFO_UNAVAIL = 9
PAM_MAXTRIES = 11
PAM_CONV_ERR = 19
PAM_IGNORE = 25
VERDICT_SYSTEM_ERROR = 5


def run(cmd, check=True, **kw):
    """Runs a command with its output captured as text; with `check`, fails the test with
    that output when it exits non-zero."""
    kw.setdefault("timeout", 30)
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        pytest.fail("%s exited %d\nstdout: %s\nstderr: %s"
                    % (" ".join(map(str, cmd)), p.returncode, p.stdout, p.stderr))
    return p


def wait_for_socket(path, proc, timeout=10):
    """Waits until a server started as `proc` has created its socket at `path`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path):
            return
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"server exited early: {err}")
        time.sleep(0.02)
    raise AssertionError(f"{path} did not appear")


def oathtool(secret=SECRET, at=None, algorithm="sha1", digits=6, period=30):
    """The independent reference: codes come from oathtool, never from our own code."""
    at = int(time.time()) if at is None else int(at)
    out = subprocess.run(
        ["oathtool", f"--totp={algorithm}", "-d", str(digits), "-s", f"{period}s",
         "-N", f"@{at}", "-b", secret],
        check=True, capture_output=True, text=True)
    return out.stdout.strip()



def state_text(path):
    """A state file's current text, read as the helper reads it (StateFile): the newest of
    its two slots whose CRC-32 holds, or the whole file when it is the older plain text.
    Fails the test when neither slot is valid."""
    import struct
    import zlib
    data = open(path, "rb").read()
    size = len(data) // 2
    if data.startswith(b"v="):
        return data.decode()
    assert size in (4096, 8192, 16384, 32768) and len(data) == 2 * size, f"{path}: {len(data)} bytes"
    slots = []
    for i in (0, 1):
        s = data[i * size:(i + 1) * size]
        if s[:4] != b"TSS2":
            continue
        seq, n, crc = struct.unpack("<QII", s[4:20])
        if n <= size - 20 and zlib.crc32(s[:16] + s[20:20 + n]) == crc:
            slots.append((seq, s[20:20 + n]))
    assert slots, f"{path}: neither slot is valid"
    return max(slots)[1].decode()


def mbox_messages(path, timeout=30):
    """Every message of the mailbox file PATH, oldest first ([] when there is none), read
    under the locks exim4 takes while it appends one (fcntl on the file and PATH.lock):
    read without them, a message still being written comes back cut short, with no body."""
    deadline = time.time() + timeout
    while os.path.exists(path):
        box = mailbox.mbox(path, create=False)
        try:
            box.lock()
        except mailbox.ExternalClashError:
            box.close()
            if time.time() > deadline:
                raise
            time.sleep(0.05)
            continue
        try:
            return list(box)
        finally:
            box.unlock()
            box.close()
    return []


def wrong(code):
    """A code that is not `code`: its last digit changed."""
    return code[:-1] + ("0" if code[-1] != "0" else "1")

def read_setup_screen(stream):
    """Reads the enrolment wizard's screen up to its confirmation step, as a person looks
    at it before typing a code. Returns the lines read and the key shown for manual entry."""
    screen = []
    for line in stream:
        screen.append(line.rstrip("\n"))
        if line.startswith("Step 2 of 3"):
            break
    keys = [l.strip().replace(" ", "") for l in screen if re.fullmatch(r"\s+([A-Z2-7]{4} ?)+", l)]
    return screen, (keys[0] if keys else None)


class Installation:
    """A private twostep setup under a temp dir; nothing under /etc changes."""

    def __init__(self, root, **conf):
        self.root = root
        self.conf = os.path.join(root, "twostep.conf")
        self.state = os.path.join(root, "state")
        self.keys = os.path.join(root, "keys")
        self.audit = os.path.join(root, "audit.jsonl")
        self.pamdir = os.path.join(root, "pam.d")
        os.makedirs(self.pamdir)
        self.write_config(**conf)
        self.cli("admin", "init")

    def write_config(self, **conf):
        lines = {"state_dir": self.state, "key_dir": self.keys, "audit_log": self.audit, "issuer": "TestCorp"}
        lines.update({k: str(v) for k, v in conf.items()})
        with open(self.conf, "w") as f:
            f.write("".join(f"{k} = {v}\n" for k, v in lines.items()))
        os.chmod(self.conf, 0o644)

    def cli(self, *args, input=None, check=True, env=None, login_uid=None):
        """Runs the CLI as root with `login_uid` as its audit login uid (None: unset, so what
        the CLI audits as the acting admin does not depend on how the test run was started)."""
        r = subprocess.run([CLI, *args, "--config", self.conf], input=input, capture_output=True,
                           text=True, timeout=60, env=env, preexec_fn=lambda: set_login_uid(login_uid))
        if check and r.returncode != 0:
            raise AssertionError(f"twostep {' '.join(args)} failed ({r.returncode}): {r.stdout}{r.stderr}")
        return r

    def enroll(self, user, secret=SECRET, *extra):
        self.cli("admin", "import", user, "--secret", "-", *extra, input=secret + "\n")

    def service(self, name="tstest", args="", before="", after="account required pam_permit.so\n"):
        with open(os.path.join(self.pamdir, name), "w") as f:
            f.write(before)
            f.write(f"auth required {MODULE} helper={HELPER} config={self.conf} {args}\n")
            f.write(after)
        return name

    def login(self, user, answer, service="tstest", timeout=30):
        """A real PAM login through `twostep try` (a Swift host loading the module)."""
        return subprocess.run([CLI, "try", "--service", service, "--pam-dir", self.pamdir, "--user", user],
                              input="" if answer is None else answer + "\n", capture_output=True,
                              text=True, timeout=timeout)

    def audit_events(self):
        if not os.path.exists(self.audit):
            return []
        with open(self.audit) as f:
            return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(autouse=True, scope="session")
def nothing_listens_at_the_default_socket():
    """The module asks /run/twostep/verify.sock first (its default socket=) and spawns
    helper= only when nothing root-owned answers there. A listener left at that path (an
    installed twostep-helperd, a crashed test) would decide the suites' logins with its own
    config: refuse to run rather than test the wrong thing. tests/test_speed.py starts and
    removes its own."""
    import socket
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect("/run/twostep/verify.sock")
        alive = True
    except OSError:
        alive = False
    finally:
        s.close()
    if alive:
        pytest.fail("a helper listens at /run/twostep/verify.sock (stop twostep-helperd.socket first)")
    yield


@pytest.fixture
def inst():
    for path in (CLI, HELPER, MODULE):
        assert os.path.exists(path), f"{path} missing: run `make` first"
    root = tempfile.mkdtemp(prefix="twostep-it-")
    try:
        yield Installation(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def login_at_prompt(pamdir, service, user, preexec_fn=None):
    """A libpam login (pam_harness --answers-at-prompt) held at its first prompt: yields the
    harness process once the code prompt is out, for the test to look at the login while it
    waits; `proc.communicate(answer + "\n")` answers it. Killed if the test ends first."""
    proc = subprocess.Popen([HARNESS, "--confdir", pamdir, "--service", service, "--user", user,
                             "--answers", "-", "--answers-at-prompt"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=preexec_fn)
    try:
        first = proc.stdout.readline()
        assert first.startswith("PROMPT_ECHO_OFF"), first
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def harness_login(pamdir, service, user, answer, timeout=60):
    """One login through libpam (tests/harness/pam_harness.c); returns the PAM code."""
    r = subprocess.run([HARNESS, "--confdir", pamdir, "--service", service,
                        "--user", user, "--answers", "-"],
                       input="" if answer is None else answer + "\n",
                       capture_output=True, text=True, timeout=timeout)
    codes = [int(c) for c in re.findall(r"^RESULT: .* \((-?\d+)\)$", r.stdout, re.M)]
    assert len(codes) == 1, (r.stdout, r.stderr)
    return codes[0]


def after_pauses(attempt, done, seconds=30):
    """Calls `attempt` until `done` holds for its result (or `seconds` pass), and returns the
    last result. A connection that ends in a logged refusal, an abandoned password prompt
    among them, holds its slots for the refusal pause after it: they come back a moment
    after the client has gone, not at once."""
    deadline = time.monotonic() + seconds
    while True:
        result = attempt()
        if done(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def set_login_uid(uid):
    """In a child before exec: its audit login uid (/proc/self/loginuid), None for unset.
    Root may set it unless the kernel made login uids immutable; then it stays as it was."""
    try:
        with open("/proc/self/loginuid", "w") as f:
            f.write(str(4294967295 if uid is None else uid))
    except OSError:
        pass


def raw_request(user, fields, sock):
    """A hand-made client running as `user`, speaking the frame protocol directly: what
    the helper decides must come from SO_PEERCRED, not from anything the client says.
    Returns "RESULT <verdict>", "PROMPT <text>" or "EOF"."""
    code = f"""
import socket, struct
s = socket.socket(socket.AF_UNIX); s.connect({sock!r})
payload = b"".join(k.encode() + b"\\0" + v.encode() + b"\\0" for k, v in {fields!r})
s.sendall(bytes([1]) + struct.pack(">I", len(payload)) + payload)
while True:
    h = s.recv(5, socket.MSG_WAITALL)
    if len(h) < 5: print("EOF"); break
    n = struct.unpack(">I", h[1:])[0]
    body = s.recv(n, socket.MSG_WAITALL) if n else b""
    if h[0] == 0x1F: print("RESULT", body[0]); break
    if h[0] in (0x10, 0x11): print("PROMPT", body.decode()); break
"""
    r = subprocess.run(["runuser", "-u", user, "--", "/usr/bin/python3", "-c", code],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def installed_files(pamdir):
    """What `make install` puts under DESTDIR, with modes (PREFIX=/usr)."""
    return {
        "usr/bin/twostep": 0o755,
        "usr/libexec/twostep/twostep-helper": 0o755,
        "usr/libexec/twostep/twostep-verify": 0o755,
        f"{pamdir}/pam_twostep.so": 0o644,
        "etc/twostep/twostep.conf": 0o644,
        "etc/pam.d/twostep": 0o644,
        "etc/logrotate.d/twostep": 0o644,
        "lib/systemd/system/twostep-helper.socket": 0o644,
        "lib/systemd/system/twostep-helper@.service": 0o644,
        "lib/systemd/system/twostep-helperd.socket": 0o644,
        "lib/systemd/system/twostep-helperd.service": 0o644,
        "usr/share/doc/twostep/examples/sshd": 0o644,
        "usr/share/doc/twostep/examples/sudo": 0o644,
        "usr/share/man/man1/twostep.1": 0o644,
        "usr/share/man/man5/twostep.conf.5": 0o644,
        "usr/share/man/man8/pam_twostep.8": 0o644,
        "usr/share/man/man8/twostep-helper.8": 0o644,
        "usr/share/pam-configs/twostep": 0o644,
        "usr/share/bash-completion/completions/twostep": 0o644,
        "usr/share/zsh/vendor-completions/_twostep": 0o644,
        "usr/share/fish/vendor_completions.d/twostep.fish": 0o644,
    }
