# SPDX-License-Identifier: Apache-2.0
"""The Debian package (debian/): built with dpkg-buildpackage from a copy of the tree, its
contents checked against `make install`, lintian --pedantic run on it, and (when this
machine has no other twostep installation) installed, removed and purged for real with
apt-get; and installed and purged once more under a real systemd, in a throw-away container
(tests/nspawn.py), where its sockets must start and serve a login. While it is installed, its pam-auth-update profile is enabled and disabled inside a
private mount namespace (a copy of /etc/pam.d and /var/lib/pam bound over the real ones):
a login through common-auth asks for the password, then the code; the package's prerm
takes the profile out again on removal. The host's stacks are never touched.

Builds Swift from scratch in the copy (about 2.5 minutes on 2 cores). With
TWOSTEP_PREBUILT=1 in the environment the copy takes the root checkout's build/ binaries
instead (debian/rules TWOSTEP_PREBUILT=DIR), so run `make` first.
"""
import hashlib
import os
import secrets
import shutil
import stat
import subprocess
import tempfile
import time
import uuid

import pytest

from conftest import ROOT, SECRET, installed_files, oathtool
import nspawn

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (apt-get, dpkg -i)")

MULTIARCH = subprocess.run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"], capture_output=True,
                           text=True).stdout.strip() or "x86_64-linux-gnu"
PAMDIR = f"lib/{MULTIARCH}/security"
TOOLS = ["debhelper", "dpkg-dev", "devscripts", "lintian", "po-debconf", "man-db", "groff-base"]
APT_ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
APT_LOCK = ["-o", "DPkg::Lock::Timeout=600"]
# `make install` without rebuilding (its binaries are FORCE'd targets): as debian/rules does.
KEEP_BINARIES = ["-o", "all", "-o", "build/pam_twostep.so", "-o", "build/twostep", "-o", "build/twostep-helper",
                 "-o", "build/twostep-verify"]
# What pam-auth-update reads and writes; compared byte for byte before and after.
PAM_STATE = ["/etc/pam.d", "/var/lib/pam"]

# What `make install DESTDIR=... PREFIX=/usr PAMDIR=/lib/<multiarch>/security
# LIBEXECDIR=/usr/libexec/twostep` installs, with its modes.
FILES = installed_files(PAMDIR)
# Added by debhelper (dh_installdocs, dh_installchangelogs, dh_lintian); dh_compress gzips big docs.
DEBHELPER_FILES = {"usr/share/doc/twostep/copyright", "usr/share/doc/twostep/changelog.gz",
                   "usr/share/lintian/overrides/twostep"}
# dh_compress gzips the man pages.
MAN_PAGES = {p for p in FILES if p.startswith("usr/share/man/")}
# Paths a real install creates; the real-install test runs only if none exists beforehand.
HOST_PATHS = ["/usr/bin/twostep", "/usr/libexec/twostep", f"/{PAMDIR}/pam_twostep.so", "/etc/twostep",
              "/var/lib/twostep", "/etc/pam.d/twostep", "/lib/systemd/system/twostep-helper.socket"]


