# SPDX-License-Identifier: Apache-2.0
"""Moving users over from google-authenticator-libpam and pam_oath: files made by the real
`google-authenticator` CLI and used through the real pam_google_authenticator.so and
pam_oath.so first, then imported, then logins through pam_twostep (libpam harness) with
codes from oathtool."""
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time

import pytest

from conftest import (CLI, PAM_AUTH_ERR, PAM_SUCCESS, SECRET, harness_login, oathtool, run, state_text)

IMPORT_GA = ("admin", "import-google-authenticator")


def hotp(secret, counter, digits=6, base32=True):
    """The HOTP code for `counter`, from oathtool."""
    args = ["oathtool", "--hotp", "-d", str(digits), "-c", str(counter)]
    return run(args + (["-b"] if base32 else []) + [secret]).stdout.strip()


def totp_hex(secret_hex, at, digits=6, period=30):
    return run(["oathtool", "--totp", "-d", str(digits), "-s", f"{period}s", "-N", f"@{int(at)}", secret_hex]).stdout.strip()


class Accounts:
    """Real accounts with home directories under the test's root, removed afterwards."""

    def __init__(self, root):
        self.root = root
        self.names = []
        os.chmod(root, 0o711)  # users reach their homes; state and keys stay 0700
        os.makedirs(os.path.join(root, "home"), mode=0o755)

    def add(self):
        name = f"tsi{secrets.token_hex(3)}"
        home = os.path.join(self.root, "home", name)
        os.mkdir(home, 0o700)
        run(["useradd", "-M", "-d", home, "-s", "/bin/sh", name])
        self.names.append(name)
        shutil.chown(home, name, name)
        return name, home

    def ga_user(self, *options):
        """An account whose ~/.google_authenticator the real google-authenticator CLI wrote
        (as that user, non-interactively)."""
        name, home = self.add()
        path = os.path.join(home, ".google_authenticator")
        if "-w" not in options:
            options += ("-w", "3")  # it asks otherwise
        run(["runuser", "-u", name, "--", "google-authenticator", "-f", "-q", "-Q", "NONE", "-s", path, *options],
            input="")
        return name, path

    def close(self):
        for n in self.names:
            subprocess.run(["userdel", "-f", n], capture_output=True)


@pytest.fixture
def accounts(inst):
    a = Accounts(inst.root)
    try:
        yield a
    finally:
        a.close()


def read_ga(path):
    """The secret and the scratch codes of a google-authenticator file."""
    lines = open(path).read().splitlines()
    return lines[0], [l for l in lines[1:] if re.fullmatch(r"\d{8}", l)]


def ga_service(inst):
    """A PAM service using the real pam_google_authenticator.so."""
    name = f"tsga{secrets.token_hex(3)}"
    with open(os.path.join(inst.pamdir, name), "w") as f:
        f.write("auth required pam_google_authenticator.so\naccount required pam_permit.so\n")
    return name


def last_step(inst, user, device="default"):
    """The replay mark in the (unsealed, not secret) state: device=NAME LAST_STEP COUNTER DRIFT LAST_USED."""
    text = state_text(os.path.join(inst.state, user + ".state"))
    return int(re.search(rf"^device={device} (-?\d+) ", text, re.M).group(1))


def records(inst):
    return [n for n in os.listdir(inst.state) if n.endswith(".record")]


def import_events(inst):
    return [e for e in inst.audit_events() if e["event"] == "admin_import"]


