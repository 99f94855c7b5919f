#!/usr/bin/python3 -B
# SPDX-License-Identifier: Apache-2.0
"""Breaks the protocol in the way the user name says:
garbage, unknown-type, oversize, truncated-header, truncated-payload, eof, request-frame,
answer-frame, data-frame, bad-result-length."""
import os, struct, sys
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import fakeproto as p

fields = p.read_request()
case = fields.get("user", "")
if case == "garbage":
    p.write_raw(b"HELLO, this is not a frame at all\n")
elif case == "unknown-type":
    p.send(0x7A, b"x")
elif case == "oversize":
    p.write_raw(bytes([p.INFO]) + struct.pack(">I", 0x7FFFFFFF))
elif case == "truncated-header":
    p.write_raw(bytes([p.INFO, 0, 0]))
elif case == "truncated-payload":
    p.write_raw(bytes([p.INFO]) + struct.pack(">I", 100) + b"only a little")
elif case == "eof":
    pass
elif case == "request-frame":
    p.send(p.REQUEST, b"user\0root\0")
elif case == "answer-frame":
    p.send(p.ANSWER, b"123456")
elif case == "data-frame":
    p.send(p.DATA, b"k\0v\0")
elif case == "bad-result-length":
    p.send(p.RESULT, b"\0\0")
else:
    sys.exit(2)
sys.stdout.flush()
os._exit(0)
