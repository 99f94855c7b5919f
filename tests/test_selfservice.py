# SPDX-License-Identifier: Apache-2.0
"""Self-service without setuid: real unprivileged users with real passwords talk to the
helper over its Unix socket (started by `serve --socket` or by systemd-socket-activate)."""
import concurrent.futures
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import stat
import struct
import subprocess
import tempfile
import time

import pytest

from conftest import (CLI, HELPER, MODULE, PAM_SUCCESS, SECRET, Installation, after_pauses, harness_login,
                      oathtool, raw_request, read_setup_screen, wait_for_socket)

PASSWORD = "Corr3ct-Horse-Battery"


class Host:
    """Users with passwords, a PAM service for password checks, the helper serving a socket."""

    def __init__(self, root, **conf):
        os.chmod(root, 0o755)  # users read the config; state and keys stay 0700
        self.tag = secrets.token_hex(3)
        self.pam_service = f"twostep-test-pw-{self.tag}"
        with open(f"/etc/pam.d/{self.pam_service}", "w") as f:
            f.write("auth required pam_unix.so\naccount required pam_unix.so\n")
        self.inst = Installation(root, password_service=self.pam_service, socket=os.path.join(root, "helper.sock"),
                                 **conf)
        self.sock = os.path.join(root, "helper.sock")
        self.users = []
        self.code_times = {}
        self.server = None

    def user(self):
        name = f"tsu{self.tag}{len(self.users)}"
        subprocess.run(["useradd", "-M", "-s", "/bin/sh", name], check=True)
        subprocess.run(["chpasswd"], input=f"{name}:{PASSWORD}\n", text=True, check=True)
        self.users.append(name)
        return name

    def serve(self, how):
        if how == "serve":
            cmd = [HELPER, "serve", "--config", self.inst.conf, "--socket", self.sock]
        else:
            cmd = ["systemd-socket-activate", "--accept", "-l", self.sock, HELPER, "serve", "--config", self.inst.conf]
        self.server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        wait_for_socket(self.sock, self.server)
        os.chmod(self.sock, 0o666)  # systemd-socket-activate has no SocketMode=; the unit sets it

    def as_user(self, user, *args, input=None):
        return subprocess.run(["runuser", "-u", user, "--", CLI, *args, "--config", self.inst.conf],
                              input=input, capture_output=True, text=True, timeout=60)

    def enroll(self, user, password=PASSWORD):
        """Runs `twostep enroll` as `user` like a person: password, read the key, type a code."""
        p = subprocess.Popen(["runuser", "-u", user, "--", CLI, "enroll", "--config", self.inst.conf],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        p.stdin.write(password + "\n")
        p.stdin.flush()
        screen, key = read_setup_screen(p.stdout)
        if key is None:
            out, err = p.communicate(timeout=30)
            return p.returncode, "\n".join(screen) + out, err, None
        out, err = p.communicate(self.code(key) + "\n", timeout=60)
        return p.returncode, "\n".join(screen) + out, err, key

    def code(self, key):
        """A code for now, remembering when: `next_code` answers with the step after it."""
        self.code_times[key] = time.time()
        return oathtool(key, at=self.code_times[key])

    def next_code(self, key):
        """The code of the step after the last `code(key)`. Not now + 30 s: a code typed at
        the very end of its step and checked in the next one teaches the helper a step of
        drift, and then now + 30 s is two steps ahead of where it looks."""
        return oathtool(key, at=self.code_times[key] + 30)

    def close(self):
        if self.server and self.server.poll() is None:
            os.killpg(self.server.pid, signal.SIGTERM)
            self.server.wait(timeout=10)
        for u in self.users:
            subprocess.run(["userdel", "-f", u], capture_output=True)
        os.unlink(f"/etc/pam.d/{self.pam_service}")


@pytest.fixture
def host():
    root = tempfile.mkdtemp(prefix="twostep-ss-")
    h = Host(root)
    try:
        yield h
    finally:
        h.close()
        shutil.rmtree(root, ignore_errors=True)



@pytest.mark.parametrize("how", ["serve", "systemd-socket-activate"])
def test_user_enrols_without_sudo_and_next_login_asks_for_the_code(host, how):
    if how != "serve" and not shutil.which("systemd-socket-activate"):
        pytest.skip("systemd-socket-activate missing")
    host.serve(how)
    alice = host.user()
    rc, out, err, key = host.enroll(alice)
    assert rc == 0, out + err
    assert "Password: " in err
    assert "Done: " in out and len(re.findall(r"\b[0-9a-z]{5}-[0-9a-z]{5}\b", out)) == 10
    st = json.loads(host.as_user(alice, "status", "--json").stdout)
    assert st["enrolled"] is True and st["backup_codes_left"] == 10 and st["locked"] is False
    host.inst.service()
    assert host.inst.login(alice, host.next_code(key)).returncode == 0
    events = [(e["event"], e["result"]) for e in host.inst.audit_events() if e["user"] == alice]
    assert ("enroll", "success") in events


def test_wrong_password_changes_nothing_and_counts(host):
    host.serve("serve")
    alice = host.user()
    rc, out, err, key = host.enroll(alice, password="wrong")
    assert rc != 0 and key is None
    assert "nothing was changed" in err
    st = json.loads(host.as_user(alice, "status", "--json").stdout)
    assert st["enrolled"] is False
    ev = [e for e in host.inst.audit_events() if e["user"] == alice]
    assert ev[-1]["event"] == "enroll" and ev[-1]["result"] == "failure" and ev[-1]["detail"] == "wrong password"


def test_wrong_passwords_count_and_lock_the_user_out_saying_so(host):
    """Each wrong password in a self-service request counts against the 2FA limiter; the
    one that locks says so (message and `lockout` event, after the count is saved)."""
    host.inst.write_config(password_service=host.pam_service, socket=host.sock, rate_limit="2/300", lockout="1h")
    host.serve("serve")
    alice = host.user()
    host.inst.enroll(alice)
    first = host.as_user(alice, "backup-codes", input="wrong-password\n")
    assert first.returncode != 0 and "locked" not in (first.stdout + first.stderr).lower(), first
    second = host.as_user(alice, "backup-codes", input="wrong-password\n")
    assert second.returncode != 0 and "locked" in (second.stdout + second.stderr).lower(), second
    events = [(e["event"], e["result"], e["detail"]) for e in host.inst.audit_events() if e["user"] == alice]
    assert [e for e in events if e[2] == "wrong password"] == [("backup_codes", "failure", "wrong password")] * 2
    assert [e[0] for e in events].count("lockout") == 1
    assert json.loads(host.as_user(alice, "status", "--json").stdout)["locked"] is True


def test_other_users_enrolment_cannot_be_touched(host):
    host.serve("serve")
    alice, bob = host.user(), host.user()
    host.inst.enroll(bob)
    for cmd in (["disable"], ["status"], ["backup-codes"], ["qr"], ["enroll", "--replace"]):
        started = time.monotonic()
        r = host.as_user(alice, *cmd, "--user", bob, input=PASSWORD + "\n" + oathtool() + "\n")
        assert r.returncode != 0, cmd
        assert "only manage your own" in r.stderr, r.stderr
        # No password or code was asked, so no limiter counts the refusal: the helper
        # answers it only after a pause (a lower bound, not a timing), which with the
        # per-user connection cap bounds how fast one user can add audit lines.
        assert time.monotonic() - started >= 2.0, cmd
    assert json.loads(host.inst.cli("admin", "show", bob, "--json").stdout)["enrolled"] is True
    refused = [e for e in host.inst.audit_events() if e["user"] == bob and e["result"] == "refused"]
    assert len(refused) == 5 and all("may act only on its own enrolment" in e["detail"] for e in refused), refused


def test_a_name_spelled_alike_is_another_user(host):
    """Names are compared as bytes, as NSS compares them: an account named with the other
    Unicode spelling of another account's name (`e` + U+0301 against U+00E9, one String to
    Swift's ==) is another user, and can neither read nor change that one's enrolment."""
    composed, decomposed = f"ts\u00e9{host.tag}", f"tse\u0301{host.tag}"
    for name in (composed, decomposed):
        subprocess.run(["useradd", "--badname", "-M", "-s", "/bin/sh", name], check=True)
        host.users.append(name)
    host.inst.enroll(composed)
    host.serve("serve")
    for cmd in (["status"], ["devices"]):
        r = host.as_user(decomposed, *cmd, "--user", composed)
        assert r.returncode != 0 and "only manage your own" in r.stderr, r.stdout + r.stderr


def test_a_name_that_is_not_utf8_gets_no_self_service(host):
    """An account name that is not valid UTF-8 would have to be decoded with replacement
    characters, and two such names could then read as one: the helper refuses the caller
    instead of guessing."""
    name = b"tsx\xff" + host.tag.encode()
    subprocess.run([b"useradd", b"--badname", b"-M", b"-s", b"/bin/sh", name], check=True)
    try:
        host.serve("serve")
        r = subprocess.run([b"runuser", b"-u", name, b"--", CLI.encode(), b"status", b"--config",
                            host.inst.conf.encode()], capture_output=True, timeout=60)
        assert r.returncode != 0 and b"has no user name" in r.stderr, r.stdout + r.stderr
    finally:
        subprocess.run([b"userdel", name], capture_output=True)


def test_peer_credentials_decide_who_is_calling(host):
    host.serve("serve")
    alice, bob = host.user(), host.user()
    host.inst.enroll(bob)
    base = [("version", "1"), ("mode", "self")]
    # Asking for bob's status as alice: denied (verdict 7) without a prompt.
    assert raw_request(alice, base + [("command", "status"), ("user", bob)], host.sock) == "RESULT 7"
    # A login-verification request over the socket from a user: refused (system error, 5).
    pam = [("version", "1"), ("mode", "pam"), ("user", bob), ("service", "x")]
    assert raw_request(alice, pam, host.sock) == "RESULT 5"
    # Alice's own disable asks for her password first.
    host.inst.enroll(alice)
    assert raw_request(alice, base + [("command", "disable")], host.sock).startswith("PROMPT Password")
    # "Root" of a user namespace is alice to the helper: the CLI asks it over the socket
    # (it tried to open the store itself, and said the config file was unsafe). Owners
    # cannot be checked there, so the config is not read: the message says so.
    userns = ["runuser", "-u", alice, "--", "unshare", "-U", "-r", CLI, "status"]
    r = subprocess.run(userns + ["--config", host.inst.conf], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "user namespace" in r.stderr and "--socket PATH" in r.stderr, r.stdout + r.stderr
    r = subprocess.run(userns + ["--json", "--socket", host.sock], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and json.loads(r.stdout)["enrolled"] is True, r.stdout + r.stderr
    r = subprocess.run(userns + ["--user", bob, "--socket", host.sock], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "status: refused; nothing was changed" in r.stderr, r.stdout + r.stderr


def test_changes_need_password_and_a_current_code(host):
    host.serve("serve")
    alice = host.user()
    host.inst.enroll(alice)  # secret: conftest.SECRET
    before = open(os.path.join(host.inst.state, f"{alice}.record"), "rb").read()
    for cmd in (["backup-codes"], ["qr"], ["disable"], ["enroll", "--replace"]):
        # Right password, wrong code.
        r = host.as_user(alice, *cmd, input=PASSWORD + "\n000000\n")
        assert r.returncode != 0 and "nothing was changed" in r.stderr, (cmd, r.stderr)
        # Wrong password: the code is not even asked.
        r = host.as_user(alice, *cmd, input="nope\n" + oathtool() + "\n")
        assert r.returncode != 0 and "Verification code" not in r.stderr, (cmd, r.stderr)
        host.inst.cli("admin", "unlock", alice)
    assert open(os.path.join(host.inst.state, f"{alice}.record"), "rb").read() == before
    t = time.time()
    r = host.as_user(alice, "backup-codes", "--json", input=PASSWORD + "\n" + oathtool(at=t) + "\n")
    assert r.returncode == 0, r.stderr
    backup = json.loads(r.stdout)["backup_codes"]
    assert len(backup) == 10
    r = host.as_user(alice, "qr", "--json", input=PASSWORD + "\n" + oathtool(at=t + 30) + "\n")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["otpauth_uri"].startswith("otpauth://totp/")
    # Both steps in the window are spent: a backup code stands in for the code.
    r = host.as_user(alice, "disable", input=PASSWORD + "\n" + backup[0] + "\n")
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(os.path.join(host.inst.state, f"{alice}.record"))
    assert "disable" in [e["event"] for e in host.inst.audit_events() if e["user"] == alice]
    # After disable: with nullok no code is asked; without it the login fails.
    host.inst.service("withnullok", args="nullok", after="auth required pam_permit.so\naccount required pam_permit.so\n")
    r = host.inst.login(alice, None, service="withnullok")
    assert r.returncode == 0 and "Verification code" not in r.stderr
    host.inst.service("strict", after="auth required pam_permit.so\naccount required pam_permit.so\n")
    assert host.inst.login(alice, None, service="strict").returncode == 1


def test_replace_moves_to_a_new_authenticator(host):
    host.serve("serve")
    alice = host.user()
    host.inst.enroll(alice)
    p = subprocess.Popen(["runuser", "-u", alice, "--", CLI, "enroll", "--replace", "--config", host.inst.conf],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.stdin.write(PASSWORD + "\n" + oathtool() + "\n")
    p.stdin.flush()
    _, key = read_setup_screen(p.stdout)
    out, err = p.communicate(host.code(key) + "\n", timeout=60)
    assert p.returncode == 0, out + err
    assert "Code from your current authenticator app" in err
    host.inst.service()
    assert host.inst.login(alice, host.next_code(key)).returncode == 0
    assert host.inst.login(alice, oathtool(at=time.time() + 60)).returncode == 1  # the old secret no longer works


def test_parallel_requests_leave_consistent_records(host):
    host.serve("serve")
    users = [f"tsp{host.tag}{i}" for i in range(8)]

    def enroll(u):
        return subprocess.run([CLI, "enroll", "--user", u, "--json", "--socket", host.sock],
                              capture_output=True, text=True, timeout=60)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(enroll, users + users[:4]))
    ok = [r for r in results if r.returncode == 0]
    assert len(ok) == 8, [r.stderr for r in results]
    assert all("already enrolled" in r.stderr for r in results if r.returncode != 0)
    uris = {json.loads(r.stdout)["user"]: json.loads(r.stdout)["otpauth_uri"] for r in ok}
    listed = [u["user"] for u in json.loads(host.inst.cli("admin", "list", "--json").stdout)["users"]]
    assert sorted(listed) == sorted(users)
    host.inst.service()
    for u in users:
        key = re.search(r"secret=([A-Z2-7]+)", uris[u]).group(1)
        assert host.inst.login(u, oathtool(key)).returncode == 0, u


def test_one_user_cannot_hold_every_connection(host):
    """Each connection may wait minutes at a password prompt; a user gets three at once,
    and other users are not blocked by them."""
    host.serve("serve")
    alice, bob = host.user(), host.user()
    host.inst.enroll(alice)
    code = f"""
import socket, struct, sys
def req():
    s = socket.socket(socket.AF_UNIX); s.connect({host.sock!r})
    p = b"version\\0001\\0mode\\0self\\0command\\0disable\\0"
    try:
        s.sendall(bytes([1]) + struct.pack(">I", len(p)) + p)
    except (BrokenPipeError, ConnectionResetError):
        pass   # turned away before the request went out: the answer is still there to read
    return s
held = []
for i in range(4):
    s = req()
    h = s.recv(5, socket.MSG_WAITALL)
    body = s.recv(struct.unpack(">I", h[1:])[0], socket.MSG_WAITALL)
    print(hex(h[0]), body.decode(errors="replace").splitlines()[0])
    held.append(s)
sys.stdout.flush()
sys.stdin.readline()   # hold them until the test is done
"""
    holder = subprocess.Popen(["runuser", "-u", alice, "--", "/usr/bin/python3", "-c", code],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        lines = [holder.stdout.readline().strip() for _ in range(4)]
        assert all(l.startswith("0x10 Password") for l in lines[:3]), lines
        assert lines[3].startswith("0x13 Too many open twostep requests"), lines
        # The CLI shows the same refusal (whether or not its request went out first).
        r = host.as_user(alice, "status")
        assert r.returncode != 0 and "Too many open twostep requests" in r.stderr, r.stdout + r.stderr
        # Bob is not affected by Alice's open connections.
        assert json.loads(host.as_user(bob, "status", "--json").stdout)["enrolled"] is False
    finally:
        holder.communicate("\n", timeout=30)
    # Once Alice's connections end (and the pause after each abandoned prompt), her slots
    # are free again.
    r = after_pauses(lambda: host.as_user(alice, "status", "--json"), lambda r: r.returncode == 0)
    assert json.loads(r.stdout)["enrolled"] is True, r.stderr


# --- connection slots, the non-root cap, accounts, abandoned password prompts -------------

HOLD = """
import json, socket, struct, sys
path, n, payload = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode().replace(b",", b"\\0")
held = []
for i in range(n):
    s = socket.socket(socket.AF_UNIX); s.connect(path)
    try:
        s.sendall(bytes([1]) + struct.pack(">I", len(payload)) + payload)
    except (BrokenPipeError, ConnectionResetError):
        pass   # turned away before the request went out: the answer is still there to read
    h = s.recv(5, socket.MSG_WAITALL)
    body = s.recv(struct.unpack(">I", h[1:])[0], socket.MSG_WAITALL) if len(h) == 5 else b""
    print(hex(h[0]) if h else "EOF", body.decode(errors="replace").splitlines()[0] if body else "", flush=True)
    held.append(s)
sys.stdin.readline()   # hold them until the test is done
"""


# SelfService.refusalPauseSeconds: how long a connection that ended in a logged refusal (an
# abandoned password prompt among them) keeps its slot after the client has gone.
REFUSAL_PAUSE = 2


def hold(user, sock, n, command="enroll"):
    """Opens n self-service connections as `user`, each sending COMMAND and left at its
    first answer (a password prompt holds the worker); returns the process and the first
    frame of each ("0x10 Password:", "0x13 <refusal>")."""
    payload = f"version,1,mode,self,command,{command},"
    p = subprocess.Popen(["runuser", "-u", user, "--", "/usr/bin/python3", "-c", HOLD, sock, str(n), payload],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return p, [p.stdout.readline().strip() for _ in range(n)]


def held_and_let_go(user, sock, n, command="enroll"):
    """hold(), then let the connections go at once; the first frame of each."""
    p, lines = hold(user, sock, n, command)
    p.communicate("\n", timeout=30)
    return lines


def test_connection_slots_are_locks_in_one_file_and_nothing_piles_up(host):
    """The slots are byte-range locks on state_dir/.conn-slots (0600, root's): however many
    users connect, state_dir gains that one file and no file per uid and slot."""
    host.serve("serve")
    users = [host.user() for _ in range(3)]
    for u in users:
        for _ in range(2):
            r = host.as_user(u, "status", "--json")
            assert json.loads(r.stdout)["enrolled"] is False, r.stderr
    # Three users' connections held at once, then let go: still the one file.
    held = [hold(u, host.sock, 2) for u in users]
    try:
        assert all(lines == ["0x10 Password:"] * 2 for _, lines in held), held
    finally:
        for p, _ in held:
            p.communicate("\n", timeout=30)
    conn = sorted(n for n in os.listdir(host.inst.state) if n.startswith(".conn"))
    assert conn == [".conn-slots"], conn
    st = os.lstat(os.path.join(host.inst.state, ".conn-slots"))
    assert stat.S_ISREG(st.st_mode) and st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o600 and st.st_size == 0, st
    # The slots were given back when the connections ended (and their pauses). Each try
    # waits out the pause first: a try that got only some slots abandons their prompts, whose
    # pauses would otherwise stagger with the next try's and never leave all three free.
    for _ in range(6):
        time.sleep(REFUSAL_PAUSE + 0.5)
        lines = held_and_let_go(users[0], host.sock, 3)
        if lines == ["0x10 Password:"] * 3:
            break
    assert lines == ["0x10 Password:"] * 3, lines
    # A symbolic link in its place is not followed: the connection is turned away.
    target = os.path.join(host.inst.root, "elsewhere")
    open(target, "w").close()
    os.unlink(os.path.join(host.inst.state, ".conn-slots"))
    os.symlink(target, os.path.join(host.inst.state, ".conn-slots"))
    r = host.as_user(users[0], "status", "--json")
    assert r.returncode != 0 and r.stdout == "", r.stdout + r.stderr
    assert os.stat(target).st_size == 0 and os.path.islink(os.path.join(host.inst.state, ".conn-slots"))


def test_a_uid_without_an_account_is_refused_before_its_request(host):
    """A uid no account has cannot own an enrolment: it is refused at once (an error frame
    and a denied verdict), without a worker waiting for its request."""
    host.serve("serve")
    uid = next(u for u in range(61000, 65000) if not any(p.pw_uid == u for p in pwd.getpwall()))
    code = f"""
import json, socket, struct, time
s = socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect({host.sock!r})
t = time.monotonic(); frames = []
try:
    while True:
        h = s.recv(5, socket.MSG_WAITALL)
        if len(h) < 5: break
        body = s.recv(struct.unpack(">I", h[1:])[0], socket.MSG_WAITALL)
        frames.append([h[0], body.decode(errors="replace") if h[0] != 0x1F else body[0]])
except socket.timeout:
    frames.append("timeout")
print(json.dumps({{"frames": frames, "seconds": time.monotonic() - t}}))
"""

    def as_stranger():
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    r = subprocess.run(["/usr/bin/python3", "-c", code], preexec_fn=as_stranger, cwd="/",
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    # No request was sent: the refusal came anyway, at once.
    assert out["frames"][0][0] == 0x13 and "no account" in out["frames"][0][1], out
    assert out["frames"][1:] == [[0x1F, 7]], out
    assert out["seconds"] < 1, out


def test_users_together_never_hold_every_worker(host):
    """max_connections = 4: non-root callers get at most 2 of the workers at once, whatever
    their uids; the others are turned away at once and root's login finds a free worker
    (helper=/nonexistent: only the server can have answered it)."""
    host.inst.write_config(password_service=host.pam_service, socket=host.sock, max_connections=4)
    host.serve("serve")
    alice, bob, carol = host.user(), host.user(), host.user()
    host.inst.enroll(carol)
    with open(os.path.join(host.inst.pamdir, "viasocket"), "w") as f:
        f.write(f"auth required {MODULE} helper=/nonexistent config={host.inst.conf} socket={host.sock} timeout=10\n"
                "account required pam_permit.so\n")
    a, alice_lines = hold(alice, host.sock, 3)
    b, bob_lines = hold(bob, host.sock, 1)
    try:
        assert alice_lines[:2] == ["0x10 Password:"] * 2, alice_lines
        busy = "0x13 The twostep helper is busy with other users' requests"
        assert alice_lines[2].startswith(busy) and bob_lines[0].startswith(busy), (alice_lines, bob_lines)
        r = host.as_user(bob, "status")
        assert r.returncode != 0 and "busy with other users' requests" in r.stderr, r.stdout + r.stderr
        assert harness_login(host.inst.pamdir, "viasocket", carol, oathtool()) == PAM_SUCCESS
    finally:
        a.communicate("\n", timeout=30)
        b.communicate("\n", timeout=30)
    # Once Alice's connections end (and the pause after each abandoned prompt), Bob is served.
    r = after_pauses(lambda: host.as_user(bob, "status", "--json"), lambda r: r.returncode == 0)
    assert json.loads(r.stdout)["enrolled"] is False, r.stderr


def test_abandoned_password_prompts_are_not_wrong_passwords(host):
    """Ctrl-C (or end of input) at `Password:` is not a wrong password: more abandoned
    prompts than rate_limit allows leave the user able to log in and to change things, and
    each is audited as cancelled."""
    host.inst.write_config(password_service=host.pam_service, socket=host.sock, rate_limit="2/300", lockout="1h")
    host.serve("serve")
    alice = host.user()
    host.inst.enroll(alice)
    for _ in range(2):
        # End of input at the prompt: the CLI tells the helper it could not ask.
        r = host.as_user(alice, "backup-codes", input="")
        out = r.stdout + r.stderr
        assert r.returncode != 0 and "cancelled" in out and "locked" not in out.lower(), out
    for _ in range(2):
        # The CLI killed at the prompt (Ctrl-C): the connection simply closes. Each abandoned
        # prompt holds one of alice's three slots for the refusal pause after it, so a slot
        # may still be taken: wait for one (turned-away connections are not logged).
        def prompt_held():
            p, lines = hold(alice, host.sock, 1, command="backup-codes")
            if lines != ["0x10 Password:"]:
                assert lines[0].startswith("0x13 Too many open"), lines
                p.communicate("\n", timeout=30)
            return p, lines
        p, lines = after_pauses(prompt_held, lambda held: held[1] == ["0x10 Password:"])
        assert lines == ["0x10 Password:"], lines
        p.stdin.close()
        p.kill()
        p.wait(timeout=30)
    deadline = time.monotonic() + 10
    while len([e for e in host.inst.audit_events() if e["user"] == alice and e["result"] == "cancelled"]) < 4:
        assert time.monotonic() < deadline, host.inst.audit_events()
        time.sleep(0.05)
    events = [(e["event"], e["result"], e.get("detail")) for e in host.inst.audit_events() if e["user"] == alice]
    assert [e for e in events if e[1] != "success"] == [("backup_codes", "cancelled", "password prompt abandoned")] * 4, events
    assert json.loads(host.as_user(alice, "status", "--json").stdout)["locked"] is False
    r = host.as_user(alice, "backup-codes", "--json", input=PASSWORD + "\n" + host.code(SECRET) + "\n")
    assert r.returncode == 0 and len(json.loads(r.stdout)["backup_codes"]) == 10, r.stderr
    host.inst.service()
    assert host.inst.login(alice, host.next_code(SECRET)).returncode == 0


FLOOD = """
import socket, struct, sys, time
path, seconds = sys.argv[1], float(sys.argv[2])
payload = b"version\\0001\\0mode\\0self\\0command\\0disable\\0"
prompts = capped = 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    s = socket.socket(socket.AF_UNIX); s.connect(path)
    try:
        s.sendall(bytes([1]) + struct.pack(">I", len(payload)) + payload)
    except OSError:
        pass   # turned away before the request went out: the answer is still there to read
    h = s.recv(5, socket.MSG_WAITALL)
    body = s.recv(struct.unpack(">I", h[1:])[0], socket.MSG_WAITALL)
    if h[0] == 0x10:
        prompts += 1   # Password: abandoned by closing
    else:
        assert body.startswith(b"Too many open"), body
        capped += 1
    s.close()
print(prompts, capped)
"""


def test_abandoned_prompts_cannot_be_logged_as_fast_as_connections_open(host):
    """An abandoned password prompt is audited (`cancelled`) and needs no password: each
    ends only after the refusal pause, holding one of the caller's three connection slots.
    A user abandoning prompts in a loop for 4 s gets at most 3 slots x 3 pauses of them
    (and of audit lines), not thousands; the other connections are turned away at the
    slot, unlogged."""
    host.serve("serve")
    alice = host.user()
    host.inst.enroll(alice)
    r = subprocess.run(["runuser", "-u", alice, "--", "/usr/bin/python3", "-c", FLOOD, host.sock, "4"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    prompts, capped = map(int, r.stdout.split())
    assert 1 <= prompts <= 9 and capped >= 1, (prompts, capped)
    time.sleep(2.5)   # the last prompts' lines (each written before its pause)
    cancelled = [e for e in host.inst.audit_events() if e["user"] == alice and e["result"] == "cancelled"]
    assert 1 <= len(cancelled) <= prompts, (len(cancelled), prompts)


@pytest.mark.parametrize("what", ["login request", "partial request"])
def test_logged_refusals_of_non_root_callers_end_after_the_pause(host, what):
    """A login request from a non-root caller, and a request that never comes whole, are
    logged to syslog and cost the caller nothing else: the helper ends either only after
    the refusal pause (a lower bound, not a timing), holding the caller's slot, so one user
    cannot write syslog lines as fast as it can open connections."""
    host.serve("serve")
    alice = host.user()
    code = f"""
import socket, struct, time
s = socket.socket(socket.AF_UNIX); s.connect({host.sock!r})
p = b"version\\0001\\0mode\\0pam\\0user\\0root\\0service\\0x\\0"
started = time.monotonic()
if {what!r} == "login request":
    s.sendall(bytes([1]) + struct.pack(">I", len(p)) + p)
else:
    s.sendall(bytes([1]) + struct.pack(">I", 64))   # a header, then no body: end of input
    s.shutdown(socket.SHUT_WR)
got = b""
while True:
    chunk = s.recv(4096)
    if not chunk: break
    got += chunk
print(round(time.monotonic() - started, 3), got[-1] if got else -1)
"""
    r = subprocess.run(["runuser", "-u", alice, "--", "/usr/bin/python3", "-c", code],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    seconds, verdict = r.stdout.split()
    assert float(seconds) >= 2.0, r.stdout
    assert verdict == "5", r.stdout   # system error, as before the pause


def read_until(stream, marker, timeout=30):
    """Reads `stream` (a pipe, unbuffered) until `marker` has arrived; returns what was read."""
    import select
    fd, seen, deadline = stream.fileno(), b"", time.monotonic() + timeout
    while marker.encode() not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {marker!r} in {seen!r}"
        if select.select([fd], [], [], left)[0]:
            chunk = os.read(fd, 4096)
            assert chunk, f"end of output before {marker!r}: {seen!r}"
            seen += chunk
    return seen.decode()


def test_an_authenticator_is_never_added_to_an_enrolment_made_while_the_request_waited(host):
    """`enroll --add NAME` by a user not yet enrolled asks no code (there is none to ask
    for). If the user becomes enrolled while that request waits at its password prompt, the
    request must not then add NAME to the new record: adding takes a code of the record."""
    host.serve("serve")
    alice = host.user()
    p = subprocess.Popen(["runuser", "-u", alice, "--", CLI, "enroll", "--add", "evil", "--json",
                          "--config", host.inst.conf],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    try:
        read_until(p.stderr, "Password:")
        host.inst.enroll(alice)  # enrolled meanwhile, by the administrator
        out, err = p.communicate((PASSWORD + "\n").encode(), timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    out, err = out.decode(), err.decode()
    assert p.returncode != 0 and "otpauth" not in out, out + err
    assert "already enrolled" in err and "nothing was saved" in err, err
    listed = json.loads(host.as_user(alice, "devices", "--json").stdout)["authenticators"]
    assert [d["name"] for d in listed] == ["default"], listed
    assert not [e for e in host.inst.audit_events() if e["event"] == "enroll" and "evil" in (e.get("detail") or "")]


def test_json_answers_are_the_only_thing_on_standard_output(host):
    """`backup-codes --json` answered with a backup code printed "Backup code accepted; 9
    left." before the JSON, and `disable --json` its farewell: stdout did not parse."""
    host.serve("serve")
    alice = host.user()
    rc, out, err, key = host.enroll(alice)
    assert rc == 0, out + err
    backup = re.findall(r"\b[0-9a-z]{5}-[0-9a-z]{5}\b", out)[0]
    r = host.as_user(alice, "backup-codes", "--json", input=f"{PASSWORD}\n{backup}\n")
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(json.loads(r.stdout)["backup_codes"]) == 10 and "Backup code accepted" in r.stderr
    r = host.as_user(alice, "disable", "--json", input=f"{PASSWORD}\n{host.next_code(key)}\n")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["enrolled"] is False and "now off" in r.stderr