def test_totp_user_moves_over_with_used_step_and_scratch_codes(inst, accounts):
    user, path = accounts.ga_user("-t", "-d", "-r", "3", "-R", "30", "-w", "3", "-e", "5")
    secret, scratch = read_ga(path)
    assert len(scratch) == 5
    ga = ga_service(inst)
    t = time.time()
    code = oathtool(secret, at=t)
    # The file works with the module it was made for; one code and one scratch code spent there.
    assert harness_login(inst.pamdir, ga, user, code) == PAM_SUCCESS
    assert harness_login(inst.pamdir, ga, user, scratch[0]) == PAM_SUCCESS
    text = open(path).read()
    used = [int(s) for s in re.search(r'^" DISALLOW_REUSE (.*)$', text, re.M).group(1).split()]
    assert used and scratch[0] not in text

    r = inst.cli(*IMPORT_GA, user)
    assert f"{user}: imported: TOTP (SHA1, 6 digits, 30 s), steps up to {max(used)} stay used; " \
           "4 scratch codes as backup codes" in r.stdout, r.stdout
    assert "summary: 1 imported, 0 skipped, 0 refused, 0 failed" in r.stdout
    assert last_step(inst, user) == max(used)

    tw = inst.service()
    assert harness_login(inst.pamdir, tw, user, code) == PAM_AUTH_ERR          # used before the import
    assert harness_login(inst.pamdir, tw, user, scratch[0]) == PAM_AUTH_ERR    # spent before the import
    assert harness_login(inst.pamdir, tw, user, scratch[1]) == PAM_SUCCESS     # a scratch code, once
    assert harness_login(inst.pamdir, tw, user, scratch[1]) == PAM_AUTH_ERR
    assert harness_login(inst.pamdir, tw, user, oathtool(secret, at=time.time() + 30)) == PAM_SUCCESS

    events = import_events(inst)
    assert [(e["user"], e["result"]) for e in events] == [(user, "success")]
    log = open(inst.audit).read()
    assert secret not in log and not any(s in log for s in scratch)
    assert os.path.exists(path)  # left alone without --remove-original

    # Again: nothing to do, nothing changed.
    again = inst.cli(*IMPORT_GA, user)
    assert f"{user}: skipped: already imported" in again.stdout
    assert "summary: 0 imported, 1 skipped, 0 refused, 0 failed" in again.stdout
    assert harness_login(inst.pamdir, tw, user, scratch[2]) == PAM_SUCCESS  # the set was not re-issued
    assert len(import_events(inst)) == 1


def test_hotp_user_counter_goes_on(inst, accounts):
    user, path = accounts.ga_user("-c", "-u", "-w", "5", "-e", "2")
    secret, scratch = read_ga(path)
    ga = ga_service(inst)
    assert harness_login(inst.pamdir, ga, user, hotp(secret, 1)) == PAM_SUCCESS
    assert '" HOTP_COUNTER 2' in open(path).read()

    r = inst.cli(*IMPORT_GA, user)
    assert f"{user}: imported: HOTP (SHA1, 6 digits, next counter 2)" in r.stdout, r.stdout
    tw = inst.service()
    assert harness_login(inst.pamdir, tw, user, hotp(secret, 1)) == PAM_AUTH_ERR  # never back
    assert harness_login(inst.pamdir, tw, user, hotp(secret, 2)) == PAM_SUCCESS
    assert harness_login(inst.pamdir, tw, user, hotp(secret, 2)) == PAM_AUTH_ERR
    assert harness_login(inst.pamdir, tw, user, hotp(secret, 3)) == PAM_SUCCESS
    assert harness_login(inst.pamdir, tw, user, scratch[0]) == PAM_SUCCESS


def test_unsafe_files_are_refused_and_reported(inst, accounts):
    user, path = accounts.ga_user("-t", "-D", "-u", "-e", "1")
    ga = ga_service(inst)
    os.chmod(path, 0o644)
    secret, _ = read_ga(path)
    # The module itself will not use it ...
    assert harness_login(inst.pamdir, ga, user, oathtool(secret)) != PAM_SUCCESS
    # ... nor will the importer.
    r = inst.cli(*IMPORT_GA, user, check=False)
    assert r.returncode == 1
    assert f"{user}: refused: {path}: mode 0644 is more permissive than 0600" in r.stdout, r.stdout
    assert "summary: 0 imported, 0 skipped, 1 refused, 0 failed" in r.stdout

    os.chmod(path, 0o600)
    os.chown(path, 0, 0)
    r = inst.cli(*IMPORT_GA, user, check=False)
    assert r.returncode == 1
    assert f"{user}: refused: {path}: owned by root (uid 0), not by {user} (uid" in r.stdout, r.stdout

    shutil.chown(path, user, user)
    os.rename(path, path + ".real")
    os.symlink(path + ".real", path)
    r = inst.cli(*IMPORT_GA, user, check=False)
    assert r.returncode == 1
    assert f"{user}: refused: {path}: is a symbolic link" in r.stdout, r.stdout

    assert records(inst) == []
    assert [e["result"] for e in import_events(inst)] == ["refused"] * 3