def run(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run(cmd, **kw)


def installed(pkg):
    r = run(["dpkg-query", "-W", "-f=${Status}", pkg])
    return r.returncode == 0 and r.stdout.strip() == "install ok installed"


def ensure_tools():
    missing = [p for p in TOOLS if not installed(p)]
    if missing:
        r = run(["apt-get", *APT_LOCK, "-qq", "update"], env=APT_ENV)
        assert r.returncode == 0, r.stderr
        r = run(["apt-get", *APT_LOCK, "install", "-y", "-qq", "--no-install-recommends", *missing], env=APT_ENV)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    r = run([os.path.join(ROOT, "scripts/deps.sh"), "build"])  # the Build-Depends (-dev packages)
    assert r.returncode == 0, r.stdout + r.stderr


def build_env():
    env = dict(os.environ)
    env.pop("MAKEFLAGS", None)
    env.pop("MFLAGS", None)
    env.pop("MAKELEVEL", None)
    if shutil.which("swift") is None and os.path.exists("/opt/swift/usr/bin/swift"):
        env["PATH"] = "/opt/swift/usr/bin:" + env["PATH"]
    if os.environ.get("TWOSTEP_PREBUILT"):
        env["TWOSTEP_PREBUILT"] = os.path.join(ROOT, "build")
    return env


@pytest.fixture(scope="module")
def deb():
    """Builds the package from a copy of the working tree; yields paths to the results."""
    ensure_tools()
    work = tempfile.mkdtemp(prefix="twostep-deb-")
    src = os.path.join(work, "twostep")
    os.makedirs(src)
    # A copy of the working tree (uncommitted changes included), without build products:
    # the root checkout stays clean, and this build races with nobody's.
    tar = run(f"tar -C {ROOT} -c --exclude=./.git --exclude=./.build --exclude='./.build-*' "
              f"--exclude='./.build_*' --exclude=./build --exclude=./.pytest_cache --exclude=__pycache__ "
              f"--exclude=./demo-state . | tar -x -C {src}", shell=True)
    assert tar.returncode == 0, tar.stderr
    started = time.monotonic()
    r = run(["dpkg-buildpackage", "-b", "-us", "-uc"], cwd=src, env=build_env(), timeout=1800)
    seconds = time.monotonic() - started
    print(f"\ndpkg-buildpackage -b: {seconds:.0f} s "
          f"({'prebuilt binaries' if os.environ.get('TWOSTEP_PREBUILT') else 'Swift built from scratch'})")
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-6000:]
    arch = run(["dpkg-architecture", "-qDEB_HOST_ARCH"]).stdout.strip()
    version = run(["dpkg-parsechangelog", "-S", "Version"], cwd=src).stdout.strip()
    out = {
        "work": work, "src": src,
        "deb": os.path.join(work, f"twostep_{version}_{arch}.deb"),
        "changes": os.path.join(work, f"twostep_{version}_{arch}.changes"),
    }
    assert os.path.exists(out["deb"]), os.listdir(work)
    yield out
    if not os.environ.get("TWOSTEP_KEEP_DEB"):
        shutil.rmtree(work, ignore_errors=True)


def deb_listing(path):
    """{path: (mode, owner)} for regular files in the .deb, from dpkg-deb -c."""
    files = {}
    for line in run(["dpkg-deb", "-c", path], check=True).stdout.splitlines():
        perms, owner, _size, _date, _time, name = line.split(None, 5)
        if perms.startswith("-"):
            mode = 0
            for i, ch in enumerate(perms[1:]):
                if ch != "-":
                    mode |= 1 << (8 - i)
            files[name.lstrip("./")] = (mode, owner)
    return files


def test_contents_and_modes(deb):
    files = deb_listing(deb["deb"])
    for path, mode in FILES.items():
        if path in MAN_PAGES:
            path += ".gz"
        assert path in files, (path, sorted(files))
        assert files[path] == (mode, "root/root"), (path, oct(files[path][0]), files[path][1])
    # Nothing the package must not ship: no PAM stack besides its own service, no state.
    assert not any(p.startswith(("etc/pam.d/sshd", "etc/pam.d/sudo", "var/", "etc/twostep/keys")) for p in files)
    assert not any(".build-id" in p or p.startswith("usr/lib/debug") for p in files)
    # The units' Documentation= and postinst's message name README.md, not README.md.gz.
    assert "usr/share/doc/twostep/README.md" in files, sorted(p for p in files if p.startswith("usr/share/doc"))


