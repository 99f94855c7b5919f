# SPDX-License-Identifier: Apache-2.0
"""`make demo`, the README's first command, driven like a newcomer with a phone: read the
key off the screen, type the app's code, then a new one at the login prompt."""
import os
import subprocess
import tempfile
import time

from conftest import ROOT, oathtool, read_setup_screen


def test_make_demo_enrols_and_logs_in():
    demo_dir = tempfile.mkdtemp(prefix="twostep-demo-")
    env = dict(os.environ, DEMO_DIR=demo_dir)
    p = subprocess.Popen(["make", "-s", "demo"], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, env=env)
    try:
        screen, key = read_setup_screen(p.stdout)
        # This step's code confirms the enrolment; the next step's code logs in.
        now = int(time.time())
        answers = oathtool(key, at=now) + "\n" + oathtool(key, at=now + 30) + "\n"
        out, _ = p.communicate(answers, timeout=300)
    finally:
        if p.poll() is None:
            p.kill()
    text = "\n".join(screen) + out
    assert p.returncode == 0, text
    assert "Verification code: " in text
    assert "demo accepted by service twostep-demo" in text
    assert '"event":"verify"' in text and '"result":"success"' in text
    subprocess.run(["rm", "-rf", demo_dir])