def test_dry_run_changes_nothing(inst, accounts):
    user, path = accounts.ga_user("-t", "-d", "-u", "-e", "3")
    before = open(path).read()
    r = inst.cli(*IMPORT_GA, user, "--dry-run", "--remove-original")
    assert f"{user}: would import: TOTP (SHA1, 6 digits, 30 s); 3 scratch codes as backup codes" in r.stdout, r.stdout
    assert f"would shred {path}" in r.stdout
    assert "dry run, nothing changed: 1 to import, 0 skipped, 0 refused, 0 failed" in r.stdout
    assert records(inst) == [] and import_events(inst) == []
    assert open(path).read() == before


def test_remove_original_shreds_after_verified_import(inst, accounts):
    user, path = accounts.ga_user("-t", "-d", "-u", "-e", "1")
    secret, _ = read_ga(path)
    r = inst.cli(*IMPORT_GA, user, "--remove-original")
    assert f"{path} shredded" in r.stdout, r.stdout
    assert not os.path.exists(path)
    assert harness_login(inst.pamdir, inst.service(), user, oathtool(secret)) == PAM_SUCCESS
    assert [e["result"] for e in import_events(inst)] == ["success", "success"]


def test_remove_original_on_a_second_run_and_all_accounts(inst, accounts):
    a, pa = accounts.ga_user("-t", "-d", "-u", "-e", "1")
    b, pb = accounts.ga_user("-t", "-d", "-u", "-e", "1")
    r = inst.cli(*IMPORT_GA, "--all")
    assert f"{a}: imported" in r.stdout and f"{b}: imported" in r.stdout, r.stdout
    # A later run may remove what an earlier one imported: the store holds the same secret.
    r = inst.cli(*IMPORT_GA, a, "--remove-original")
    assert f"{a}: skipped: already imported" in r.stdout and f"{pa} shredded" in r.stdout, r.stdout
    assert not os.path.exists(pa) and os.path.exists(pb)


def test_file_elsewhere_with_owner_and_replace(inst, accounts):
    user, _ = accounts.add()
    inst.enroll(user)  # already enrolled with another secret
    os.makedirs(os.path.join(inst.root, "ga"), mode=0o700)
    path = os.path.join(inst.root, "ga", user)
    run(["google-authenticator", "-t", "-d", "-u", "-w", "3", "-e", "1", "-f", "-q", "-Q", "NONE", "-s", path], input="")
    secret, _ = read_ga(path)
    # Owned by root, as with the module's `secret=/…/${USER} user=root`.
    r = inst.cli(*IMPORT_GA, "--file", path, "--user", user, check=False)
    assert r.returncode == 1 and f"not by {user}" in r.stdout, r.stdout
    r = inst.cli(*IMPORT_GA, "--file", path, "--user", user, "--owner", "root")
    assert f"{user}: skipped: already enrolled (give --replace to overwrite)" in r.stdout, r.stdout
    tw = inst.service()
    assert harness_login(inst.pamdir, tw, user, oathtool(secret)) == PAM_AUTH_ERR
    r = inst.cli(*IMPORT_GA, "--file", path, "--user", user, "--owner", "root", "--replace")
    assert f"{user}: imported" in r.stdout
    assert harness_login(inst.pamdir, tw, user, oathtool(secret)) == PAM_SUCCESS


# ---- pam_oath ----

HEX_A = secrets.token_hex(20)
HEX_B = secrets.token_hex(20)
HEX_C = secrets.token_hex(20)


def oath_service(inst, usersfile):
    name = f"tsoa{secrets.token_hex(3)}"
    with open(os.path.join(inst.pamdir, name), "w") as f:
        f.write(f"auth required pam_oath.so usersfile={usersfile} window=5\naccount required pam_permit.so\n")
    return name


