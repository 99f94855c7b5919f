# SPDX-License-Identifier: Apache-2.0
"""Recovery and support (issue 9) through the interfaces people touch: logins through libpam
(`twostep try`, a Swift host, when the user must read a mail between two prompts; the C
harness otherwise), mail delivered by Debian's exim4 to /var/mail/USER and parsed with
Python's email module, the QR code read back by zbarimg, codes from oathtool."""
import json
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
import uuid

import pytest

from conftest import (CLI, mbox_messages, HARNESS, PAM_AUTH_ERR, PAM_AUTHINFO_UNAVAIL, PAM_CONV_ERR, PAM_MAXTRIES, PAM_SUCCESS,
                      SECRET, harness_login, oathtool, wrong)

MAIL_FROM = "twostep-test@localhost"


def make_mail_user():
    name = "tsr" + uuid.uuid4().hex[:8]
    subprocess.run(["useradd", "-m", "-s", "/usr/sbin/nologin", name], check=True)
    return name


def drop_mail_user(name):
    subprocess.run(["userdel", "-r", name], capture_output=True, check=False)
    if os.path.exists(f"/var/mail/{name}"):
        os.unlink(f"/var/mail/{name}")


@pytest.fixture
def users():
    if not os.path.exists("/usr/sbin/exim4"):
        pytest.skip("exim4 is not installed (scripts/deps.sh test installs exim4-daemon-light)")
    made = []

    def make():
        made.append(make_mail_user())
        return made[-1]
    try:
        yield make
    finally:
        for u in made:
            drop_mail_user(u)


def mails(user):
    """Every message delivered to /var/mail/USER, oldest first."""
    return mbox_messages(f"/var/mail/{user}")


