#!/usr/bin/python3 -B
# SPDX-License-Identifier: Apache-2.0
"""Sends an info and an error message, then success."""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import fakeproto as p

p.read_request()
p.send(p.INFO, "Welcome to twostep")
p.send(p.ERROR, "This is only a test")
p.result("success")