def test_same_files_as_make_install(deb):
    """The package ships exactly what `make install` installs (plus debhelper's copyright and
    changelog, with long docs gzipped), byte for byte for the binaries."""
    dest = tempfile.mkdtemp(prefix="twostep-mkinst-")
    try:
        r = run(["make", "-s", *KEEP_BINARIES, "install", f"DESTDIR={dest}", "PREFIX=/usr",
                 f"PAMDIR=/{PAMDIR}", "LIBEXECDIR=/usr/libexec/twostep"], cwd=deb["src"], env=build_env())
        assert r.returncode == 0, r.stdout + r.stderr
        made = {}
        for d, _dirs, names in os.walk(dest):
            for n in names:
                full = os.path.join(d, n)
                made[os.path.relpath(full, dest)] = stat.S_IMODE(os.stat(full).st_mode)
        files = deb_listing(deb["deb"])
        shipped = {p[:-3] if p.endswith(".gz") and p[:-3] in made else p: m for p, (m, _o) in files.items()
                   if p not in DEBHELPER_FILES}
        assert set(shipped) == set(made), (set(shipped) ^ set(made))
        assert shipped == made
        tree = tempfile.mkdtemp(prefix="twostep-debx-")
        try:
            run(["dpkg-deb", "-x", deb["deb"], tree], check=True)
            for path in ("usr/bin/twostep", "usr/libexec/twostep/twostep-helper", "usr/libexec/twostep/twostep-verify",
                         f"{PAMDIR}/pam_twostep.so"):
                digest = [hashlib.sha256(open(os.path.join(root, path), "rb").read()).hexdigest()
                          for root in (tree, dest)]
                assert digest[0] == digest[1], path
                needed = run(["readelf", "-d", os.path.join(tree, path)]).stdout
                assert "libswift" not in needed and "RPATH" not in needed and "RUNPATH" not in needed, needed
                assert "not stripped" not in run(["file", os.path.join(tree, path)]).stdout
        finally:
            shutil.rmtree(tree, ignore_errors=True)
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def test_control_fields(deb):
    info = run(["dpkg-deb", "-I", deb["deb"]], check=True).stdout
    print(info)
    fields = dict(line.split(": ", 1) for line in
                  run(["dpkg-deb", "-f", deb["deb"]], check=True).stdout.splitlines() if ": " in line
                  and not line.startswith(" "))
    assert fields["Package"] == "twostep"
    assert fields["Architecture"] == run(["dpkg-architecture", "-qDEB_HOST_ARCH"]).stdout.strip()
    depends = [d.strip().split()[0] for d in fields["Depends"].split(",")]
    # From dh_shlibdeps (the ELF NEEDED entries); the Swift runtime is static.
    for lib in ("libc6", "libpam0g", "libssl3", "libqrencode4", "libpng16-16", "libpq5", "zlib1g"):
        assert lib in depends, fields["Depends"]
    assert not any("swift" in d for d in depends)
    assert "debconf" in fields["Depends"]
    assert "libpam-runtime" in depends and "default-mta | mail-transport-agent" in fields["Suggests"], fields
    # twostep-verify is a static PIE: the sources of what is linked into it, at the versions
    # installed on the build machine (Debian policy 7.8).
    built_using = {b.strip().split()[0]: b.strip() for b in fields["Built-Using"].split(",")}
    assert sorted(built_using) == ["glibc", "openssl", "zlib"], fields["Built-Using"]
    for source, dev in (("glibc", "libc6-dev"), ("openssl", "libssl-dev"), ("zlib", "zlib1g-dev")):
        version = run(["dpkg-query", "-W", "-f=${source:Version}", dev], check=True).stdout.strip()
        assert built_using[source] == f"{source} (= {version})", fields["Built-Using"]
    ctrl = tempfile.mkdtemp(prefix="twostep-ctrl-")
    try:
        run(["dpkg-deb", "-e", deb["deb"], ctrl], check=True)
        assert sorted(open(os.path.join(ctrl, "conffiles")).read().split()) == \
            ["/etc/logrotate.d/twostep", "/etc/pam.d/twostep", "/etc/twostep/twostep.conf"]
        postinst = open(os.path.join(ctrl, "postinst")).read()
        # Both sockets are enabled: self-service, and logins (the module's default socket=).
        assert "deb-systemd-helper enable 'twostep-helper.socket'" in postinst
        assert "deb-systemd-helper enable 'twostep-helperd.socket'" in postinst
        # The service itself is started by its socket, never enabled on its own.
        assert "deb-systemd-helper debian-installed 'twostep-helperd.service'" in postinst
        assert "twostep-helper@" not in postinst
        for script in ("postinst", "prerm", "postrm"):
            text = open(os.path.join(ctrl, script)).read()
            assert "/etc/pam.d/sshd" not in text and "pam.d/sudo" not in text, script
    finally:
        shutil.rmtree(ctrl, ignore_errors=True)


