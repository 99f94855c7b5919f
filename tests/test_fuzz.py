# SPDX-License-Identifier: Apache-2.0
"""Coverage-guided fuzzing of everything that parses attacker-reachable bytes (Fuzz/).

Builds the libFuzzer targets with Fuzz/build.sh (plain swiftc -sanitize=fuzzer,address,
into .build-fuzz/ or $FUZZ_OUT; incremental) and runs each one for a bounded time from its
committed seed corpus (Fuzz/corpus/<target>/). A trap, an ASan report, a hang or a broken
invariant in a target is a crash: libFuzzer exits non-zero and leaves the input behind.

By default (`make test`) each target runs a fixed number of inputs from a fixed seed
(TWOSTEP_FUZZ_RUNS, default 150000, about 15 s each here), so a run is the same on every
machine and a failure replays; it must not depend on how fast CI's machine happens to be.
Exploring new inputs is `make fuzz` (TWOSTEP_FUZZ_SECONDS per target, a new seed each
time); whatever it finds goes into Fuzz/corpus/<target>/ as a regression input."""
import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUZZ = os.path.join(ROOT, "Fuzz")
OUT = os.environ.get("FUZZ_OUT", os.path.join(ROOT, ".build-fuzz"))
TARGETS = ["frames", "config", "record", "core", "totp", "imports"]
SECONDS = int(os.environ.get("TWOSTEP_FUZZ_SECONDS", "0"))
RUNS = int(os.environ.get("TWOSTEP_FUZZ_RUNS", "150000"))


@pytest.fixture(scope="module")
def fuzzers():
    if shutil.which(os.environ.get("SWIFTC", "swiftc")) is None:
        pytest.skip("swiftc not found")
    r = subprocess.run([os.path.join(FUZZ, "build.sh")], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "FUZZ_OUT": OUT})
    assert r.returncode == 0, f"Fuzz/build.sh failed:\n{r.stdout}{r.stderr}"
    return OUT


def run_fuzzer(binary, args, tmp_path):
    env = {**os.environ, "SWIFT_BACKTRACE": "enable=no"}  # let libFuzzer catch the trap
    return subprocess.run([binary, *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=(SECONDS or 60) + 240)


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_target(fuzzers, target, tmp_path):
    binary = os.path.join(fuzzers, f"fuzz-{target}")
    seeds = os.path.join(FUZZ, "corpus", target)
    assert os.listdir(seeds), f"no seeds in {seeds}"
    work = tmp_path / "corpus"   # new inputs go here; the committed corpus is only read
    work.mkdir()
    budget = [f"-max_total_time={SECONDS}"] if SECONDS else ["-seed=1", f"-runs={RUNS}"]
    args = budget + ["-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1",
            f"-artifact_prefix={tmp_path}/"]
    d = os.path.join(FUZZ, "dicts", f"{target}.dict")
    if os.path.exists(d):
        args.append(f"-dict={d}")
    r = run_fuzzer(binary, args + [str(work), seeds], tmp_path)
    found = sorted(p.name for p in tmp_path.iterdir() if re.match(r"(crash|leak|timeout|oom|slow-unit)-", p.name))
    tail = "\n".join(r.stderr.splitlines()[-60:])
    assert r.returncode == 0 and not found, f"fuzz-{target} failed ({r.returncode}), artifacts {found}:\n{tail}"
    assert re.search(r"^Done \d+ runs", r.stderr, re.M), tail
    runs = int(re.search(r"stat::number_of_executed_units: (\d+)", r.stderr).group(1))
    assert runs > (1000 if SECONDS else RUNS - 1), f"fuzz-{target} ran only {runs} inputs:\n{tail}"


@pytest.mark.parametrize("target", TARGETS)
def test_seed_corpus_replays(fuzzers, target, tmp_path):
    """Every committed seed (and regression input) runs clean, one by one."""
    seeds = os.path.join(FUZZ, "corpus", target)
    files = sorted(os.path.join(seeds, f) for f in os.listdir(seeds))
    r = run_fuzzer(os.path.join(fuzzers, f"fuzz-{target}"), files, tmp_path)
    assert r.returncode == 0, r.stderr[-4000:]
    assert r.stderr.count("Executed ") == len(files), r.stderr[-4000:]
