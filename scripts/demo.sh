#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# make demo: enrols a demo user in a scratch folder and runs a real PAM login through
# pam_twostep.so. Nothing under /etc changes. DEMO_DIR overrides the folder.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build="$top/build"
dir=${DEMO_DIR:-$top/demo-state}
user=${DEMO_USER:-demo}

rm -rf "$dir"
mkdir -p "$dir/pam.d"
chmod 0755 "$dir"
cat > "$dir/twostep.conf" <<CONF
# The demo's private config: state and keys live in $dir.
state_dir = $dir/state
key_dir = $dir/keys
audit_log = $dir/audit.jsonl
issuer = twostep-demo
CONF
chmod 0644 "$dir/twostep.conf"
cat > "$dir/pam.d/twostep-demo" <<PAM
# A one-line PAM stack: only the second factor (a real system would put it after
# pam_unix or publickey). Read by \`twostep try --pam-dir\`, not from /etc/pam.d.
# socket=none: this login spawns the demo's own helper with the demo's config, even on a
# host where an installed twostep-helperd answers /run/twostep/verify.sock (with its own).
auth    required  $build/pam_twostep.so helper=$build/twostep-helper config=$dir/twostep.conf socket=none
account required  pam_permit.so
PAM

echo "== twostep demo: everything lives in $dir"
"$build/twostep" admin init --config "$dir/twostep.conf"
echo
"$build/twostep" enroll --user "$user" --config "$dir/twostep.conf"
echo
echo "== Now a real login: libpam loads pam_twostep.so, which asks twostep-helper to check your code."
echo "   Codes are single-use: wait until your app shows a NEW code, then type it."
echo
"$build/twostep" try --service twostep-demo --pam-dir "$dir/pam.d" --user "$user"
echo
echo "== The audit log ($dir/audit.jsonl):"
cat "$dir/audit.jsonl"
echo
echo "Try again with: $build/twostep try --service twostep-demo --pam-dir $dir/pam.d --user $user"
echo "(a reused or wrong code is refused). Remove the demo with: rm -rf $dir"
