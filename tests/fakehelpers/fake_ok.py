#!/usr/bin/python3 -B
# SPDX-License-Identifier: Apache-2.0
"""Accepts the code 123456: prompts "Verification code: ", answers success or failure.
Records the frame it got after the prompt (type, payload length) as reply.json."""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import fakeproto as p

fields = p.read_request()
p.send(p.PROMPT_ECHO_OFF, "Verification code: ")
frame = p.read_frame()
p.record(fields, "reply.json", None if frame is None else {"type": frame[0], "length": len(frame[1])})
if frame is None:
    sys.exit(2)
if frame[0] == p.CONVERSATION_FAILED:
    p.result("conversationError")
    sys.exit(0)
p.result("success" if frame == (p.ANSWER, b"123456") else "failure")
