#!/usr/bin/python3 -B
# SPDX-License-Identifier: Apache-2.0
"""Returns the verdict named by the file `verdict` in the scratch dir, else by the user
name "v-<verdict>" (e.g. v-lockedOut). A number instead of a name is sent as that raw byte."""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import fakeproto as p

fields = p.read_request()
choice = None
d = p.scratch_dir(fields)
if d and os.path.exists(os.path.join(d, "verdict")):
    choice = open(os.path.join(d, "verdict")).read().strip()
elif fields.get("user", "").startswith("v-"):
    choice = fields["user"][2:]
if choice is None:
    sys.exit(2)
p.result(int(choice) if choice.isdigit() else choice)