def wait_for_mails(user, n, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = mails(user)
        if len(got) >= n:
            return got
        time.sleep(0.1)
    raise AssertionError(f"{n} mail(s) for {user} expected, {len(mails(user))} arrived in {timeout} s")


def text_of(msg):
    import email
    import email.policy
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    body = parsed.get_body(preferencelist=("plain",))
    return parsed, body.get_content()


def code_in(msg, label):
    _, text = text_of(msg)
    m = re.search(label + r": ([0-9a-z]{4}-[0-9a-z]{4})", text)
    assert m, text
    return m.group(1)


def mail_setup(inst, user, **conf):
    inst.write_config(mail_from=MAIL_FROM, email_fallback="on", **conf)
    inst.enroll(user)
    inst.cli("admin", "email", user, f"{user}@localhost")
    inst.service()


def email_login(inst, user, mailbox_of=None, typed=None, expect_mail=True, sleep=0, service="tstest"):
    """A login that answers `email`, reads the mail that arrives and types its code (or
    `typed(code)`). Returns (returncode, stderr, code)."""
    mailbox_of = mailbox_of or user
    before = len(mails(mailbox_of))
    p = subprocess.Popen([CLI, "try", "--service", service, "--pam-dir", inst.pamdir, "--user", user],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.stdin.write("email\n")
    p.stdin.flush()
    code = None
    if expect_mail:
        code = code_in(wait_for_mails(mailbox_of, before + 1)[before], "Your one-time code")
        time.sleep(sleep)
    answer = (typed(code) if typed else code) if expect_mail else ""
    out, err = p.communicate(answer + "\n", timeout=60)
    return p.returncode, out + err, code


def events(inst, event, user=None):
    return [e for e in inst.audit_events() if e["event"] == event and (user is None or e["user"] == user)]


# --- email fallback at login -----------------------------------------------------------------

def test_email_code_passes_once_and_the_fourth_mail_in_an_hour_is_refused(inst, users):
    alice = users()
    mail_setup(inst, alice)
    rc, out, first = email_login(inst, alice)
    assert rc == 0, out
    assert "Code from the email:" in out and f"{alice[0]}***@localhost" in out
    sent = events(inst, "mail_sent", alice)
    assert sent and f"{alice}@localhost" in sent[-1]["detail"] and first not in str(inst.audit_events())
    v = events(inst, "verify", alice)[-1]
    assert (v["result"], v["detail"]) == ("success", "email code")
    # Second use of the same code: a new login mails a new code; the old one is refused.
    rc, out, second = email_login(inst, alice, typed=lambda new: first)
    assert rc != 0 and second != first
    assert events(inst, "verify", alice)[-1]["result"] == "failure"
    # Third mail (a wrong answer), then the fourth within the hour is refused before any mail.
    rc, _, _ = email_login(inst, alice, typed=lambda c: "abcd-efgh")
    assert rc != 0
    assert len(events(inst, "mail_sent", alice)) == 3
    rc, out, _ = email_login(inst, alice, expect_mail=False)
    assert rc != 0 and "3 mails were sent within the hour" in out
    assert len(events(inst, "mail_sent", alice)) == 3
    assert events(inst, "email_fallback", alice)[-1]["detail"] == "email fallback: mail limit"


def test_email_at_a_forward_pass_prompt_mails_nothing(inst, users):
    """forward_pass: the password typed with the code is checked after pam_twostep (by the
    next module), so a mail sent at that prompt would go out for anyone who types
    `x email`. Through libpam: refused and audited, and no mail is sent;
    the same user at an ordinary prompt does get one (delivered by exim4)."""
    alice = users()
    mail_setup(inst, alice)
    inst.service("fwd", args="forward_pass",
                 after="auth required pam_permit.so\naccount required pam_permit.so\n")
    assert harness_login(inst.pamdir, "fwd", alice, "not-her-password email") == PAM_AUTH_ERR
    v = events(inst, "verify", alice)[-1]
    assert (v["result"], v["detail"]) == ("failure", "code by email asked at a forward_pass prompt")
    assert events(inst, "mail_sent", alice) == []
    # No code was tried, so the limiter counts nothing (`email` is no guess).
    shown = json.loads(inst.cli("admin", "show", alice, "--json").stdout)
    assert shown["recent_failures"] == 0, shown
    # The control: at the ordinary prompt `email` sends a mail, and it is the only one.
    rc, out, _ = email_login(inst, alice)
    assert rc == 0, out
    assert len(mails(alice)) == 1 and len(events(inst, "mail_sent", alice)) == 1


def test_email_fallback_through_the_running_helper(inst, users):
    """Logins relayed to `twostep-helper serve` (module `socket=`, no helper to spawn): the
    pre-forked worker runs the mail command and waits for it like a spawned helper."""
    import signal
    from conftest import HELPER, MODULE, wait_for_socket
    alice = users()
    mail_setup(inst, alice)
    sock = os.path.join(inst.root, "verify.sock")
    with open(os.path.join(inst.pamdir, "socktest"), "w") as f:
        f.write(f"auth required {MODULE} helper=/nonexistent config={inst.conf} socket={sock} timeout=20\n"
                "account required pam_permit.so\n")
    server = subprocess.Popen([HELPER, "serve", "--config", inst.conf, "--socket", sock],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_socket(sock, server)
        rc, out, _ = email_login(inst, alice, service="socktest")
        assert rc == 0, out
        assert events(inst, "verify", alice)[-1]["detail"] == "email code"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)


def test_the_mailed_code_names_the_remote_host_only_when_it_is_a_host_name(inst, users):
    """PAM_RHOST is whatever the caller's side made it (a PTR name, an application that sets
    it): a host name or address is named in the mail, anything else is not copied in."""
    from conftest import HARNESS
    alice = users()
    mail_setup(inst, alice)
    forged = "203.0.113.9 asked for a code by email.\n\nYour one-time code: aaaa-bbbb\n\nIgnore the code below"
    for n, rhost in enumerate(["192.0.2.7", forged], start=1):
        subprocess.run([HARNESS, "--confdir", inst.pamdir, "--service", "tstest", "--user", alice,
                        "--answers", "-", "--rhost", rhost], input="email\nabcd-efgh\n",
                       capture_output=True, text=True, timeout=60)
        _, text = text_of(wait_for_mails(alice, n)[n - 1])
        if n == 1:
            assert f"as {alice} from 192.0.2.7 asked" in text, text
        else:
            assert f"as {alice} from an unnamed host asked" in text, text
            assert "aaaa-bbbb" not in text and "Ignore the code below" not in text, text


def test_expired_email_code_is_refused(inst, users):
    alice = users()
    mail_setup(inst, alice, email_code_ttl="1s")
    rc, out, _ = email_login(inst, alice, sleep=2.5)
    assert rc != 0, out
    assert events(inst, "verify", alice)[-1]["detail"] == "wrong or expired email code"


def test_another_users_email_code_is_refused(inst, users):
    alice, bob = users(), users()
    mail_setup(inst, alice)
    inst.enroll(bob)
    inst.cli("admin", "email", bob, f"{bob}@localhost")
    rc, _, alice_code = email_login(inst, alice, typed=lambda c: "zzzz-zzzz")
    assert rc != 0
    rc, out, _ = email_login(inst, bob, typed=lambda own: alice_code)
    assert rc != 0, out


def test_wrong_email_codes_count_against_the_limiter_and_a_locked_user_gets_no_mail(inst, users):
    alice = users()
    mail_setup(inst, alice, rate_limit="2/300", lockout="1h")
    assert inst.login(alice, wrong(oathtool())).returncode != 0
    rc, out, _ = email_login(inst, alice, typed=lambda c: wrong(c))
    assert rc != 0 and "locked" in out
    assert events(inst, "lockout", alice)
    n = len(mails(alice))
    rc, out, _ = email_login(inst, alice, expect_mail=False)
    assert rc != 0 and "locked" in out
    assert len(events(inst, "mail_sent", alice)) == 1 and len(mails(alice)) == n


def test_a_mailed_code_never_typed_counts_as_a_failure(inst, users):
    """Asking for a mail and walking away at `Code from the email:` is not free: it counts
    against the limiter like a wrong code."""
    alice = users()
    mail_setup(inst, alice)
    before = len(mails(alice))
    p = subprocess.Popen([CLI, "try", "--service", "tstest", "--pam-dir", inst.pamdir, "--user", alice],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.stdin.write("email\n")
    p.stdin.flush()
    wait_for_mails(alice, before + 1)
    out, err = p.communicate(timeout=60)   # closes stdin: end of input at the prompt, the conversation fails
    assert p.returncode != 0, out + err
    failures = [e for e in events(inst, "verify", alice) if e["result"] == "failure"]
    assert [e["detail"] for e in failures] == ["mailed code not entered"], failures
    assert json.loads(inst.cli("admin", "show", alice, "--json").stdout)["recent_failures"] == 1


def test_email_is_an_ordinary_wrong_answer_when_the_fallback_is_off(inst, users):
    alice = users()
    mail_setup(inst, alice)
    inst.write_config(mail_from=MAIL_FROM)  # email_fallback defaults to off
    assert harness_login(inst.pamdir, "tstest", alice, "email") == PAM_AUTH_ERR
    assert events(inst, "mail_sent", alice) == []


@pytest.mark.parametrize("command,timeout", [("/bin/false", 10), ("/bin/sleep 60", 1)])
def test_failing_or_hanging_mail_command_fails_the_login_closed_within_its_timeout(inst, users, command, timeout):
    alice = users()
    mail_setup(inst, alice, mail_command=command, mail_timeout=timeout)
    t0 = time.monotonic()
    r = subprocess.run([CLI, "try", "--service", "tstest", "--pam-dir", inst.pamdir, "--user", alice],
                       input="email\n", capture_output=True, text=True, timeout=60)
    took = time.monotonic() - t0
    assert r.returncode != 0
    assert "The email could not be sent" in r.stdout + r.stderr
    assert took < timeout + 8, took
    failed = events(inst, "mail_failed", alice)
    assert failed and f"{alice}@localhost" in failed[-1]["detail"]
    assert harness_login(inst.pamdir, "tstest", alice, "email") == PAM_AUTHINFO_UNAVAIL
    assert subprocess.run(["pgrep", "-f", "^/bin/sleep 60$"], capture_output=True).returncode != 0


def test_an_unconfirmed_address_gets_no_login_code(inst, users):
    alice = users()
    inst.write_config(mail_from=MAIL_FROM, email_fallback="on")
    inst.enroll(alice)
    inst.service()
    # Root sets an address through the self-service path (a code, then the mailed
    # confirmation code) but does not type the confirmation code back.
    r = inst.cli("email", "--user", alice, f"{alice}@localhost", input=oathtool() + "\n\n")
    assert "waits for its code" in r.stdout
    confirmation = wait_for_mails(alice, 1)
    assert "Confirmation code" in text_of(confirmation[0])[1]
    assert "email_pending" in inst.cli("admin", "show", alice).stdout
    rc, out, _ = email_login(inst, alice, expect_mail=False)
    assert rc != 0 and "No confirmed email address" in out
    assert [e["detail"] for e in events(inst, "mail_sent", alice)] == [f"address confirmation to {alice}@localhost"]
    code = code_in(confirmation[0], "Confirmation code")
    # The code on the command line, where every local user's ps reads it, is refused
    # (usage error) and confirms nothing, even though it is the right one.
    r = inst.cli("email", "--user", alice, "--confirm", code, input=code + "\n", check=False)
    assert r.returncode == 64 and "do not give it on the command line" in r.stderr, r.stdout + r.stderr
    assert "email_pending" in inst.cli("admin", "show", alice).stdout
    # Typed back later at the prompt, the address becomes the one codes go to.
    inst.cli("email", "--user", alice, "--confirm", input=code + "\n")
    assert f"email: {alice}@localhost" in inst.cli("admin", "show", alice).stdout
    rc, out, _ = email_login(inst, alice)
    assert rc == 0, out


def test_a_new_phone_keeps_the_confirmed_address(inst, users):
    alice = users()
    mail_setup(inst, alice)
    for _ in range(3):
        rc, _, _ = email_login(inst, alice, typed=lambda c: "abcd-efgh")
        assert rc != 0
    r = inst.cli("enroll", "--replace", "--json", "--user", alice, input=oathtool() + "\n")
    assert json.loads(r.stdout)["otpauth_uri"].startswith("otpauth://")
    assert f"email: {alice}@localhost" in inst.cli("admin", "show", alice).stdout
    # ... and the mails of the hour: a fourth is refused (a reviewer sent one after enrolling again).
    rc, out, _ = email_login(inst, alice, expect_mail=False)
    assert rc != 0 and "3 mails were sent within the hour" in out, out
    assert len(events(inst, "mail_sent", alice)) == 3


# --- invitations ------------------------------------------------------------------------------

def read_invitation(user, n=1):
    msg = wait_for_mails(user, n)[n - 1]
    parsed, text = text_of(msg)
    assert parsed.get_content_type() == "multipart/mixed"
    pngs = [p for p in parsed.iter_attachments() if p.get_content_type() == "image/png"]
    assert len(pngs) == 1 and pngs[0].get_filename() == "qr.png"
    with tempfile.NamedTemporaryFile(suffix=".png") as f:
        f.write(pngs[0].get_content())
        f.flush()
        decoded = subprocess.run(["zbarimg", "--raw", "-q", f.name], capture_output=True, text=True, check=True).stdout.strip()
    uri = re.search(r"otpauth://\S+", text).group(0)
    assert decoded == uri
    key = re.search(r"secret=([A-Z2-7]+)", uri).group(1)
    assert "backup" not in text.lower() or "never mailed" in text
    return text, uri, key


def test_invitation_mail_is_mime_with_the_qr_png_and_enrolment_waits_for_the_first_code(inst, users):
    alice = users()
    inst.write_config(mail_from=MAIL_FROM, enroll="prompt")
    inst.service()
    inst.cli("admin", "invite", alice, "--email", f"{alice}@localhost")
    text, uri, key = read_invitation(alice)
    assert uri.startswith("otpauth://totp/TestCorp:" + alice)
    assert "at your next login that asks for a code, or with `twostep enroll --confirm`" in text, text
    assert "invitation_pending_until" in inst.cli("admin", "show", alice).stdout
    # A wrong code does not activate it; the first correct one does and shows backup codes.
    assert inst.login(alice, wrong(oathtool(key))).returncode != 0
    r = inst.login(alice, oathtool(key))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "backup codes" in r.stdout + r.stderr
    shown = inst.cli("admin", "show", alice).stdout
    assert "invitation_pending_until" not in shown and "backup_codes_left: 10" in shown
    assert events(inst, "enroll", alice)[-1]["detail"] == "invitation confirmed"


def test_invitation_confirmed_with_enroll_confirm(inst, users):
    alice = users()
    inst.write_config(mail_from=MAIL_FROM)
    inst.service()
    inst.cli("admin", "invite", alice, "--email", f"{alice}@localhost")
    text, _, key = read_invitation(alice)
    assert "at your next login that asks for a code, or with `twostep enroll --confirm`" in text, text
    t = time.time()
    r = inst.cli("enroll", "--confirm", "--user", alice, input=oathtool(key, at=t) + "\n")
    assert "backup codes" in r.stdout
    assert harness_login(inst.pamdir, "tstest", alice, oathtool(key, at=t + 30)) == PAM_SUCCESS


def test_an_invitation_is_confirmed_at_login_with_enroll_off(inst, users):
    """A reviewer invited a user on a host with `enroll = off` and no nullok: the login
    refused the invited secret's code and said to run `twostep enroll --confirm`, which
    needs a session the user could not open. Where a user without an enrolment would be
    refused, the first correct code at login now confirms it, whatever `enroll` says."""
    alice = users()
    inst.write_config(mail_from=MAIL_FROM)   # enroll = off
    inst.service()
    inst.cli("admin", "invite", alice, "--email", f"{alice}@localhost")
    _, _, key = read_invitation(alice)
    assert inst.login(alice, wrong(oathtool(key))).returncode != 0
    r = inst.login(alice, oathtool(key))
    assert r.returncode == 0 and "backup codes" in r.stdout + r.stderr, r.stdout + r.stderr
    assert "invitation_pending_until" not in inst.cli("admin", "show", alice).stdout
    assert events(inst, "enroll", alice)[-1]["detail"] == "invitation confirmed"


def test_an_invitation_does_not_weaken_require_under_nullok(inst, users):
    """An unconfirmed invitation is no enrolment. Under `require = all` it is refused like
    any unenrolled user inside `require`, nullok or not: an admin's invitation must not
    let its user in without a code where no invitation would not. Without `require`,
    nullok decides, as for anyone not enrolled."""
    alice = users()
    inst.write_config(mail_from=MAIL_FROM, require="all")
    inst.service("withnullok", args="nullok", after="auth required pam_permit.so\naccount required pam_permit.so\n")
    assert harness_login(inst.pamdir, "withnullok", alice, "123456") == PAM_AUTH_ERR   # no enrolment
    inst.cli("admin", "invite", alice, "--email", f"{alice}@localhost")
    read_invitation(alice)
    assert harness_login(inst.pamdir, "withnullok", alice, "123456") == PAM_AUTH_ERR
    # Without `require`, nullok decides, as for anyone not enrolled (`enroll = off`: the
    # invitation is confirmed with `twostep enroll --confirm`).
    inst.write_config(mail_from=MAIL_FROM)
    assert harness_login(inst.pamdir, "withnullok", alice, "123456") == PAM_SUCCESS


def test_expired_invitation_is_refused(inst, users):
    alice = users()
    inst.write_config(mail_from=MAIL_FROM, enroll="prompt", invite_ttl="1s")
    inst.service()
    inst.cli("admin", "invite", alice, "--email", f"{alice}@localhost")
    _, _, key = read_invitation(alice)
    time.sleep(2.5)
    r = inst.login(alice, oathtool(key))
    assert r.returncode != 0 and "expired" in r.stdout + r.stderr
    r = inst.cli("enroll", "--confirm", "--user", alice, input=oathtool(key) + "\n", check=False)
    assert r.returncode != 0 and "no pending invitation" in r.stderr


def test_rotate_secret_mails_a_new_secret_and_the_old_works_until_it_is_confirmed(inst, users):
    alice = users()
    inst.write_config(mail_from=MAIL_FROM)
    inst.enroll(alice)
    inst.service()
    r = inst.cli("admin", "rotate-secret", alice, check=False)
    assert r.returncode != 0 and "no confirmed address" in r.stderr
    inst.cli("admin", "email", alice, f"{alice}@localhost")
    inst.cli("admin", "rotate-secret", alice, "--reason", "laptop stolen")
    _, _, key = read_invitation(alice)
    assert key != SECRET
    now = time.time()
    assert harness_login(inst.pamdir, "tstest", alice, oathtool(SECRET, at=now - 30)) == PAM_SUCCESS
    assert harness_login(inst.pamdir, "tstest", alice, oathtool(key, at=now)) == PAM_SUCCESS
    assert harness_login(inst.pamdir, "tstest", alice, oathtool(SECRET, at=now + 30)) == PAM_AUTH_ERR
    assert events(inst, "verify", alice)[-1]["detail"] == "wrong code"
    rot = events(inst, "admin_rotate_secret", alice)
    assert rot and "laptop stolen" in rot[-1]["detail"]


def test_a_confirmed_new_secret_ends_the_trust_of_ssh_keys(inst, users):
    """A reviewer's key, trusted after a code of the old secret, still passed without a code
    once the rotated secret was confirmed: the old secret may be why it was rotated."""
    alice = users()
    inst.write_config(mail_from=MAIL_FROM, trust_ssh_key="1h", trust_services="tstest")
    inst.enroll(alice)
    inst.service()
    keydir = tempfile.mkdtemp(prefix="twostep-trustkey-")
    try:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{keydir}/k"], check=True)
        key_type, blob = open(f"{keydir}/k.pub").read().split()[:2]
    finally:
        shutil.rmtree(keydir, ignore_errors=True)

    def with_key(answer):
        r = subprocess.run([HARNESS, "--confdir", inst.pamdir, "--service", "tstest", "--user", alice, "--answers", "-",
                            "--env", f"SSH_AUTH_INFO_0=publickey {key_type} {blob}"],
                           input=answer + "\n", capture_output=True, text=True, timeout=60)
        (code,) = re.findall(r"^RESULT: .* \((-?\d+)\)$", r.stdout, re.M)
        return int(code), "PROMPT" in r.stdout

    now = time.time()
    assert with_key(oathtool(SECRET, at=now - 30)) == (PAM_SUCCESS, True)
    assert with_key(wrong(oathtool(SECRET, at=now))) == (PAM_SUCCESS, False)   # trusted: nothing asked
    inst.cli("admin", "email", alice, f"{alice}@localhost")
    inst.cli("admin", "rotate-secret", alice)
    _, _, key = read_invitation(alice)
    assert harness_login(inst.pamdir, "tstest", alice, oathtool(key, at=now)) == PAM_SUCCESS
    confirmed = events(inst, "enroll", alice)[-1]
    assert confirmed["detail"] == "new secret confirmed for totp default"
    assert confirmed["service"] == "tstest", confirmed   # the login's service, not "twostep"
    assert with_key(wrong(oathtool(key, at=now))) == (PAM_AUTH_ERR, True)


def test_a_new_secret_is_confirmed_in_the_step_the_old_one_was_used(inst, users):
    """The old secret's replay mark says nothing about the new secret's codes: a code of
    each in the same 30 s step are two codes (a review saw the new one refused as wrong)."""
    alice = users()
    inst.write_config(mail_from=MAIL_FROM)
    inst.enroll(alice)
    inst.cli("admin", "email", alice, f"{alice}@localhost")
    inst.service()
    inst.cli("admin", "rotate-secret", alice)
    _, _, key = read_invitation(alice)
    now = time.time()
    assert harness_login(inst.pamdir, "tstest", alice, oathtool(SECRET, at=now)) == PAM_SUCCESS
    r = inst.cli("enroll", "--confirm", "--user", alice, input=oathtool(key, at=now) + "\n")
    assert events(inst, "enroll", alice)[-1]["detail"] == "new secret confirmed for totp default", r.stdout
    # Adopted, its code is spent like any other, and the old secret's codes stop working.
    assert harness_login(inst.pamdir, "tstest", alice, oathtool(key, at=now)) == PAM_AUTH_ERR
    assert harness_login(inst.pamdir, "tstest", alice, oathtool(SECRET, at=now + 30)) == PAM_AUTH_ERR
    assert harness_login(inst.pamdir, "tstest", alice, oathtool(key, at=now + 30)) == PAM_SUCCESS


def test_a_new_secret_keeps_working_when_the_old_one_counted_in_another_period(inst, users):
    """The adopted secret's replay mark is its own: an old token counting 10 s steps must
    not leave a mark three times the new secret's 30 s steps (every later code a "replay")."""
    alice = users()
    inst.write_config(mail_from=MAIL_FROM)
    inst.cli("admin", "import", alice, "--period", "10", "--secret", "-", input=SECRET + "\n")
    inst.cli("admin", "email", alice, f"{alice}@localhost")
    inst.service()
    now = time.time()
    assert harness_login(inst.pamdir, "tstest", alice, oathtool(SECRET, at=now, period=10)) == PAM_SUCCESS
    inst.cli("admin", "rotate-secret", alice)
    _, _, key = read_invitation(alice)
    assert harness_login(inst.pamdir, "tstest", alice, oathtool(key, at=now)) == PAM_SUCCESS
    assert events(inst, "enroll", alice)[-1]["detail"] == "new secret confirmed for totp default"
    assert harness_login(inst.pamdir, "tstest", alice, oathtool(key, at=now + 30)) == PAM_SUCCESS
    assert harness_login(inst.pamdir, "tstest", alice, oathtool(key, at=now + 30)) == PAM_AUTH_ERR


def test_rotate_secret_replaces_only_the_primary_authenticator(inst, users):
    alice = users()
    phone2 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    inst.write_config(mail_from=MAIL_FROM)
    inst.enroll(alice)
    inst.cli("admin", "import", alice, "--name", "phone2", "--secret", "-", input=phone2 + "\n")
    inst.cli("admin", "email", alice, f"{alice}@localhost")
    inst.service()
    inst.cli("admin", "rotate-secret", alice, "--reason", "default's QR code was photographed")
    _, _, key = read_invitation(alice)
    now = time.time()
    assert harness_login(inst.pamdir, "tstest", alice, oathtool(key, at=now)) == PAM_SUCCESS
    assert events(inst, "enroll", alice)[-1]["detail"] == "new secret confirmed for totp default"
    assert harness_login(inst.pamdir, "tstest", alice, oathtool(SECRET, at=now + 30)) == PAM_AUTH_ERR
    assert harness_login(inst.pamdir, "tstest", alice, oathtool(phone2, at=now + 30)) == PAM_SUCCESS
    assert harness_login(inst.pamdir, "tstest", alice, oathtool(key, at=now + 30)) == PAM_SUCCESS


# --- administrator's override -----------------------------------------------------------------

def test_bypass_passes_without_a_code_until_cancelled_and_is_audited_with_the_admin(inst):
    inst.enroll("root")
    inst.service()
    env = dict(os.environ, SUDO_USER="opsadmin")
    r = inst.cli("admin", "bypass", "root", "--for", "2h", check=False)
    assert r.returncode != 0 and "--reason is required" in r.stderr
    r = inst.cli("admin", "bypass", "root", "--for", "8d", "--reason", "x", check=False)
    assert r.returncode != 0 and "at most" in r.stderr
    inst.cli("admin", "bypass", "root", "--for", "2h", "--reason", "phone lost on holiday", env=env)
    assert harness_login(inst.pamdir, "tstest", "root", None) == PAM_SUCCESS
    v = events(inst, "verify", "root")[-1]
    assert v["result"] == "success" and v["detail"] == "admin bypass"
    b = events(inst, "admin_bypass", "root")[-1]
    assert b["detail"].startswith("by opsadmin: until ") and "phone lost on holiday" in b["detail"]
    assert "bypass_until" in inst.cli("admin", "show", "root").stdout
    assert "BYPASS until" in inst.cli("admin", "list").stdout
    assert [b["user"] for b in json.loads(inst.cli("admin", "report", "--json").stdout)["bypasses"]] == ["root"]
    assert "active bypasses: root (until" in inst.cli("admin", "report").stdout
    inst.cli("admin", "bypass", "root", "--cancel", env=env)
    assert harness_login(inst.pamdir, "tstest", "root", None) != PAM_SUCCESS
    assert harness_login(inst.pamdir, "tstest", "root", oathtool()) == PAM_SUCCESS
    assert "bypass_until" not in inst.cli("admin", "show", "root").stdout


def test_bypass_ends_at_its_expiry(inst):
    inst.enroll("root")
    inst.service()
    inst.cli("admin", "bypass", "root", "--for", "1s", "--reason", "short test")
    time.sleep(2.5)
    assert harness_login(inst.pamdir, "tstest", "root", None) != PAM_SUCCESS
    assert harness_login(inst.pamdir, "tstest", "root", wrong(oathtool())) == PAM_AUTH_ERR


def recovery_code(inst, user, *extra, env=None):
    r = inst.cli("admin", "recovery-code", user, *extra, env=env)
    return re.search(r": ([0-9a-z]{4}-[0-9a-z]{4})$", r.stdout.strip()).group(1)


def test_recovery_code_works_once_and_a_new_one_revokes_the_old(inst):
    inst.enroll("root")
    inst.service()
    r = inst.cli("admin", "recovery-code", "root", check=False)
    assert r.returncode != 0  # --reason is required
    env = dict(os.environ, SUDO_USER="helpdesk")
    first = recovery_code(inst, "root", "--reason", "ticket 4711", env=env)
    second = recovery_code(inst, "root", "--reason", "ticket 4712", env=env)
    assert harness_login(inst.pamdir, "tstest", "root", first) == PAM_AUTH_ERR
    r = subprocess.run([HARNESS, "--confdir", inst.pamdir, "--service", "tstest", "--user", "root", "--answers", "-"],
                       input=second.upper().replace("-", " ") + "\n", capture_output=True, text=True, timeout=60)
    assert re.search(r"^RESULT: .* \(0\)$", r.stdout, re.M), r.stdout + r.stderr
    # It names the step that works without the lost authenticator's code.
    (info,) = re.findall(r"^INFO: (Recovery code accepted.*)$", r.stdout, re.M)
    assert "`twostep enroll --replace`" in info and "ask your administrator for another recovery code" in info, info
    assert events(inst, "verify", "root")[-1]["detail"] == "recovery code"
    assert harness_login(inst.pamdir, "tstest", "root", second) == PAM_AUTH_ERR
    issued = events(inst, "admin_recovery_code", "root")
    assert [e["detail"].split(":")[0] for e in issued] == ["by helpdesk"] * 2 and "ticket 4712" in issued[-1]["detail"]
    assert first not in open(inst.audit).read() and second not in open(inst.audit).read()


def test_expired_recovery_code_is_refused(inst):
    inst.enroll("root")
    inst.service()
    code = recovery_code(inst, "root", "--reason", "ticket", "--valid", "1s")
    time.sleep(2.5)
    assert harness_login(inst.pamdir, "tstest", "root", code) == PAM_AUTH_ERR


# --- `twostep email` through the self-service socket -----------------------------------------

@pytest.fixture
def host():
    from test_selfservice import Host
    if not os.path.exists("/usr/sbin/exim4"):
        pytest.skip("exim4 is not installed")
    root = tempfile.mkdtemp(prefix="twostep-rec-")
    h = Host(root, mail_from=MAIL_FROM, email_fallback="on")
    h.serve("serve")
    h.homes = []
    try:
        yield h
    finally:
        h.close()
        for d in h.homes:
            shutil.rmtree(d, ignore_errors=True)
        for u in h.users:
            if os.path.exists(f"/var/mail/{u}"):
                os.unlink(f"/var/mail/{u}")
        subprocess.run(["rm", "-rf", root])


def mail_home(host):
    """A Host user with a home directory: exim's local delivery changes into it."""
    user = host.user()
    subprocess.run(["mkhomedir_helper", user], check=False)
    if not os.path.isdir(f"/home/{user}"):
        os.makedirs(f"/home/{user}")
        shutil.chown(f"/home/{user}", user)
    host.homes.append(f"/home/{user}")
    return user


def test_user_sets_an_address_with_password_and_code_and_confirms_it_from_the_mail(host):
    from test_selfservice import PASSWORD
    user = mail_home(host)
    host.inst.enroll(user)
    # A wrong password changes nothing and sends nothing.
    r = host.as_user(user, "email", f"{user}@localhost", input="wrong-password\n")
    assert r.returncode != 0 and mails(user) == []
    p = subprocess.Popen(["runuser", "-u", user, "--", CLI, "email", f"{user}@localhost", "--config", host.inst.conf],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.stdin.write(f"{PASSWORD}\n{oathtool()}\n")
    p.stdin.flush()
    code = code_in(wait_for_mails(user, 1)[0], "Confirmation code")
    out, err = p.communicate(code + "\n", timeout=60)
    assert p.returncode == 0, out + err
    assert "Code from the email:" in err and f"{user[0]}***@localhost is confirmed" in out
    status = host.as_user(user, "status", "--json")
    assert json.loads(status.stdout)["email"] == f"{user[0]}***@localhost"
    assert f"{user[0]}***@localhost" in host.as_user(user, "status").stdout
    assert f"email: {user}@localhost" in host.inst.cli("admin", "show", user).stdout


def test_user_confirms_an_address_later_with_email_confirm(host):
    from test_selfservice import PASSWORD
    user = mail_home(host)
    host.inst.enroll(user)
    r = host.as_user(user, "email", f"{user}@localhost", input=f"{PASSWORD}\n{oathtool()}\n\n")
    assert r.returncode == 0 and "waits for its code" in r.stdout
    code = code_in(wait_for_mails(user, 1)[0], "Confirmation code")
    r = host.as_user(user, "email", "--confirm", input=f"{PASSWORD}\n{wrong(code)}\n")
    assert r.returncode != 0
    assert "email:" not in host.inst.cli("admin", "show", user).stdout.replace("email_pending:", "")
    r = host.as_user(user, "email", "--confirm", input=f"{PASSWORD}\n{code}\n")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"email: {user}@localhost" in host.inst.cli("admin", "show", user).stdout


def test_a_mailed_code_authorises_no_self_service_change(host):
    """A reviewer answered `email` at the code prompt of `enroll --replace`, `backup-codes`
    and `email ADDRESS` and typed the mailed code: with the password and the mailbox alone
    (no phone, no backup code) the enrolment was taken over. Mailed codes are for logins."""
    from test_selfservice import PASSWORD
    user = mail_home(host)
    host.inst.enroll(user)
    host.inst.cli("admin", "email", user, f"{user}@localhost")
    before = host.inst.cli("admin", "show", user, "--json").stdout
    for command in (["enroll", "--replace"], ["backup-codes"], ["disable"], ["email", "evil@localhost"]):
        r = host.as_user(user, *command, input=f"{PASSWORD}\nemail\n")
        assert r.returncode != 0 and "Codes by email are for logging in only" in r.stderr, (command, r.stdout + r.stderr)
    assert mails(user) == []
    assert host.inst.cli("admin", "show", user, "--json").stdout == before
    details = [e["detail"] for e in host.inst.audit_events() if e["user"] == user and e["result"] == "failure"]
    assert details.count("code by email asked for a self-service change") == 4, details


def test_admin_changes_name_the_acting_administrator_and_the_reason(inst, users):
    alice = users()
    inst.write_config(rate_limit="2/300", lockout="1h")
    inst.enroll(alice)
    inst.service()
    for _ in range(2):
        harness_login(inst.pamdir, "tstest", alice, wrong(oathtool()))
    inst.cli("admin", "unlock", alice, "--reason", "locked by a typo", env=dict(os.environ, SUDO_USER="opsadmin"))
    assert events(inst, "admin_unlock", alice)[-1]["detail"] == "by opsadmin: locked by a typo"
    inst.cli("admin", "reset", alice, "--reason", "ticket 4711", env=dict(os.environ, SUDO_USER="helpdesk"))
    assert events(inst, "admin_reset", alice)[-1]["detail"] == "by helpdesk: ticket 4711"
    env = {k: v for k, v in os.environ.items() if k != "SUDO_USER"}
    inst.enroll(alice)
    r = inst.cli("admin", "unlock", alice, env=env)
    assert events(inst, "admin_unlock", alice)[-1]["detail"] == "by root"
    assert f"{alice} was not locked" in r.stdout, r.stdout
    # A name with no enrolment: refused, no state file made, nothing audited as done.
    r = inst.cli("admin", "unlock", "nosuchuser", check=False)
    assert r.returncode == 1 and "not enrolled" in r.stderr, r.stdout + r.stderr
    assert not os.path.exists(os.path.join(inst.state, "nosuchuser.state"))
    assert events(inst, "admin_unlock", "nosuchuser") == []
    r = inst.cli("admin", "reset", alice, "--reason", "two\nlines", check=False)
    assert r.returncode != 0 and "one line" in r.stderr


def test_the_audit_login_uid_names_the_admin_whatever_sudo_user_says(inst, users):
    """Where the session has an audit login uid (pam_loginuid set it at login; sudo and su
    keep it), that account is the acting admin in the audit log, whatever SUDO_USER claims:
    the environment is the caller's to write."""
    alice, admin = users(), users()
    probe = subprocess.run(["sh", "-c", "echo 0 > /proc/self/loginuid"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("this kernel does not let root set a process's login uid")
    inst.enroll(alice)
    inst.cli("admin", "unlock", alice, "--reason", "checked", login_uid=pwd.getpwnam(admin).pw_uid,
             env=dict(os.environ, SUDO_USER="opsadmin"))
    assert events(inst, "admin_unlock", alice)[-1]["detail"] == f"by {admin}: checked"
    inst.cli("admin", "unlock", alice, "--reason", "again", env=dict(os.environ, SUDO_USER="opsadmin"))
    assert events(inst, "admin_unlock", alice)[-1]["detail"] == "by opsadmin: again"