def test_oath_usersfile_proven_with_pam_oath_then_imported(inst):
    tag = secrets.token_hex(2)
    alice, bob, carol, dave = (f"tso{tag}{x}" for x in "abcd")
    usersfile = os.path.join(inst.root, "users.oath")
    with open(usersfile, "w") as f:
        f.write("# pam_oath users\n"
                f"HOTP {alice} - {HEX_A}\n"
                f"HOTP/T30 {alice} - {HEX_B}\n"
                f"HOTP/E/8 {bob} - {HEX_C} 5\n"
                f"HOTP {carol} s3cret-pin {HEX_A}\n"
                f"HOTP/T30/7 {dave} - {HEX_B}\n")
    os.chmod(usersfile, 0o600)

    # Valid for the real pam_oath first: it advances counters and records the last codes.
    po = oath_service(inst, usersfile)
    t = time.time()
    used_totp = totp_hex(HEX_B, t)
    assert harness_login(inst.pamdir, po, alice, hotp(HEX_A, 0, base32=False)) == PAM_SUCCESS
    assert harness_login(inst.pamdir, po, alice, used_totp) == PAM_SUCCESS
    assert harness_login(inst.pamdir, po, bob, hotp(HEX_C, 6, digits=8, base32=False)) == PAM_SUCCESS
    text = open(usersfile).read()
    assert re.search(rf"^HOTP\t{alice}\t-\t{HEX_A}\t0\t", text, re.M), text
    assert re.search(rf"^HOTP/E/8\t{bob}\t-\t{HEX_C}\t6\t", text, re.M), text

    # Users it cannot take over are refused, not skipped: exit status 1.
    dry = inst.cli("admin", "import-oath", usersfile, "--dry-run", check=False)
    assert dry.returncode == 1, dry.stdout + dry.stderr
    assert "dry run, nothing changed: 2 to import, 0 skipped, 2 refused, 0 failed" in dry.stdout, dry.stdout
    assert records(inst) == []

    r = inst.cli("admin", "import-oath", usersfile, check=False)
    out = r.stdout
    assert r.returncode == 1, out + r.stderr
    assert f"{alice}: imported: HOTP (SHA1, 6 digits, next counter 1); TOTP (SHA1, 6 digits, 30 s), steps up to" in out, out
    assert f"{bob}: imported: HOTP (SHA1, 8 digits, next counter 7)" in out, out
    assert f"{carol}: refused: line 5: has a PIN (twostep never stores passwords)" in out
    assert f"{dave}: refused: line 6: 7-digit codes" in out
    assert "summary: 2 imported, 0 skipped, 2 refused, 0 failed" in out
    assert "s3cret-pin" not in out + r.stderr + open(inst.audit).read()

    tw = inst.service()
    # Counters never go back; the TOTP code pam_oath accepted stays used.
    assert harness_login(inst.pamdir, tw, alice, hotp(HEX_A, 0, base32=False)) == PAM_AUTH_ERR
    assert harness_login(inst.pamdir, tw, alice, used_totp) == PAM_AUTH_ERR
    assert harness_login(inst.pamdir, tw, alice, hotp(HEX_A, 1, base32=False)) == PAM_SUCCESS
    assert harness_login(inst.pamdir, tw, alice, totp_hex(HEX_B, time.time() + 30)) == PAM_SUCCESS
    assert harness_login(inst.pamdir, tw, bob, hotp(HEX_C, 6, digits=8, base32=False)) == PAM_AUTH_ERR
    assert harness_login(inst.pamdir, tw, bob, hotp(HEX_C, 7, digits=8, base32=False)) == PAM_SUCCESS
    assert harness_login(inst.pamdir, tw, carol, hotp(HEX_A, 2, base32=False)) == PAM_AUTH_ERR

    again = inst.cli("admin", "import-oath", usersfile, check=False)
    assert f"{alice}: skipped: already imported" in again.stdout and f"{bob}: skipped: already imported" in again.stdout
    assert "summary: 0 imported, 2 skipped, 2 refused" in again.stdout


def test_oath_usersfile_writable_by_others_is_refused(inst):
    usersfile = os.path.join(inst.root, "users.oath")
    with open(usersfile, "w") as f:
        f.write(f"HOTP tsoz - {HEX_A}\n")
    os.chmod(usersfile, 0o666)
    r = inst.cli("admin", "import-oath", usersfile, check=False)
    assert r.returncode == 1 and "mode 0666 is more permissive than 0644" in r.stderr, r.stderr
    assert records(inst) == []


