# SPDX-License-Identifier: Apache-2.0
"""`make bench` as a smoke run: a benchmark is not a timed test, but it must complete and
print every row, or nobody can measure anything. Few rounds; no figure is asserted."""
import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT


@pytest.mark.skipif(not os.path.exists("/usr/bin/oathtool"), reason="oathtool not installed")
def test_bench_completes_and_prints_every_row():
    ga = [p for p in ("/lib/x86_64-linux-gnu/security/pam_google_authenticator.so",
                      "/usr/lib/x86_64-linux-gnu/security/pam_google_authenticator.so") if os.path.exists(p)]
    if not ga:
        pytest.skip("libpam-google-authenticator not installed (scripts/deps.sh test installs it)")
    r = subprocess.run(["sh", os.path.join(ROOT, "bench", "run.sh")], cwd=ROOT,
                       env=dict(os.environ, ROUNDS="3", WARMUP="1", BURST="8", BURST_ROUNDS="1"),
                       capture_output=True, text=True, timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    for row in ("pam_google_authenticator", "pam_twostep default (running helper)",
                "pam_twostep spawn fallback (twostep-verify)", "pam_twostep spawn twostep-helper",
                "trivial static spawn", "twostep-verify --version spawn", "RSS added to host",
                "round order shuffled with seed", "8 logins at once", "pam_twostep.so:"):
        assert row in out, (row, out)
    # The module's size and memory on one whole line (a grep once matched the burst row too
    # and printed its JSON in the middle of it).
    assert re.search(r"^bench: pam_twostep\.so: \d+ bytes as built, \d+ stripped; adds -?\d+ KiB to its host's RSS "
                     r"\(google: -?\d+ KiB\)$", out, re.M), out


@pytest.mark.skipif(not os.path.exists("/usr/bin/oathtool"), reason="oathtool not installed")
def test_bench_scale_completes_and_prints_every_figure():
    """`make bench-scale` in miniature (2,000 users, a few rounds): it must finish and print
    each figure; the figures themselves are not asserted (a timed test would be luck)."""
    r = subprocess.run(["sh", os.path.join(ROOT, "bench", "scale.sh")], cwd=ROOT,
                       env=dict(os.environ, BENCH_SCALE_USERS="2000", ROUNDS="5", WARMUP="1"),
                       capture_output=True, text=True, timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    # 5 + 1 + 1 logins per row, two rows (default path, spawn fallback) per store.
    for row in ("import --batch:", "login,     14 users:", "login,   2000 users:", "login ratio big/small:",
                "spawned login,     14 users:", "spawned login,   2000 users:", "spawned login ratio big/small:",
                "admin list --json:", "admin report --json:", "admin rotate-key:"):
        assert "bench-scale: " + row in out, (row, out)
