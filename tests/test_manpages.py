# SPDX-License-Identifier: Apache-2.0
"""Man pages and shell completions: twostep(1) is generated from the CLI's argument-parser
definitions and must match the built CLI (`make man` regenerates it); the hand-written
pam_twostep(8) and twostep.conf(5) name every module argument and config key the code
accepts; every page renders without a groff warning; `make install` puts pages, completions
and the pam-auth-update profile where Debian looks for them (MANDIR honoured)."""
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import CLI, ROOT

PAGES = ["man/twostep.1", "man/twostep.conf.5", "man/pam_twostep.8", "man/twostep-helper.8"]
UTF8 = dict(os.environ, LC_ALL="C.UTF-8", MANWIDTH="80")


def run(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 120)
    return subprocess.run(cmd, **kw)


def rendered(page):
    r = run(["man", "-l", os.path.join(ROOT, page)], env=UTF8)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_twostep_1_matches_the_built_cli():
    assert os.path.exists(CLI), f"{CLI} missing: run `make` first"
    r = run([os.path.join(ROOT, "scripts/gen-manpage.py"), "--cli", CLI])
    assert r.returncode == 0, r.stderr
    committed = open(os.path.join(ROOT, "man/twostep.1")).read()
    assert r.stdout == committed, "man/twostep.1 is stale: run `make man` and commit it"


def test_twostep_1_names_every_command_and_option_of_help():
    page = rendered("man/twostep.1")
    for path in (["enroll"], ["status"], ["admin", "import"], ["admin", "rotate-key"], ["try"]):
        help_text = run([CLI, *path, "--help"]).stdout
        assert f"twostep {' '.join(path)}" in page
        for option in re.findall(r"^\s+(--[a-z][a-z-]*)", help_text, re.M):
            assert option in page, (path, option)


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_without_warnings(page):
    r = run(["groff", "-ww", "-z", "-man", os.path.join(ROOT, page)], env=UTF8)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    # What lintian runs (man --warnings), at its 80 columns.
    r = run(["man", "--warnings", "-E", "UTF-8", "-l", os.path.join(ROOT, page)], env=UTF8)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "NAME" in r.stdout and "SEE ALSO" in r.stdout


def test_pam_twostep_8_has_linux_pam_layout_and_every_argument():
    page = rendered("man/pam_twostep.8")
    headings = [l for l in page.splitlines() if re.fullmatch(r"[A-Z][A-Z ]+", l)]
    assert headings == ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "MODULE TYPES PROVIDED",
                        "RETURN VALUES", "EXAMPLES", "FILES", "SEE ALSO"]
    source = open(os.path.join(ROOT, "Sources/TwoStepProtocol/ModuleOptions.swift")).read()
    arguments = re.findall(r'\("([a-z_]+)", \.(value|flag)', source)
    assert len(arguments) >= 6
    options = page.split("OPTIONS", 1)[1].split("MODULE TYPES PROVIDED")[0]
    for name, kind in arguments:
        assert re.search(rf"^\s+{name}{'=' if kind == 'value' else ''}", options, re.M), name
    # Every PAM code the module can return (Relay.swift, Authenticate.swift) is explained.
    module = "".join(open(os.path.join(ROOT, "Sources/TwoStepPAM", f)).read()
                     for f in os.listdir(os.path.join(ROOT, "Sources/TwoStepPAM")))
    codes = set(re.findall(r"TWOSTEP_(PAM_[A-Z_]+?)\b", module)) - {
        "PAM_SERVICE", "PAM_RHOST", "PAM_RUSER", "PAM_TTY", "PAM_SILENT",
        "PAM_PROMPT_ECHO_OFF", "PAM_PROMPT_ECHO_ON", "PAM_TEXT_INFO", "PAM_ERROR_MSG"}
    returns = page.split("RETURN VALUES", 1)[1].split("EXAMPLES")[0]
    for code in codes:
        assert code in returns, code
    for stack in ("AuthenticationMethods publickey,keyboard-interactive", "@include common-auth",
                  "pam-auth-update --enable twostep"):
        assert stack in page


def test_twostep_conf_5_documents_every_key():
    page = rendered("man/twostep.conf.5")
    source = open(os.path.join(ROOT, "Sources/TwoStepStore/Config.swift")).read()
    keys = re.findall(r'"([a-z_]+)"', source.split("knownKeys = [", 1)[1].split("]", 1)[0])
    assert len(keys) >= 15
    section = page.split("KEYS", 1)[1].split("EXAMPLE")[0]
    for key in keys:
        assert re.search(rf"^\s+{key} = ", section, re.M), key


def test_make_install_puts_pages_completions_and_profile_in_place():
    dest = tempfile.mkdtemp(prefix="twostep-maninst-")
    try:
        r = run(["make", "-s", "install", f"DESTDIR={dest}", "PREFIX=/usr", "MANDIR=/opt/tsman",
                 "PAMDIR=/lib/security"], cwd=ROOT, timeout=900)
        assert r.returncode == 0, r.stdout + r.stderr
        for page in PAGES:
            section = page.rsplit(".", 1)[1]
            installed = os.path.join(dest, f"opt/tsman/man{section}", os.path.basename(page))
            assert open(installed).read() == open(os.path.join(ROOT, page)).read()
        profile = open(os.path.join(dest, "usr/share/pam-configs/twostep")).read()
        assert "Default: no" in profile and "Auth-Type: Additional" in profile
        assert re.search(r"^\trequired\tpam_twostep\.so nullok$", profile, re.M)
        bash = os.path.join(dest, "usr/share/bash-completion/completions/twostep")
        # The real completion function, as bash runs it for `twostep admin <TAB>`.
        r = run(["bash", "-c", f'source {bash}; COMP_WORDS=(twostep admin ""); COMP_CWORD=2; '
                 'COMP_LINE="twostep admin "; COMP_POINT=${#COMP_LINE}; _twostep twostep "" admin; '
                 'printf "%s\\n" "${COMPREPLY[@]}"'])
        assert r.returncode == 0, r.stderr
        assert {"import", "rotate-key", "unlock"} <= set(r.stdout.split()), r.stdout
        zsh = open(os.path.join(dest, "usr/share/zsh/vendor-completions/_twostep")).read()
        assert zsh.startswith("#compdef twostep") and "rotate-key" in zsh
        fish = open(os.path.join(dest, "usr/share/fish/vendor_completions.d/twostep.fish")).read()
        assert "complete -c 'twostep'" in fish and "rotate-key" in fish
        for shell, path in (("zsh", "usr/share/zsh/vendor-completions/_twostep"),
                            ("fish", "usr/share/fish/vendor_completions.d/twostep.fish")):
            if shutil.which(shell):
                r = run([shell, "-n", os.path.join(dest, path)])
                assert r.returncode == 0, r.stderr
    finally:
        shutil.rmtree(dest, ignore_errors=True)