def test_a_replacing_import_killed_before_the_record_is_written_keeps_spent_codes_spent(inst, accounts):
    """`import-google-authenticator --replace` wrote the new state before the new record: a
    crash between the two (here SIGKILL injected by strace at the record's rename, the first
    rename of the run) left the old record with the new file's fresh state, and a code the
    old record had accepted passed again. The old record now keeps its own marks."""
    user, _ = accounts.add()
    inst.enroll(user)
    tw = inst.service()
    t = time.time()
    assert harness_login(inst.pamdir, tw, user, oathtool(at=t)) == PAM_SUCCESS
    os.makedirs(os.path.join(inst.root, "ga"), mode=0o700)
    path = os.path.join(inst.root, "ga", user)
    run(["google-authenticator", "-t", "-d", "-u", "-w", "3", "-e", "1", "-f", "-q", "-Q", "NONE", "-s", path], input="")
    r = subprocess.run(["strace", "-f", "-o", "/dev/null", "-e", "inject=rename,renameat,renameat2:signal=KILL:when=1",
                        CLI, *IMPORT_GA, "--file", path, "--user", user, "--owner", "root", "--replace",
                        "--config", inst.conf], capture_output=True, text=True, timeout=60)
    assert r.returncode in (-signal.SIGKILL, 128 + signal.SIGKILL), (r.returncode, r.stdout, r.stderr)
    # Killed before the record changed: the old secret still logs in, its spent code does not.
    assert harness_login(inst.pamdir, tw, user, oathtool(at=t)) == PAM_AUTH_ERR
    assert harness_login(inst.pamdir, tw, user, oathtool(at=t + 30)) == PAM_SUCCESS
    # A rerun finishes the import.
    assert f"{user}: imported" in inst.cli(*IMPORT_GA, "--file", path, "--user", user, "--owner", "root",
                                           "--replace").stdout
    assert harness_login(inst.pamdir, tw, user, oathtool(read_ga(path)[0])) == PAM_SUCCESS


def test_a_secret_the_record_already_has_keeps_its_spent_codes_through_a_replacing_import(inst, accounts):
    """A reviewer's user had the secret of a google-authenticator file and one authenticator
    more; `--replace` took the file's fresh state, and a code already accepted passed again."""
    user, _ = accounts.add()
    inst.enroll(user)
    inst.cli("admin", "import", user, "--name", "phone", "--secret", "-", input="GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\n")
    tw = inst.service()
    t = time.time()
    assert harness_login(inst.pamdir, tw, user, oathtool(at=t)) == PAM_SUCCESS
    os.makedirs(os.path.join(inst.root, "ga"), mode=0o700)
    path = os.path.join(inst.root, "ga", user)
    with open(path, "w") as f:
        f.write(f"{SECRET}\n\" WINDOW_SIZE 3\n\" TOTP_AUTH\n")
    os.chmod(path, 0o600)
    r = inst.cli(*IMPORT_GA, "--file", path, "--user", user, "--owner", "root", "--replace")
    assert f"{user}: imported" in r.stdout, r.stdout + r.stderr
    assert harness_login(inst.pamdir, tw, user, oathtool(at=t)) == PAM_AUTH_ERR
    assert harness_login(inst.pamdir, tw, user, oathtool(at=t + 30)) == PAM_SUCCESS


