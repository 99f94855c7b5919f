# SPDX-License-Identifier: Apache-2.0
"""Trusted SSH keys through a real sshd on 127.0.0.1 (`AuthenticationMethods
publickey,keyboard-interactive`): sshd hands the key that passed to PAM as SSH_AUTH_INFO_0,
pam_twostep.so relays it, and the helper trusts it for `trust_ssh_key` after a correct code.

Reuses tests/test_sshd.py's SshdEnv (unique user, PAM service and port; all removed after).
`twostep devices forget` runs as the user, through a helper serving a socket, with the
user's real password (PAM service of its own) and a code.
Run: flock /tmp/twostep-systest.lock /usr/bin/python3 -m pytest -q tests/test_sshd_trust.py
"""
import base64
import calendar
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import CLI, oathtool, run, wait_for_socket
from test_sshd import SshdEnv, wrong_code

PASSWORD = "Tr0st-" + os.urandom(6).hex()


def fingerprint(pubkey):
    out = run(["ssh-keygen", "-lf", pubkey]).stdout
    return re.search(r"SHA256:[A-Za-z0-9+/]{43}", out).group(0)


@pytest.fixture(scope="module")
def env(request):
    if os.geteuid() != 0:
        pytest.fail("must run as root (useradd, /etc/pam.d, sshd)")
    e = SshdEnv()
    request.addfinalizer(e.teardown)
    e.setup()
    # Key B: a second key the user may log in with.
    e.key_a = e.key
    e.key_b = e.dir / "client_key_b"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "b", "-f", e.key_b])
    home = Path(os.path.expanduser("~" + e.user))
    with open(home / ".ssh" / "authorized_keys", "a") as f:
        f.write(Path(str(e.key_b) + ".pub").read_text())
    run(["chpasswd"], input="%s:%s\n" % (e.user, PASSWORD))
    # The self-service socket and the PAM service that checks the user's password.
    e.pw_service = "twostep-trust-pw-" + os.urandom(3).hex()
    Path("/etc/pam.d", e.pw_service).write_text("auth required pam_unix.so\naccount required pam_unix.so\n")
    request.addfinalizer(lambda: os.unlink("/etc/pam.d/" + e.pw_service))
    e.sockdir = tempfile.mkdtemp(prefix="twostep-trust-sock-")
    os.chmod(e.sockdir, 0o755)
    request.addfinalizer(lambda: shutil.rmtree(e.sockdir, ignore_errors=True))
    e.sock = os.path.join(e.sockdir, "helper.sock")
    return e


def configure(env, trust):
    # sshd's PAM service here is its unique program name (see test_sshd.py), not `sshd`.
    env.write_config("trust_ssh_key = %s" % trust, "trust_services = %s" % env.service,
                     "password_service = %s" % env.pw_service, "socket = %s" % env.sock)


def login_with(env, key, *answers, **kw):
    env.key = key
    try:
        return env.login(*answers, **kw)
    finally:
        env.key = env.key_a


def events(env, before, **match):
    return [e for e in env.audit_events()[before:] if all(e.get(k) == v for k, v in match.items())]