def test_lintian_pedantic_has_no_errors_or_warnings(deb):
    """lintian --pedantic: no error, no warning, and no tag of any level about the man pages
    (lintian renders them with `man --warnings`). Other informational and pedantic tags are
    printed, not fatal."""
    r = run(["lintian", "--pedantic", "--display-info", "--allow-root", "--tag-display-limit", "0",
             deb["changes"]], timeout=900)
    print("\nlintian:\n" + (r.stdout + r.stderr).strip())
    bad = [l for l in r.stdout.splitlines() if l.startswith(("E:", "W:"))]
    assert not bad, "\n".join(bad)
    # Nothing at all about the man pages or the overrides (debian/twostep.lintian-overrides).
    about = [l for l in r.stdout.splitlines() if "usr/share/man/" in l or "override" in l]
    assert not about, "\n".join(about)


def snapshot(dirs):
    """{path: bytes} for every file under `dirs` (symlinks as their target text)."""
    out = {}
    for top in dirs:
        for d, _dirs, names in os.walk(top):
            for n in names:
                full = os.path.join(d, n)
                out[full] = os.readlink(full).encode() if os.path.islink(full) else open(full, "rb").read()
    return out


class PrivatePAM:
    """Copies of /etc/pam.d and /var/lib/pam, bound over the real ones inside a private mount
    namespace (unshare -m) for each script run: pam-auth-update and logins there see and
    change only the copies."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="twostep-pamns-")
        shutil.copytree("/etc/pam.d", os.path.join(self.dir, "pam.d"), symlinks=True)
        shutil.copytree("/var/lib/pam", os.path.join(self.dir, "varlibpam"), symlinks=True)
        self.pamd = os.path.join(self.dir, "pam.d")

    def run(self, script, **env):
        preamble = ('mount --bind "$TS_DIR/pam.d" /etc/pam.d\n'
                    'mount --bind "$TS_DIR/varlibpam" /var/lib/pam\n')
        return run(["unshare", "--mount", "--propagation", "private", "sh", "-euc", preamble + script],
                   env=dict(APT_ENV, TS_DIR=self.dir, **env), timeout=600)

    def file(self, name, mode="r"):
        return open(os.path.join(self.pamd, name), mode)

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def harness_prompts(output):
    return [l.split(": ", 1)[1] for l in output.splitlines() if l.startswith("PROMPT_")]


def check_pam_auth_update_login(work):
    """With the package installed: `pam-auth-update --enable twostep` puts pam_twostep after
    pam_unix in common-auth; a login through a stack that includes common-auth asks for the
    password and then the code (from oathtool); a wrong password ends it before the code; the
    package's own `twostep` service (password check for self-service) asks no code;
    `--disable` gives back common-auth byte for byte. All inside a private namespace."""
    started = time.monotonic()
    harness = os.path.join(work, "pam_harness")
    if not os.path.exists(harness):
        r = run(["cc", "-O2", "-o", harness, os.path.join(ROOT, "tests/harness/pam_harness.c"), "-lpam", "-ldl"])
        assert r.returncode == 0, r.stderr
    user = f"tsdeb{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(12)
    service = f"twostep-pau-{secrets.token_hex(4)}"
    priv = PrivatePAM()
    try:
        r = run(["useradd", "-M", "-s", "/usr/sbin/nologin", user])
        assert r.returncode == 0, r.stderr
        assert run(["chpasswd"], input=f"{user}:{password}\n").returncode == 0
        r = run(["twostep", "admin", "import", user, "--secret", "-"], input=SECRET + "\n")
        assert r.returncode == 0, r.stdout + r.stderr
        original = priv.file("common-auth", "rb").read()
        for name, text in (("good", f"{password}\n{oathtool()}\n"), ("badpw", "not-the-password\n123456\n"),
                           ("selfservice", f"{password}\n")):
            path = os.path.join(priv.dir, name)
            with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
                f.write(text)
        r = priv.run(
            'pam-auth-update --enable twostep\n'
            'cp /etc/pam.d/common-auth "$TS_DIR/enabled"\n'
            # An upgrade whose profile changed: postinst configure OLD-VERSION applies it
            # (a reviewer's profile change never reached common-auth).
            'sed "s/pam_twostep.so nullok$/pam_twostep.so nullok timeout=20/" /usr/share/pam-configs/twostep '
            '> "$TS_DIR/profile"\n'
            'mount --bind "$TS_DIR/profile" /usr/share/pam-configs/twostep\n'
            '/var/lib/dpkg/info/twostep.postinst configure 0.0.1 > "$TS_DIR/postinst.out" 2>&1\n'
            'cp /etc/pam.d/common-auth "$TS_DIR/upgraded"\n'
            'umount /usr/share/pam-configs/twostep\n'
            'pam-auth-update --package\n'
            'cmp /etc/pam.d/common-auth "$TS_DIR/enabled"\n'
            'printf "@include common-auth\\n" > "/etc/pam.d/$TS_SERVICE"\n'
            'for a in good badpw; do\n'
            '  "$TS_HARNESS" --confdir /etc/pam.d --service "$TS_SERVICE" --user "$TS_USER" '
            '--answers "$TS_DIR/$a" > "$TS_DIR/$a.out" || true\n'
            'done\n'
            # The package's own password check for self-service (pam.d/twostep includes
            # common-auth): the profile must not ask it for a code.
            '"$TS_HARNESS" --confdir /etc/pam.d --service twostep --user "$TS_USER" '
            '--answers "$TS_DIR/selfservice" > "$TS_DIR/selfservice.out" || true\n'
            'rm "/etc/pam.d/$TS_SERVICE"\n'
            'pam-auth-update --disable twostep\n',
            TS_HARNESS=harness, TS_USER=user, TS_SERVICE=service)
        assert r.returncode == 0, r.stdout + r.stderr
        enabled = [l.split() for l in open(os.path.join(priv.dir, "enabled"))
                   if l.strip() and not l.startswith("#")]
        modules = [next(w for w in l if w.endswith(".so")) for l in enabled]
        assert modules.index("pam_unix.so") < modules.index("pam_twostep.so"), enabled
        assert enabled[modules.index("pam_twostep.so")][-2:] == ["pam_twostep.so", "nullok"]
        upgraded = [l.split() for l in open(os.path.join(priv.dir, "upgraded")) if "pam_twostep.so" in l]
        assert len(upgraded) == 1 and upgraded[0][-3:] == ["pam_twostep.so", "nullok", "timeout=20"], \
            open(os.path.join(priv.dir, "postinst.out")).read()
        good = open(os.path.join(priv.dir, "good.out")).read()
        assert harness_prompts(good) == ["Password: ", "Verification code: "], good
        assert "RESULT: Success (0)" in good, good
        badpw = open(os.path.join(priv.dir, "badpw.out")).read()
        assert harness_prompts(badpw) == ["Password: "], badpw
        assert "RESULT: Success" not in badpw, badpw
        selfservice = open(os.path.join(priv.dir, "selfservice.out")).read()
        assert harness_prompts(selfservice) == ["Password: "], selfservice
        assert "RESULT: Success (0)" in selfservice, selfservice
        assert priv.file("common-auth", "rb").read() == original
        print(f"\npam-auth-update enable, two logins, disable: {time.monotonic() - started:.1f} s")
    finally:
        priv.close()
        run(["twostep", "admin", "reset", user])
        run(["userdel", user])


def _host_is_clean():
    return not installed("twostep") and not any(os.path.lexists(p) for p in HOST_PATHS)


def test_install_remove_purge_on_this_machine(deb):
    """apt-get installs the .deb for real; postinst makes the keys and state; the
    pam-auth-update profile works (see check_pam_auth_update_login) and prerm removes it;
    remove keeps keys and state; purge keeps them by default and deletes them when debconf
    says so. The host's /etc/pam.d and /var/lib/pam end as they began, byte for byte."""
    if not _host_is_clean():
        pytest.skip("twostep is already installed here (package or make install): not touching it")
    sshd_before = open("/etc/pam.d/sshd", "rb").read() if os.path.exists("/etc/pam.d/sshd") else None
    pam_before = snapshot(PAM_STATE)
    stack = f"/etc/pam.d/twostep-debtest-{uuid.uuid4().hex[:8]}"

    def apt(*args):
        return run(["apt-get", *APT_LOCK, "-y", "-q", *args], env=APT_ENV, timeout=600)

    def key_ids():
        return sorted(n for n in os.listdir("/etc/twostep/keys") if n.endswith(".key"))

    try:
        r = apt("install", "--no-install-recommends", deb["deb"])
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr
        assert installed("twostep")
        st = os.stat("/var/lib/twostep")
        assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == 0 and st.st_gid == 0
        st = os.stat("/etc/twostep/keys")
        assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == 0
        keys = key_ids()
        assert len(keys) == 1
        assert stat.S_IMODE(os.stat(f"/etc/twostep/keys/{keys[0]}").st_mode) == 0o400
        assert os.path.exists("/etc/twostep/keys/active")
        r = run(["twostep", "admin", "list"])
        assert r.returncode == 0, r.stderr
        # Both sockets enabled (no systemd needed: deb-systemd-helper's links).
        assert os.path.islink("/etc/systemd/system/sockets.target.wants/twostep-helper.socket")
        assert os.path.islink("/etc/systemd/system/sockets.target.wants/twostep-helperd.socket")

        # Reinstalling keeps the key (admin init is idempotent).
        r = apt("install", "--reinstall", deb["deb"])
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr
        assert key_ids() == keys

        check_pam_auth_update_login(deb["work"])

        # remove while pam-auth-update cannot take the profile's line out of common-auth
        # (the admin edited it by hand: its marker line is gone): every service includes
        # common-auth, so with the module gone nobody could log in. prerm refuses and the
        # package stays; TWOSTEP_REMOVE_ANYWAY=1 is the way past it (not taken here).
        priv = PrivatePAM()
        try:
            r = priv.run('pam-auth-update --enable twostep\n'
                         "sed -i '/^# here are the per-package modules/d' /etc/pam.d/common-auth\n"
                         'grep -q pam_twostep /etc/pam.d/common-auth\n'
                         f'if apt-get {" ".join(APT_LOCK)} -y -q remove twostep; then exit 3; fi\n'
                         f'test -e /{PAMDIR}/pam_twostep.so\n'
                         'grep -q pam_twostep /etc/pam.d/common-auth\n')
            out = r.stdout + r.stderr
            assert r.returncode == 0, out[-3000:]
            assert "not removed" in out and "/etc/pam.d/common-auth" in out and "TWOSTEP_REMOVE_ANYWAY=1" in out, out[-3000:]
        finally:
            priv.close()
        r = run(["dpkg-query", "-W", "-f", "${Status}", "twostep"])
        assert r.stdout == "install ok installed", r.stdout + r.stderr

        # remove, with the profile enabled (in a private namespace): prerm takes it out of
        # common-auth again, byte for byte; a stack of the admin's own that still names the
        # module gets a warning; keys and state stay.
        priv = PrivatePAM()
        try:
            with priv.file(os.path.basename(stack), "w") as f:
                f.write("auth required pam_twostep.so nullok\n")
            original = priv.file("common-auth", "rb").read()
            r = priv.run('pam-auth-update --enable twostep\n'
                         'grep -q pam_twostep /etc/pam.d/common-auth\n'
                         f'apt-get {" ".join(APT_LOCK)} -y -q remove twostep\n')
            assert r.returncode == 0, r.stdout[-3000:] + r.stderr
            assert stack in r.stdout + r.stderr and "WARNING" in r.stdout + r.stderr, r.stdout + r.stderr
            assert "common-auth" not in r.stdout + r.stderr, r.stdout + r.stderr
            assert priv.file("common-auth", "rb").read() == original
        finally:
            priv.close()
        assert not os.path.exists("/usr/bin/twostep") and not os.path.exists(f"/{PAMDIR}/pam_twostep.so")
        assert key_ids() == keys and os.path.isdir("/var/lib/twostep")
        assert os.path.exists("/etc/twostep/twostep.conf")  # conffiles stay until purge

        # purge with the default answer: the keys and enrolments are kept, and it says so.
        r = apt("purge", "twostep")
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr
        assert "kept /etc/twostep/keys" in r.stdout + r.stderr
        assert key_ids() == keys and os.path.isdir("/var/lib/twostep")
        assert not os.path.exists("/etc/twostep/twostep.conf") and not os.path.exists("/etc/pam.d/twostep")
        assert not os.path.lexists("/etc/systemd/system/sockets.target.wants/twostep-helper.socket")
        assert not os.path.lexists("/etc/systemd/system/sockets.target.wants/twostep-helperd.socket")

        # A reinstall carries on with the same key.
        r = apt("install", deb["deb"])
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr
        assert key_ids() == keys

        # purge after the admin said yes: both go, together.
        r = run(["debconf-set-selections"], input="twostep twostep/purge_data boolean true\n")
        assert r.returncode == 0, r.stderr
        r = apt("purge", "twostep")
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr
        assert "deleted /etc/twostep/keys" in r.stdout + r.stderr and "deleted /var/lib/twostep" in r.stdout + r.stderr
        for path in ("/var/lib/twostep", "/etc/twostep", "/usr/libexec/twostep", "/etc/pam.d/twostep"):
            assert not os.path.lexists(path), path
        assert not installed("twostep")
    finally:
        if os.path.lexists(stack):
            os.unlink(stack)
        if installed("twostep") or run(["dpkg-query", "-W", "twostep"]).returncode == 0:
            run(["debconf-set-selections"], input="twostep twostep/purge_data boolean true\n")
            apt("purge", "twostep")
        # Only paths that did not exist before this test (checked above).
        for path in ("/var/lib/twostep", "/etc/twostep"):
            shutil.rmtree(path, ignore_errors=True)
        after = open("/etc/pam.d/sshd", "rb").read() if os.path.exists("/etc/pam.d/sshd") else None
        assert after == sshd_before, "/etc/pam.d/sshd changed"
        pam_after = snapshot(PAM_STATE)
        changed = sorted(p for p in set(pam_before) | set(pam_after) if pam_before.get(p) != pam_after.get(p))
        assert not changed, f"the host's PAM configuration changed: {changed}"