def test_a_rerun_carries_over_what_the_old_module_spent_since(inst, accounts):
    """The user went on logging in through pam_google_authenticator after the import (the
    stacks not switched yet): a rerun carries the code and the scratch code spent there into
    twostep, and neither passes in twostep afterwards; --replace brings no code back."""
    user, path = accounts.ga_user("-t", "-d", "-r", "3", "-R", "30", "-w", "3", "-e", "3")
    secret, scratch = read_ga(path)
    ga = ga_service(inst)
    t = time.time()
    assert f"{user}: imported" in inst.cli(*IMPORT_GA, user).stdout
    tw = inst.service()
    assert harness_login(inst.pamdir, tw, user, scratch[0]) == PAM_SUCCESS          # spent in twostep
    later = oathtool(secret, at=t + 30)                                             # within GA's window
    assert harness_login(inst.pamdir, ga, user, later) == PAM_SUCCESS
    assert harness_login(inst.pamdir, ga, user, scratch[1]) == PAM_SUCCESS          # spent in GA
    r = inst.cli(*IMPORT_GA, user)
    step = int(t + 30) // 30
    assert f"{user}: updated: already imported; totp default: steps up to {step} used; 1 backup code used there spent" \
        in r.stdout, r.stdout
    assert "summary: 0 imported, 1 updated, 0 skipped, 0 refused, 0 failed" in r.stdout, r.stdout
    assert [e["result"] for e in import_events(inst)] == ["success", "success"]
    assert harness_login(inst.pamdir, tw, user, later) == PAM_AUTH_ERR
    assert harness_login(inst.pamdir, tw, user, scratch[1]) == PAM_AUTH_ERR
    again = inst.cli(*IMPORT_GA, user, "--replace")
    assert f"{user}: skipped: already imported" in again.stdout, again.stdout
    assert harness_login(inst.pamdir, tw, user, scratch[0]) == PAM_AUTH_ERR        # spent here, still in GA's file
    assert harness_login(inst.pamdir, tw, user, scratch[2]) == PAM_SUCCESS


def test_a_rerun_carries_an_hotp_counter_on(inst, accounts):
    user, path = accounts.ga_user("-c", "-u", "-w", "5", "-e", "1")
    secret, _ = read_ga(path)
    ga = ga_service(inst)
    assert harness_login(inst.pamdir, ga, user, hotp(secret, 1)) == PAM_SUCCESS
    assert "next counter 2" in inst.cli(*IMPORT_GA, user).stdout
    assert harness_login(inst.pamdir, ga, user, hotp(secret, 2)) == PAM_SUCCESS
    r = inst.cli(*IMPORT_GA, user, "--remove-original")
    assert f"{user}: updated: already imported; hotp default: next counter 3" in r.stdout, r.stdout
    assert not os.path.exists(path)  # shredded once twostep holds what it held
    tw = inst.service()
    assert harness_login(inst.pamdir, tw, user, hotp(secret, 2)) == PAM_AUTH_ERR
    assert harness_login(inst.pamdir, tw, user, hotp(secret, 3)) == PAM_SUCCESS


def test_files_twostep_cannot_take_over_are_refused_audited_and_fail_the_run(inst, accounts):
    """STEP_SIZE 5, scratch codes only, a phone clock beyond max_drift: the module reads
    them, so after the switch their users would have no enrolment. Refused, exit status 1."""
    secret_line = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    cases = {'" STEP_SIZE 5\n" TOTP_AUTH\n': "STEP_SIZE 5 s is outside",
             "12345678\n": "neither TOTP_AUTH nor HOTP_COUNTER: the file only holds scratch codes",
             '" TIME_SKEW 960\n" TOTP_AUTH\n': "TIME_SKEW 960 steps (480 min) is beyond twostep's reach"}
    for options, why in cases.items():
        user, home = accounts.add()
        path = os.path.join(home, ".google_authenticator")
        with open(path, "w") as f:
            f.write(secret_line + "\n" + options)
        os.chmod(path, 0o600)
        shutil.chown(path, user, user)
        r = inst.cli(*IMPORT_GA, user, check=False)
        assert r.returncode == 1 and f"{user}: refused: {path}: {why}" in r.stdout, r.stdout + r.stderr
        assert import_events(inst)[-1]["user"] == user and import_events(inst)[-1]["result"] == "refused"
    assert records(inst) == []


