# SPDX-License-Identifier: Apache-2.0
"""A real sudo: a test user runs `sudo -S`, whose sudoers drop-in points it at a private
PAM stack (password through pam_unix, then the code through pam_twostep.so), so the
host's own sudo stack is never touched. Also the rlimit attack through that real sudo."""
import os
import secrets
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import HELPER, MODULE, Installation, oathtool, wrong
from test_hardening import can_raise_hard_limits

PASSWORD = "Corr3ct-Horse-Battery"


class SudoSite:
    def __init__(self, root):
        os.chmod(root, 0o755)
        tag = secrets.token_hex(3)
        self.user = f"tss{tag}"
        self.service = f"twostep-test-sudo-{tag}"
        self.sudoers = f"/etc/sudoers.d/twostep-test-{tag}"
        self.pam = f"/etc/pam.d/{self.service}"
        self.inst = Installation(root, rate_limit="3/300")
        subprocess.run(["useradd", "-M", "-s", "/bin/sh", self.user], check=True)
        subprocess.run(["chpasswd"], input=f"{self.user}:{PASSWORD}\n", text=True, check=True)
        with open(self.pam, "w") as f:
            f.write("auth required pam_unix.so\n"
                    f"auth required {MODULE} helper={HELPER} config={self.inst.conf}\n"
                    "account required pam_unix.so\n"
                    "session required pam_permit.so\n")
        tmp = self.sudoers + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"Defaults:{self.user} pam_service={self.service}\n"
                    f"Defaults:{self.user} !lecture, passwd_tries=1\n"
                    f"{self.user} ALL=(root) ALL\n")
        os.chmod(tmp, 0o440)
        subprocess.run(["visudo", "-cf", tmp], check=True, capture_output=True)
        os.rename(tmp, self.sudoers)
        self.inst.enroll(self.user)

    def sudo(self, answers, prefix=()):
        """`sudo -k -S id -u` as the user; answers go to sudo's prompts on stdin."""
        # No -p: it would replace every PAM prompt, the code's included.
        return subprocess.run(["runuser", "-u", self.user, "--", *prefix, "sudo", "-k", "-S", "id", "-u"], input="".join(a + "\n" for a in answers),
                              capture_output=True, text=True, timeout=60)

    def close(self):
        for p in (self.sudoers, self.pam):
            if os.path.exists(p):
                os.unlink(p)
        subprocess.run(["userdel", "-f", self.user], capture_output=True)


@pytest.fixture
def site():
    if shutil.which("sudo") is None:
        pytest.fail("sudo is not installed (scripts/deps.sh test installs it)")
    root = tempfile.mkdtemp(prefix="twostep-sudo-")
    s = SudoSite(root)
    try:
        yield s
    finally:
        s.close()
        shutil.rmtree(root, ignore_errors=True)


def test_sudo_asks_password_then_code_right_wrong_replayed(site):
    t = time.time()
    code = oathtool(at=t)
    r = site.sudo([PASSWORD, code])
    assert r.returncode == 0 and r.stdout.strip() == "0", r.stdout + r.stderr
    assert "Verification code: " in r.stderr
    r = site.sudo([PASSWORD, code])   # replayed
    assert r.returncode != 0 and r.stdout.strip() == "", r.stdout + r.stderr
    r = site.sudo([PASSWORD, wrong(oathtool(at=t + 30))])
    assert r.returncode != 0 and r.stdout.strip() == "", r.stdout + r.stderr
    results = [(e["service"], e["result"], e.get("detail")) for e in site.inst.audit_events() if e["event"] == "verify"]
    assert results == [(site.service, "success", "totp default"), (site.service, "failure", "code already used"),
                       (site.service, "failure", "wrong code")], results


def test_file_size_limit_through_real_sudo_still_locks_out(site):
    """prlimit --fsize=50 sudo ...: sudo is setuid root and hands its caller's limits to the
    helper; wrong codes must still be counted (rate_limit = 3/300 here)."""
    t = time.time()
    limited = ["prlimit", "--fsize=50", "--"]
    if not can_raise_hard_limits():
        # Root without CAP_SYS_RESOURCE cannot lift the caller's hard limit: the helper
        # refuses before any prompt, right and wrong codes alike, and writes nothing.
        state = os.path.join(site.inst.state, f"{site.user}.state")
        before = open(state, "rb").read() if os.path.exists(state) else None
        for answer in (oathtool(at=t), wrong(oathtool(at=t))):
            r = site.sudo([PASSWORD, answer], prefix=limited)
            assert r.returncode != 0 and "Verification code" not in r.stderr, r.stdout + r.stderr
        assert (open(state, "rb").read() if os.path.exists(state) else None) == before
        assert [n for n in os.listdir(site.inst.state) if ".tmp." in n] == []
        return
    for _ in range(3):
        r = site.sudo([PASSWORD, wrong(oathtool(at=t))], prefix=limited)
        assert r.returncode != 0, r.stdout + r.stderr
    events = [(e["event"], e["result"]) for e in site.inst.audit_events()]
    assert events.count(("verify", "failure")) == 3 and ("lockout", "refused") in events, events
    r = site.sudo([PASSWORD, oathtool(at=t)], prefix=limited)
    assert r.returncode != 0 and "locked" in r.stderr, r.stdout + r.stderr
    assert [n for n in os.listdir(site.inst.state) if ".tmp." in n] == []