def test_trusted_key_skips_the_code_until_forgotten(env):
    configure(env, "1h")
    secret = env.enroll()
    fp_a = fingerprint(str(env.key_a) + ".pub")
    fp_b = fingerprint(str(env.key_b) + ".pub")
    assert fp_a != fp_b

    # First login with key A: the code is asked, and the key is trusted for an hour.
    now = int(time.time())
    r = login_with(env, env.key_a, oathtool(secret, at=now), log_level="INFO")
    assert r.rc == 0 and "LOGGED-IN" in r.out, r
    assert len(r.prompts) == 1 and "Verification code" in r.prompts[0], r
    assert "This SSH key (%s) is trusted for 1 hour." % fp_a in r.err, r

    # Second login with key A: nothing is asked; audited as a trusted key.
    before = len(env.audit_events())
    r = login_with(env, env.key_a)
    assert r.rc == 0 and "LOGGED-IN" in r.out, r
    assert r.prompts == [], r
    ok = events(env, before, event="verify", user=env.user, result="success")
    assert ok and ok[-1]["detail"] == "trusted ssh key " + fp_a, env.audit_events()[before:]

    # Key B is not trusted: the code is asked (and a wrong one refused).
    r = login_with(env, env.key_b, wrong_code(secret))
    assert r.rc != 0 and "LOGGED-IN" not in r.out, r
    assert len(r.prompts) == 1 and "Verification code" in r.prompts[0], r

    # `twostep devices` (root, for the user) lists key A with its expiry.
    listed = json.loads(run([env.cli, "devices", "--user", env.user, "--json", "--config", env.config]).stdout)
    assert [k["fingerprint"] for k in listed["trusted_ssh_keys"]] == [fp_a], listed

    # The user forgets key A through the socket: password, then a code.
    server = subprocess.Popen([str(env.helper), "serve", "--config", str(env.config), "--socket", env.sock],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait_for_socket(env.sock, server)
        # build/twostep: the snapshot in env.dir sits in a root-only directory.
        p = subprocess.run(["runuser", "-u", env.user, "--", CLI, "devices", "forget", fp_a,
                            "--socket", env.sock],
                           input="%s\n%s\n" % (PASSWORD, oathtool(secret, at=now + 30)),
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "no longer trusted" in p.stdout + p.stderr
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)
    r = login_with(env, env.key_a, wrong_code(secret))
    assert r.rc != 0 and len(r.prompts) == 1 and "Verification code" in r.prompts[0], r


def test_a_backup_code_trusts_no_key(env):
    """A backup code lets its one login in and trusts the key for nothing: otherwise one
    leaked single-use code would buy trust_ssh_key's whole period without codes."""
    configure(env, "1h")
    secret = env.enroll()
    codes = json.loads(run([env.cli, "admin", "backup-codes", env.user, "--json",
                            "--config", env.config]).stdout)["backup_codes"]
    r = login_with(env, env.key_a, codes[0], log_level="INFO")
    assert r.rc == 0 and "LOGGED-IN" in r.out, r
    assert "is trusted for" not in r.err, r
    r = login_with(env, env.key_a, wrong_code(secret))
    assert r.rc != 0 and len(r.prompts) == 1 and "Verification code" in r.prompts[0], r
    listed = json.loads(run([env.cli, "devices", "--user", env.user, "--json", "--config", env.config]).stdout)
    assert listed["trusted_ssh_keys"] == [], listed


def test_a_certificate_is_trusted_and_forgotten_by_its_keys_fingerprint(env):
    """A user certificate (sshd's TrustedUserCAKeys; the key is in no authorized_keys) is
    trusted under the fingerprint of the key inside it, the one `ssh-keygen -lf` prints for
    the key and for its certificate, so `admin forget USER FP` by that fingerprint ends it."""
    configure(env, "1h")
    secret = env.enroll()
    ca = env.dir / "user_ca"
    key_c = env.dir / "client_key_c"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ca", "-f", ca])
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "c", "-f", key_c])
    run(["ssh-keygen", "-q", "-s", ca, "-I", "twostep-test", "-n", env.user, "-V", "-5m:+1h",
         str(key_c) + ".pub"])
    fp_c = fingerprint(str(key_c) + ".pub")
    assert fingerprint(str(key_c) + "-cert.pub") == fp_c
    plain_config = env.sshd_config

    def with_ca():
        cfg = plain_config()
        cfg.write_text(cfg.read_text() + "TrustedUserCAKeys %s.pub\n" % ca)
        return cfg
    try:
        env.sshd_config = with_ca
        env.stop_sshd()
        env.start_sshd()
        now = int(time.time())
        r = login_with(env, key_c, oathtool(secret, at=now), log_level="INFO")
        assert r.rc == 0 and "LOGGED-IN" in r.out, r
        assert "This SSH key (%s) is trusted for 1 hour." % fp_c in r.err, r
        assert login_with(env, key_c).prompts == []
        out = run([env.cli, "admin", "forget", env.user, fp_c, "--config", env.config]).stdout
        assert "1 trusted SSH key(s) forgotten" in out, out
        r = login_with(env, key_c, wrong_code(secret))
        assert r.rc != 0 and len(r.prompts) == 1 and "Verification code" in r.prompts[0], r
    finally:
        env.sshd_config = plain_config
        env.stop_sshd()
        env.start_sshd()


