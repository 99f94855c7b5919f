#!/usr/bin/python3 -B
# SPDX-License-Identifier: Apache-2.0
"""Plays a helper for forward_pass: sends the combined prompt (code length after a NUL),
records everything it received (request fields, the answer's bytes, its argv and
environment) as forward.json, and accepts the code 123456."""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import fakeproto as p

fields = p.read_request()
p.send(p.PROMPT_ECHO_OFF, b"Password and verification code: \0digits=6")
frame = p.read_frame()
p.record(fields, "forward.json", {
    "request": fields,
    "answer": None if frame is None else frame[1].decode(errors="replace"),
    "argv": sys.argv,
    "environ": [e.decode(errors="replace") for e in open("/proc/self/environ", "rb").read().split(b"\0") if e],
})
if frame is None:
    sys.exit(2)
p.result("success" if frame == (p.ANSWER, b"123456") else "failure")
