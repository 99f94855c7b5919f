# SPDX-License-Identifier: Apache-2.0
"""`make install` as a packager runs it: into DESTDIR, with the layout DESIGN.md promises."""
import os
import stat
import subprocess
import tempfile

from conftest import ROOT, VERIFY, installed_files


def test_make_install_honours_destdir_and_layout():
    dest = tempfile.mkdtemp(prefix="twostep-destdir-")
    r = subprocess.run(["make", "-s", "install", f"DESTDIR={dest}", "PREFIX=/usr", "PAMDIR=/lib/security",
                        "LIBEXECDIR=/usr/libexec/twostep"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    expect = dict(installed_files("lib/security"), **{"usr/share/doc/twostep/README.md": 0o644})
    for path, mode in expect.items():
        st = os.stat(os.path.join(dest, path))
        assert stat.S_IMODE(st.st_mode) == mode, (path, oct(st.st_mode))
    # Stripped, self-contained binaries: no Swift toolchain needed on the target.
    for binary in ("usr/bin/twostep", "usr/libexec/twostep/twostep-helper", "lib/security/pam_twostep.so"):
        full = os.path.join(dest, binary)
        assert "not stripped" not in subprocess.run(["file", full], capture_output=True, text=True).stdout
        assert "libswift" not in subprocess.run(["ldd", full], capture_output=True, text=True).stdout
        # Debian's hardening defaults: full RELRO and immediate binding.
        dyn = subprocess.run(["readelf", "-d", "-l", full], capture_output=True, text=True).stdout
        assert "GNU_RELRO" in dyn and "BIND_NOW" in dyn, binary
    # The lean login helper the module spawns: stripped, hardened, and a static PIE (nothing
    # to load at exec, still loaded at a random address) that links no NSS lookup (a static
    # glibc cannot load NSS modules safely: docs/ARCHITECTURE.md).
    lean = os.path.join(dest, "usr/libexec/twostep/twostep-verify")
    assert "not stripped" not in subprocess.run(["file", lean], capture_output=True, text=True).stdout
    dyn = subprocess.run(["readelf", "-d", "-l", "-h", lean], capture_output=True, text=True).stdout
    assert "(NEEDED)" not in dyn and "INTERP" not in dyn, dyn
    assert "DYN (Position-Independent Executable file)" in dyn
    assert "GNU_RELRO" in dyn and "BIND_NOW" in dyn
    build_symbols = subprocess.run(["nm", VERIFY], capture_output=True, text=True).stdout.split()
    assert "SHA1_Init" in build_symbols  # the unstripped build has its symbol table
    nss = {"getpwnam", "getpwnam_r", "getpwuid", "getpwuid_r", "getpwent", "getgrouplist", "getgrgid_r",
           "getgrgid", "getgrnam", "getgrnam_r", "getgrent", "initgroups", "getspnam"}
    assert not nss & set(build_symbols)
    # The installed helper path is the module's default; the unit runs it from there.
    unit = open(os.path.join(dest, "lib/systemd/system/twostep-helper@.service")).read()
    assert "/usr/libexec/twostep/twostep-helper serve" in unit
    # An admin's config survives a reinstall.
    with open(os.path.join(dest, "etc/twostep/twostep.conf"), "a") as f:
        f.write("window = 2\n")
    r = subprocess.run(["make", "-s", "install", f"DESTDIR={dest}"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    assert "window = 2" in open(os.path.join(dest, "etc/twostep/twostep.conf")).read()
    subprocess.run(["rm", "-rf", dest])


def test_make_install_elsewhere_names_its_paths_where_the_defaults_would_miss():
    """With LIBEXECDIR and SYSCONFDIR elsewhere (PREFIX=/usr/local), the module's built-in
    helper=/config= defaults and the units' /usr/libexec paths named files that were not
    there: every login failed (PAM_AUTHINFO_UNAVAIL) and the sockets could not start."""
    dest = tempfile.mkdtemp(prefix="twostep-destdir-")
    try:
        r = subprocess.run(["make", "-s", "install", f"DESTDIR={dest}", "PREFIX=/usr/local", "SYSCONFDIR=/usr/local/etc"],
                           cwd=ROOT, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stdout + r.stderr
        assert os.path.exists(os.path.join(dest, "usr/local/libexec/twostep/twostep-verify"))
        unit = open(os.path.join(dest, "lib/systemd/system/twostep-helperd.service")).read()
        assert "ExecStart=/usr/local/libexec/twostep/twostep-helper serve --config /usr/local/etc/twostep/twostep.conf" in unit
        profile = open(os.path.join(dest, "usr/share/pam-configs/twostep")).read()
        assert ("pam_twostep.so helper=/usr/local/libexec/twostep/twostep-verify "
                "config=/usr/local/etc/twostep/twostep.conf nullok") in profile, profile
        example = open(os.path.join(dest, "usr/local/share/doc/twostep/examples/sudo")).read()
        assert "required   pam_twostep.so helper=/usr/local/libexec/twostep/twostep-verify" in example, example
    finally:
        subprocess.run(["rm", "-rf", dest])