def test_an_import_killed_midway_leaves_no_half_written_user(inst):
    """Killed between a new user's two files (SIGKILL at the second rename): the record used
    to come first and stay without its replay state, and the rerun called it "already
    imported" with the HOTP counter back at 0 (codes pam_oath had accepted passed again).
    The state comes first now: the user is not enrolled until the rerun writes both."""
    user = f"tsf{secrets.token_hex(3)}"
    counter = 7
    usersfile = os.path.join(inst.root, "users.oath")
    with open(usersfile, "w") as f:
        f.write(f"HOTP\t{user}\t-\t{HEX_A}\t{counter}\t{hotp(HEX_A, counter, base32=False)}\t2026-12-01T10:25:37L\n")
    os.chmod(usersfile, 0o600)
    r = subprocess.run(["strace", "-f", "-o", "/dev/null", "-e", "inject=rename,renameat,renameat2:signal=KILL:when=2",
                        CLI, "admin", "import-oath", usersfile, "--config", inst.conf],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode in (-signal.SIGKILL, 128 + signal.SIGKILL), (r.returncode, r.stdout, r.stderr)
    assert records(inst) == []
    again = inst.cli("admin", "import-oath", usersfile)
    assert f"{user}: imported: HOTP (SHA1, 6 digits, next counter {counter + 1})" in again.stdout, again.stdout
    assert f"no account named {user} on this host: enrolled all the same" in again.stdout
    tw = inst.service()
    assert harness_login(inst.pamdir, tw, user, hotp(HEX_A, counter, base32=False)) == PAM_AUTH_ERR
    assert harness_login(inst.pamdir, tw, user, hotp(HEX_A, counter + 1, base32=False)) == PAM_SUCCESS


def test_oath_refusals_are_audited_and_times_are_read_in_the_system_zone(inst):
    """liboath writes a line's time in the local time of the PAM host (sshd: the system's
    zone), whatever TZ the admin's shell has; a refused user is audited like any other."""
    tag = secrets.token_hex(2)
    fred, gina, hank = (f"tsz{tag}{x}" for x in "fgh")
    t = int(time.time()) - 90
    used = totp_hex(HEX_B, t)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t)) + "L"   # the system's zone (no TZ here)
    usersfile = os.path.join(inst.root, "users.oath")
    with open(usersfile, "w") as f:
        f.write(f"HOTP/T30\t{fred}\t-\t{HEX_B}\t0\t{used}\t{stamp}\n"
                f"HOTP\t{gina}\tpin\t{HEX_A}\n"
                f"HOTP\t{hank}\t-\t{HEX_C}\t3\t{hotp(HEX_C, 3, digits=8, base32=False)}\t{stamp}\n")
    os.chmod(usersfile, 0o600)
    env = dict(os.environ, TZ="America/Los_Angeles")
    r = inst.cli("admin", "import-oath", usersfile, check=False, env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"{fred}: imported: TOTP (SHA1, 6 digits, 30 s), steps up to {t // 30} stay used" in r.stdout, r.stdout
    assert f"{hank}: refused: line 3: pam_oath's last accepted code has 8 digits, the line's type 6" in r.stdout
    refused = {e["user"] for e in import_events(inst) if e["result"] == "refused"}
    assert refused == {gina, hank}, import_events(inst)


def test_batch_refuses_options_its_lines_would_not_get(inst):
    r = inst.cli("admin", "import", "--batch", "-", "--digits", "8", check=False, input="")
    assert r.returncode == 64 and "--batch takes every field from its lines" in r.stderr, r.stderr


def test_a_batch_import_killed_between_state_and_record_keeps_the_hotp_counter(inst):
    """A new HOTP user's state is written before the record: killed at the record's rename,
    the user is not enrolled yet, and the rerun imports the token at its counter (the other
    order left a record whose counter started again at 0, "already enrolled" at the rerun)."""
    user = f"tsk{secrets.token_hex(3)}"
    line = json.dumps({"user": user, "secret": SECRET, "type": "hotp", "counter": 5000}) + "\n"
    r = subprocess.run(["strace", "-f", "-o", "/dev/null", "-e", "inject=rename,renameat,renameat2:signal=KILL:when=2",
                        CLI, "admin", "import", "--batch", "-", "--config", inst.conf],
                       input=line, capture_output=True, text=True, timeout=60)
    assert r.returncode in (-signal.SIGKILL, 128 + signal.SIGKILL), (r.returncode, r.stdout, r.stderr)
    assert records(inst) == []
    again = inst.cli("admin", "import", "--batch", "-", input=line)
    assert "1 user(s) imported, 0 line(s) failed" in again.stdout, again.stdout
    tw = inst.service()
    assert harness_login(inst.pamdir, tw, user, hotp(SECRET, 3)) == PAM_AUTH_ERR
    assert harness_login(inst.pamdir, tw, user, hotp(SECRET, 5000)) == PAM_SUCCESS


def test_a_batch_stopped_while_its_input_stalls_says_so(inst):
    """SIGTERM (or Ctrl-C) while the import waited for a stalled producer was lost: the read
    was restarted, and the run ended with exit status 0 and "success" once input came."""
    lines = "".join(json.dumps({"user": f"tsw{i}", "secret": SECRET}) + "\n" for i in range(3))
    p = subprocess.Popen(["sh", "-c", f"printf '%s' '{lines}'; sleep 30", ], stdout=subprocess.PIPE)
    try:
        imp = subprocess.Popen([CLI, "admin", "import", "--batch", "-", "--config", inst.conf], stdin=p.stdout,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2)   # the lines are read (they are written when the batch ends), then the pipe stalls
        assert imp.poll() is None
        imp.send_signal(signal.SIGTERM)
        out, err = imp.communicate(timeout=10)
    finally:
        p.kill()
        p.wait()
    assert imp.returncode == 128 + signal.SIGTERM, (imp.returncode, out, err)
    assert "3 user(s) imported" in out and "interrupted after line 3" in out, out
    assert [e["result"] for e in inst.audit_events() if e["event"] == "admin_import_batch"] == ["failure"]


def test_a_batch_names_users_whose_file_names_are_hashed(inst):
    """A long name's files are named by a hash; the batch wrote no `.name` beside them, so
    `admin list`, `report`, rotate-key and migrate could not find those users."""
    long = "l" + "o" * 227 + "ng"
    line = json.dumps({"user": long, "secret": SECRET}) + "\n"
    inst.cli("admin", "import", "--batch", "-", input=line)
    assert long in inst.cli("admin", "list").stdout
    assert "no known user name" not in inst.cli("admin", "rotate-key", "--status").stdout


def test_a_batch_refuses_names_that_are_not_utf8_and_warns_of_names_no_account_has(inst):
    """`zz\\xff` and `zz\\xfe` were both read as `zz\\ufffd`: the second line's user was the
    first's (with --replace its secret silently replaced). A name no account has (a typo)
    was enrolled without the warning a single `admin import` gives."""
    first = b'{"user":"zz\xff","secret":"' + SECRET.encode() + b'"}\n'
    typo = json.dumps({"user": "tsnoaccount", "secret": SECRET}).encode() + b"\n"
    r = subprocess.run([CLI, "admin", "import", "--batch", "-", "--config", inst.conf], input=first + typo,
                       capture_output=True, timeout=60)
    out, err = r.stdout.decode(), r.stderr.decode()
    assert r.returncode == 1 and "line 1: \"user\" must be a valid user name (UTF-8" in err, out + err
    assert "1 user(s) imported, 1 line(s) failed (line 1)" in out, out
    assert "warning: 1 name(s) no account has on this host, enrolled all the same: tsnoaccount" in err, err


def test_an_oath_rerun_keeps_backup_codes_made_in_twostep(inst):
    """pam_oath keeps no scratch codes: every backup code of a user it imported was made in
    twostep, and a rerun (to carry HOTP counters over) must not take them as spent."""
    user = f"tsb{secrets.token_hex(3)}"
    usersfile = os.path.join(inst.root, "users.oath")
    with open(usersfile, "w") as f:
        f.write(f"HOTP\t{user}\t-\t{HEX_A}\n")
    os.chmod(usersfile, 0o600)
    assert f"{user}: imported" in inst.cli("admin", "import-oath", usersfile).stdout
    codes = json.loads(inst.cli("admin", "backup-codes", user, "--json").stdout)["backup_codes"]
    r = inst.cli("admin", "import-oath", usersfile)
    assert f"{user}: skipped: already imported" in r.stdout, r.stdout
    tw = inst.service()
    assert harness_login(inst.pamdir, tw, user, codes[0]) == PAM_SUCCESS