@pytest.mark.skipif(nspawn.available() is not None, reason=str(nspawn.available()))
def test_the_package_under_a_real_systemd(deb):
    """apt-get installs the .deb in a container booted with systemd: postinst enables and
    starts both sockets (deb-systemd-helper, deb-systemd-invoke), a login through the
    module's defaults is answered by the socket-activated twostep-helperd, and purge stops
    and disables them again."""
    name = os.path.basename(deb["deb"])

    def prepare(root):
        shutil.copy(deb["deb"], os.path.join(root, "root", name))
        nspawn.install_harness(root)
        # Container images (this machine's among them) ship a policy-rc.d that forbids
        # maintainer scripts to start anything; a Debian host has none.
        if os.path.lexists(os.path.join(root, "usr/sbin/policy-rc.d")):
            os.unlink(os.path.join(root, "usr/sbin/policy-rc.d"))

    with nspawn.booted(prepare) as m:
        r = m.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", f"/root/{name}"],
                  check=False, env=APT_ENV, timeout=600)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr
        for unit in ("twostep-helper.socket", "twostep-helperd.socket"):
            assert m.run(["systemctl", "is-enabled", unit], check=False).stdout.strip() == "enabled", unit
            assert m.active(unit) == "active", unit
        assert m.active("twostep-helperd.service") == "inactive"  # started by the first login
        m.run(["useradd", "-m", "debsystemd"])
        m.run(["twostep", "admin", "import", "debsystemd", "--secret", "-"], input=SECRET + "\n")
        # The module's defaults, and no helper to spawn: only the running helper can answer.
        m.write("/etc/pam.d/twostep-debtest-systemd",
                "auth required pam_twostep.so helper=/nonexistent\naccount required pam_permit.so\n")
        r = m.login("debsystemd", [oathtool()], "twostep-debtest-systemd")
        assert "RESULT: Success (0)" in r.stdout, r.stdout + r.stderr
        assert m.active("twostep-helperd.service") == "active"
        r = m.run(["apt-get", "purge", "-y", "-q", "twostep"], check=False, env=APT_ENV, timeout=600)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr
        for unit in ("twostep-helper.socket", "twostep-helperd.socket", "twostep-helperd.service"):
            assert m.active(unit) == "inactive", unit
        assert not os.path.exists(m.path("/run/twostep/verify.sock"))
