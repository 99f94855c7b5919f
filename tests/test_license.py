# SPDX-License-Identifier: Apache-2.0
"""The licence, stated everywhere it must be: LICENSE (the Apache License 2.0 text),
debian/copyright (machine-readable, naming Apache-2.0), the README, and an SPDX line at the
top of every source file (scripts/spdx.sh adds it; this suite fails when one lacks it)."""
import os
import shutil
import stat
import subprocess
import tempfile

from conftest import ROOT

SPDX = "SPDX-License-Identifier: Apache-2.0"
COMMON_LICENSE = "/usr/share/common-licenses/Apache-2.0"


def spdx(*args, cwd=ROOT):
    return subprocess.run([os.path.join(cwd, "scripts/spdx.sh"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_license_file_is_the_apache_2_0_text():
    text = open(os.path.join(ROOT, "LICENSE")).read()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    if os.path.exists(COMMON_LICENSE):
        assert text == open(COMMON_LICENSE).read()


def test_debian_copyright_is_machine_readable_and_names_apache_2_0():
    text = open(os.path.join(ROOT, "debian/copyright")).read()
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    assert paragraphs[0].startswith(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/")
    files = [p for p in paragraphs if p.startswith("Files:")]
    assert files and any(p.startswith("Files: *\n") for p in files)
    for p in files:
        fields = dict(l.split(": ", 1) for l in p.splitlines() if ": " in l and not l.startswith(" "))
        assert fields.get("License") == "Apache-2.0", p
        assert fields.get("Copyright"), p
    standalone = [p for p in paragraphs if p.startswith("License: Apache-2.0\n")]
    assert standalone and COMMON_LICENSE in standalone[0]
    assert "UNDECIDED" not in text


def test_readme_states_the_licence():
    readme = open(os.path.join(ROOT, "README.md")).read()
    assert "Apache License 2.0" in readme and "LICENSE" in readme


def test_every_source_file_carries_the_spdx_line():
    """Fails until `scripts/spdx.sh` has been run over the tree (and whenever a new source
    file is added without the line)."""
    listed = spdx("--list")
    assert listed.returncode == 0, listed.stderr
    files = listed.stdout.split()
    assert any(f.endswith(".swift") for f in files) and "Makefile" in files
    missing = []
    for f in files:
        with open(os.path.join(ROOT, f), errors="replace") as fh:
            head = [fh.readline() for _ in range(3)]
        if not any(SPDX in line for line in head):
            missing.append(f)
    assert not missing, f"{len(missing)} files lack '{SPDX}' (run scripts/spdx.sh): {missing[:20]}"
    assert spdx("--check").returncode == 0


def test_spdx_script_adds_the_line_once_and_keeps_first_lines_and_modes():
    tree = tempfile.mkdtemp(prefix="twostep-spdx-")
    try:
        os.makedirs(os.path.join(tree, "scripts"))
        os.makedirs(os.path.join(tree, "Sources/X"))
        os.makedirs(os.path.join(tree, "debian"))
        shutil.copy(os.path.join(ROOT, "scripts/spdx.sh"), os.path.join(tree, "scripts/spdx.sh"))
        files = {
            "Package.swift": "// swift-tools-version:5.10\nimport PackageDescription\n",
            "Sources/X/a.swift": "import Glibc\n",
            "Sources/X/b.c": "#include <stdio.h>\n",
            "tool.sh": "#!/bin/sh\necho hi\n",
            "t.py": '"""doc"""\n',
            "Makefile": "all:\n\ttrue\n",
            "debian/rules": "#!/usr/bin/make -f\n%:\n\tdh $@\n",
            "notes.md": "# not source\n",
            "empty.h": "",
        }
        for name, body in files.items():
            with open(os.path.join(tree, name), "w") as f:
                f.write(body)
        os.chmod(os.path.join(tree, "tool.sh"), 0o755)
        subprocess.run(["git", "init", "-q"], cwd=tree, check=True)
        subprocess.run(["git", "add", "."], cwd=tree, check=True)

        assert spdx("--check", cwd=tree).returncode == 1
        r = spdx(cwd=tree)
        assert r.returncode == 0, r.stderr
        assert sorted(r.stdout.split()) == sorted(n for n in files if n != "notes.md")

        def read(name):
            return open(os.path.join(tree, name)).read()
        assert read("Package.swift") == f"// swift-tools-version:5.10\n// {SPDX}\nimport PackageDescription\n"
        assert read("Sources/X/a.swift") == f"// {SPDX}\nimport Glibc\n"
        assert read("Sources/X/b.c").startswith(f"// {SPDX}\n#include")
        assert read("tool.sh") == f"#!/bin/sh\n# {SPDX}\necho hi\n"
        assert read("t.py") == f'# {SPDX}\n"""doc"""\n'
        assert read("Makefile").startswith(f"# {SPDX}\nall:")
        assert read("debian/rules").startswith(f"#!/usr/bin/make -f\n# {SPDX}\n%:")
        assert read("empty.h") == f"// {SPDX}\n"
        assert read("notes.md") == "# not source\n"
        assert stat.S_IMODE(os.stat(os.path.join(tree, "tool.sh")).st_mode) == 0o755

        before = {n: read(n) for n in files}
        again = spdx(cwd=tree)
        assert again.returncode == 0 and again.stdout == ""
        assert {n: read(n) for n in files} == before
        assert spdx("--check", cwd=tree).returncode == 0
    finally:
        shutil.rmtree(tree, ignore_errors=True)
