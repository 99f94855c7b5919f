# SPDX-License-Identifier: Apache-2.0
"""The import rules of DESIGN.md, enforced: a slip fails CI instead of waiting for a reader.

- The module's target (TwoStepPAM) never reaches TwoStepStore, TwoStepCrypto, COpenSSL or
  Foundation, through Package.swift's graph or through an `import` in any source it reaches;
  its built .so links no libcrypto and carries no code of those modules.
- TwoStepProtocol imports nothing and builds as Embedded Swift (no runtime).
- TwoStepCore does no I/O: it imports only TwoStepCrypto and calls no libc.
- The CLI does not link the root-only server (TwoStepServer); only twostep-helper does.
- Every `import` of a package target is declared in Package.swift.
"""
import functools
import glob
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import MODULE, ROOT

SOURCES = os.path.join(ROOT, "Sources")
SYSTEM_MODULES = {"Glibc", "Foundation", "XCTest", "ArgumentParser", "Dispatch"}


@functools.lru_cache(maxsize=1)
def package():
    r = subprocess.run(["swift", "package", "dump-package"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def dependencies(target):
    """The package targets `target` names in Package.swift."""
    out = []
    for dep in target.get("dependencies", []):
        for kind in ("byName", "target"):
            if kind in dep:
                out.append(dep[kind][0])
    return out


def graph():
    return {t["name"]: dependencies(t) for t in package()["targets"]}


def reachable(name):
    g, seen, todo = graph(), set(), [name]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        todo.extend(g.get(n, []))
    return seen


def imports(target):
    """Modules imported by the Swift sources of a target (directory under Sources/)."""
    found = set()
    for path in glob.glob(os.path.join(SOURCES, target, "**", "*.swift"), recursive=True):
        with open(path) as f:
            for line in f:
                m = re.match(r"\s*(?:@_exported\s+|@testable\s+|@_implementationOnly\s+)?import\s+(?:\w+\s+)?(\w+)", line)
                if m:
                    found.add(m.group(1))
    return found


def test_module_target_never_reaches_secrets():
    reach = reachable("TwoStepPAM")
    assert not reach & {"TwoStepStore", "TwoStepCrypto", "COpenSSL", "TwoStepCore", "TwoStepService",
                        "TwoStepServer", "TwoStepSystem"}, reach
    for target in reach:
        if os.path.isdir(os.path.join(SOURCES, target)):
            assert not imports(target) & {"Foundation", "TwoStepStore", "TwoStepCrypto", "COpenSSL"}, target


def test_protocol_imports_nothing_and_core_does_no_io():
    assert imports("TwoStepProtocol") == set()
    assert graph()["TwoStepProtocol"] == []
    assert imports("TwoStepCore") <= {"TwoStepCrypto"}, imports("TwoStepCore")
    assert reachable("TwoStepCore") == {"TwoStepCore", "TwoStepCrypto", "COpenSSL"}
    calls = re.compile(r"\b(print|readLine|open|read|write|fopen|getenv|time)\(")
    for path in glob.glob(os.path.join(SOURCES, "TwoStepCore", "*.swift")):
        with open(path) as f:
            for n, line in enumerate(f, 1):
                code = line.split("//")[0]
                assert not calls.search(code), f"{path}:{n}: I/O in Core: {line.strip()}"


def test_only_the_helper_links_the_server():
    assert "TwoStepServer" in reachable("twostep-helper")
    assert "TwoStepServer" not in reachable("twostep")
    for t in graph():
        if t not in ("twostep-helper", "TwoStepServer"):
            assert "TwoStepServer" not in graph()[t], t


def test_every_imported_target_is_declared_and_every_declared_one_imported():
    g = graph()
    for target, deps in g.items():
        mine = imports(target)
        if not glob.glob(os.path.join(SOURCES, target, "**", "*.swift"), recursive=True):
            continue  # C and system-library targets
        undeclared = mine - set(deps) - SYSTEM_MODULES
        assert not undeclared, f"{target} imports {sorted(undeclared)} without declaring them"
        unused = set(deps) - mine
        assert not unused, f"{target} declares {sorted(unused)} and never imports them"


def test_protocol_builds_as_embedded_swift(tmp_path):
    swiftc = shutil.which("swiftc")
    if swiftc is None:
        pytest.skip("swiftc not found")
    sources = sorted(glob.glob(os.path.join(SOURCES, "TwoStepProtocol", "*.swift")))
    r = subprocess.run([swiftc, "-target", "x86_64-unknown-linux-gnu", "-enable-experimental-feature", "Embedded",
                        "-wmo", "-parse-as-library", "-c", *sources, "-o", str(tmp_path / "p.o")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stderr, r.stderr


def test_built_module_links_no_crypto_and_no_store_code():
    if not os.path.exists(MODULE):
        pytest.skip(f"{MODULE} not built")
    ldd = subprocess.run(["ldd", MODULE], capture_output=True, text=True).stdout
    assert "libcrypto" not in ldd and "libssl" not in ldd, ldd
    nm = subprocess.run(["nm", MODULE], capture_output=True, text=True)
    if nm.returncode != 0 or not nm.stdout:
        pytest.skip("module is stripped")
    # Swift mangles module names into every symbol: s<len><name>.
    for name in ("TwoStepStore", "TwoStepCrypto", "TwoStepCore", "TwoStepServer", "TwoStepService"):
        mangled = f"{len(name)}{name}"
        assert mangled not in nm.stdout, f"{name} code in the module"
