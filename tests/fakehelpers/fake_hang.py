#!/usr/bin/python3 -B
# SPDX-License-Identifier: Apache-2.0
"""Reads the request, then never answers (and ignores SIGTERM and EOF)."""
import os, signal, sys, time
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import fakeproto as p

signal.signal(signal.SIGTERM, signal.SIG_IGN)
p.read_request()
while True:
    time.sleep(3600)