def test_short_trust_expires(env):
    configure(env, "5")
    secret = env.enroll()
    r = login_with(env, env.key_a, oathtool(secret), log_level="INFO")
    assert r.rc == 0 and "is trusted for 5 seconds." in r.err, r
    listed = json.loads(run([env.cli, "admin", "show", env.user, "--json", "--config", env.config]).stdout)
    expires = listed["trusted_ssh_keys"][0]["expires"]
    # Wait until the recorded expiry has passed (by the helper's own clock, whole seconds).
    deadline = calendar.timegm(time.strptime(expires, "%Y-%m-%dT%H:%M:%SZ"))
    while time.time() < deadline + 1:
        time.sleep(0.2)
    r = login_with(env, env.key_a, wrong_code(secret))
    assert r.rc != 0 and len(r.prompts) == 1 and "Verification code" in r.prompts[0], r


def test_service_not_in_trust_services_always_asks(env):
    env.write_config("trust_ssh_key = 1h", "trust_services = sshd,sudo")
    secret = env.enroll()
    r = login_with(env, env.key_a, oathtool(secret))
    assert r.rc == 0 and len(r.prompts) == 1, r
    r = login_with(env, env.key_a, wrong_code(secret))
    assert r.rc != 0 and len(r.prompts) == 1, r


def test_admin_forget_and_reset_end_trust(env):
    configure(env, "1h")
    secret = env.enroll()
    now = int(time.time())
    assert login_with(env, env.key_a, oathtool(secret, at=now)).rc == 0
    assert login_with(env, env.key_a).prompts == []
    # A fingerprint that names no trusted key of the user changes nothing, and says so.
    other = "SHA256:" + "A" * 43
    r = subprocess.run([env.cli, "admin", "forget", env.user, other, "--config", env.config],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "nothing was changed" in r.stderr, r.stdout + r.stderr
    assert login_with(env, env.key_a).prompts == []
    out = run([env.cli, "admin", "forget", env.user, "--config", env.config]).stdout
    assert "1 trusted SSH key(s) forgotten" in out
    r = login_with(env, env.key_a, oathtool(secret, at=now + 30))
    assert r.rc == 0 and len(r.prompts) == 1, r
    assert login_with(env, env.key_a).prompts == []
    # admin reset + a fresh import (what `enroll --replace` also does): no trust survives.
    secret = env.enroll()
    r = login_with(env, env.key_a, wrong_code(secret))
    assert r.rc != 0 and len(r.prompts) == 1, r


def test_removing_an_authenticator_or_lowering_trust_ssh_key_ends_trusts(env):
    """Found by a review: a key trusted after a code of a phone still passed without a code
    once that (lost) phone was removed with `twostep devices remove`; and a trust given for
    `trust_ssh_key = 1h` outlived a lower `trust_ssh_key`."""
    configure(env, "1h")
    secret = env.enroll()
    tablet = base64.b32encode(os.urandom(20)).decode()
    run([env.cli, "admin", "import", env.user, "--name", "tablet", "--secret", "-", "--config", env.config],
        input=tablet + "\n")
    now = int(time.time())
    assert login_with(env, env.key_a, oathtool(tablet, at=now)).rc == 0
    assert login_with(env, env.key_a).prompts == []
    server = subprocess.Popen([str(env.helper), "serve", "--config", str(env.config), "--socket", env.sock],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait_for_socket(env.sock, server)
        p = subprocess.run(["runuser", "-u", env.user, "--", CLI, "devices", "remove", "tablet", "--socket", env.sock],
                           input="%s\n%s\n" % (PASSWORD, oathtool(secret, at=now)),
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 and "no SSH key is trusted any more" in p.stdout + p.stderr, p.stdout + p.stderr
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)
    r = login_with(env, env.key_a, wrong_code(secret))
    assert r.rc != 0 and len(r.prompts) == 1 and "Verification code" in r.prompts[0], r

    # Trusted for an hour; then trust_ssh_key = 1 (second): the trust ends a second after it began.
    assert login_with(env, env.key_a, oathtool(secret, at=now + 30)).rc == 0
    assert login_with(env, env.key_a).prompts == []
    configure(env, "1")
    time.sleep(2.2)
    r = login_with(env, env.key_a, wrong_code(secret))
    assert r.rc != 0 and len(r.prompts) == 1 and "Verification code" in r.prompts[0], r
    # ...and `twostep devices` shows what logins apply, not the stored hour (R7).
    listed = json.loads(run([env.cli, "devices", "--user", env.user, "--json", "--config", env.config]).stdout)
    assert listed["trusted_ssh_keys"] == [], listed
