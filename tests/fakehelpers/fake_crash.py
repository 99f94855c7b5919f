#!/usr/bin/python3 -B
# SPDX-License-Identifier: Apache-2.0
"""Prompts for a code, then dies without a result. It first shuts down its reading side, so
the module's answer meets a dead peer (EPIPE): proof the host gets no SIGPIPE."""
import os, socket, sys, time
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import fakeproto as p

p.read_request()
sock = socket.socket(fileno=os.dup(0))
sock.shutdown(socket.SHUT_RD)
p.send(p.PROMPT_ECHO_OFF, "Verification code: ")
time.sleep(0.3)
os._exit(1)
