#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# bench/scale.sh: `make bench-scale`: twostep with many users. Builds a store of
# BENCH_SCALE_USERS users (default 100,000) with `twostep admin import --batch` and prints,
# in one run:
#   - the import rate (users a second);
#   - the cost of one login in a store of only the login users versus in the big store,
#     side by side in one bench/pam_bench run (median, p99, ratio), through the default
#     path (a running `twostep-helper serve` per store, on a private socket) and through
#     the spawn fallback (twostep-verify);
#   - how long `admin list --json` and `admin report --json` take on the big store;
#   - the `admin rotate-key` rate (records re-sealed a second).
# See bench/README.md ("make bench-scale").
#
# Environment:
#   BENCH_SCALE_USERS  users in the big store (default 100000; CI's smoke run: 2000)
#   ROUNDS             timed logins per store (default 100)
#   WARMUP             discarded warm-up logins per store (default 5)
#   BENCH_SEED         the login rows' shuffle seed (default: a new one, printed)
#   BENCH_TMPDIR       where the stores are created (default /var/tmp, on disk like /var/lib)
#   BUILD              directory holding the built binaries (default build/ next to bench/)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
BUILD=${BUILD:-$root/build}
USERS=${BENCH_SCALE_USERS:-100000}
ROUNDS=${ROUNDS:-100}
WARMUP=${WARMUP:-5}
SECRET=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP

for v in "$USERS" "$ROUNDS" "$WARMUP"; do
    case $v in ''|*[!0-9]*) echo "bench-scale: BENCH_SCALE_USERS, ROUNDS and WARMUP must be integers" >&2; exit 64;; esac
done
logins=$((ROUNDS + WARMUP + 1))
[ "$ROUNDS" -ge 1 ] && [ "$USERS" -ge $((2 * logins)) ] || {
    echo "bench-scale: need ROUNDS >= 1 and BENCH_SCALE_USERS >= 2 * (ROUNDS + WARMUP + 1)" >&2; exit 64; }
for f in pam_twostep.so twostep twostep-helper twostep-verify; do
    [ -x "$BUILD/$f" ] || { echo "bench-scale: $BUILD/$f is missing; run make first" >&2; exit 1; }
done

D=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/twostep-scale.XXXXXX")
stop_servers() {
    for f in "$D"/*.pid; do
        [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
    done
}
trap 'stop_servers; rm -rf "$D"' EXIT
trap 'exit 130' INT TERM HUP

now() { date +%s.%N; }
elapsed() { echo "$1 $(now)" | awk '{printf "%.2f", $2 - $1}'; }
rate() { echo "$1 $2" | awk '{printf "%d", ($2 > 0) ? $1 / $2 : 0}'; }

cc -O2 -Wall -o "$BUILD/pam_bench" "$here/pam_bench.c" -lpam -lcrypto -lm

store() {  # NAME: a config and an initialised store under $D/NAME
    mkdir -p "$D/$1"
    printf 'state_dir = %s\nkey_dir = %s\n' "$D/$1/state" "$D/$1/keys" > "$D/$1/twostep.conf"
    "$BUILD/twostep" admin init --config "$D/$1/twostep.conf" >/dev/null
}
store small
store big

# JSON lines: for each PREFIX, PREFIX0.. (timed), PREFIXwarm0.., PREFIXrss with the bench's
# secret (pam_bench computes their codes), then FILL more users with random secrets. A time
# step passes once per user, so each row of logins has its own users.
lines() {  # PREFIXES FILL
    python3 - "$1" "$2" "$ROUNDS" "$WARMUP" "$SECRET" <<'EOF'
import base64, json, os, sys
prefixes, fill, rounds, warmup, secret = sys.argv[1].split(), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
out = sys.stdout
names = [n for prefix in prefixes for n in
         [f"{prefix}{i}" for i in range(rounds)] + [f"{prefix}warm{i}" for i in range(warmup)] + [prefix + "rss"]]
for n in names:
    out.write(json.dumps({"user": n, "secret": secret}) + "\n")
for i in range(fill):
    out.write(json.dumps({"user": f"fill{i:06d}", "secret": base64.b32encode(os.urandom(20)).decode()}) + "\n")
EOF
}
lines "sml smv" 0 > "$D/small.jsonl"
lines "big bgv" $((USERS - 2 * logins)) > "$D/big.jsonl"
"$BUILD/twostep" admin import --batch "$D/small.jsonl" --config "$D/small/twostep.conf" >/dev/null

echo "bench-scale: $(nproc) CPU(s), load average $(cut -d' ' -f1-3 /proc/loadavg), stores on $(stat -f -c %T "$D")"
echo "bench-scale: importing $USERS users (admin import --batch)"
t=$(now)
"$BUILD/twostep" admin import --batch "$D/big.jsonl" --config "$D/big/twostep.conf" >/dev/null
s=$(elapsed "$t")
import_rate=$(rate "$USERS" "$s")
rm -f "$D/big.jsonl" "$D/small.jsonl"

# The default path: a running helper per store on a private socket (helper= names nothing,
# so a login that did not go through the server fails its round instead of silently
# measuring the spawn path). The spawn fallback: twostep-verify, socket=none.
mkdir "$D/pam.d"
echo "auth required pam_permit.so" > "$D/pam.d/bench-baseline"   # pam_bench faults libpam in with it
for n in small big; do
    echo "auth required $BUILD/pam_twostep.so helper=$D/no-such-helper config=$D/$n/twostep.conf socket=$D/$n.sock" \
        > "$D/pam.d/scale-$n"
    echo "auth required $BUILD/pam_twostep.so helper=$BUILD/twostep-verify config=$D/$n/twostep.conf socket=none" \
        > "$D/pam.d/scale-$n-spawn"
done
# The login users as accounts, as a real login's user is: the running helpers and pam_bench
# run in a private mount namespace where a copy of /etc/passwd that also lists every row's
# users (the default path's first, as in run.sh) is bind-mounted over it. Otherwise each
# default-path login would pay a lookup that misses every NSS source, and twostep-verify
# would hand every spawned login to twostep-helper (it finishes a login itself only for a
# user /etc/passwd answers for: docs/ARCHITECTURE.md). The big store's other users are
# records only; no login is made for them. Without root or unshare(1), the rows measure that.
accounts=0
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
    cp /etc/passwd "$D/passwd"
    for prefix in sml big smv bgv; do
        i=0; while [ $i -lt "$ROUNDS" ]; do echo "$prefix$i"; i=$((i + 1)); done
        i=0; while [ $i -lt "$WARMUP" ]; do echo "${prefix}warm$i"; i=$((i + 1)); done
        echo "${prefix}rss"
    done | awk '{printf "%s:x:%d:65534:twostep bench:/nonexistent:/usr/sbin/nologin\n", $1, 3950000 + NR}' >> "$D/passwd"
    chmod 0644 "$D/passwd"
    accounts=1
else
    echo "bench-scale: NOTE: not root or no unshare(1): the login users are not accounts; each login"
    echo "bench-scale:   pays an NSS miss, and twostep-verify hands spawned logins to twostep-helper"
fi
echo "bench-scale: logins: $ROUNDS timed rounds per store and path (+$WARMUP warm-up), interleaved"
in_accounts() {
    if [ $accounts = 1 ]; then
        unshare --mount --propagation private sh -eu -c 'mount --bind "$1" /etc/passwd; shift; exec "$@"' sh "$D/passwd" "$@"
    else
        "$@"
    fi
}
# SERVE (run as `sh -eu -c "$SERVE" sh BUILD DIR CMD...`, inside in_accounts): a running
# helper per store, CMD while they listen, then stop them. The EXIT trap's stop_servers
# stops any this did not get to.
SERVE='
    build=$1 d=$2; shift 2
    for n in small big; do
        "$build/twostep-helper" serve --config "$d/$n/twostep.conf" --socket "$d/$n.sock" 2>"$d/$n.err" &
        echo $! > "$d/$n.pid"
    done
    for n in small big; do
        i=0
        while [ ! -S "$d/$n.sock" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
        [ -S "$d/$n.sock" ] || {
            echo "bench-scale: twostep-helper serve did not start: $(cat "$d/$n.err")" >&2
            kill "$(cat "$d/small.pid")" "$(cat "$d/big.pid")" 2>/dev/null || true
            exit 70
        }
    done
    set +e
    "$@"
    rc=$?
    kill "$(cat "$d/small.pid")" "$(cat "$d/big.pid")" 2>/dev/null
    wait
    rm -f "$d/small.pid" "$d/big.pid"
    exit $rc
'
in_accounts sh -eu -c "$SERVE" sh "$BUILD" "$D" "$BUILD/pam_bench" --confdir "$D/pam.d" --secret "$SECRET" \
    --rounds "$ROUNDS" --warmup "$WARMUP" ${BENCH_SEED:+--seed "$BENCH_SEED"} --json "$D/logins.json" \
    --module "small store:scale-small:sml" --module "big store:scale-big:big" \
    --module "small store, spawn fallback:scale-small-spawn:smv" --module "big store, spawn fallback:scale-big-spawn:bgv" \
    --ratio "big store:small store" --ratio "big store, spawn fallback:small store, spawn fallback" \
    --meta "small_store_users=$((2 * logins))" --meta "big_store_users=$USERS" >/dev/null

t=$(now)
"$BUILD/twostep" admin list --json --config "$D/big/twostep.conf" >/dev/null
list_s=$(elapsed "$t")
t=$(now)
"$BUILD/twostep" admin report --json --config "$D/big/twostep.conf" >/dev/null
report_s=$(elapsed "$t")
t=$(now)
"$BUILD/twostep" admin rotate-key --config "$D/big/twostep.conf" >/dev/null
s=$(elapsed "$t")
rotate_rate=$(rate "$USERS" "$s")

python3 - "$D/logins.json" "$USERS" "$((2 * logins))" "$import_rate" "$list_s" "$report_s" "$rotate_rate" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
users, small, import_rate, list_s, report_s, rotate_rate = sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7])
e = {x["label"]: x for x in j["entries"]}
def verdict(ok): return "MET" if ok else "NOT MET"
print(f"bench-scale: import --batch:      {import_rate:8d} users/s                     -> TARGET >= 2000 {verdict(import_rate >= 2000)}")
for suffix, tag in (("", "login"), (", spawn fallback", "spawned login")):
    s, b = e["small store" + suffix], e["big store" + suffix]
    ratio = b["median_ms"] / s["median_ms"]
    print(f"bench-scale: {tag}, {small:>6} users: median {s['median_ms']:8.3f} ms  p99 {s['p99_ms']:8.3f} ms")
    print(f"bench-scale: {tag}, {users:>6} users: median {b['median_ms']:8.3f} ms  p99 {b['p99_ms']:8.3f} ms")
    print(f"bench-scale: {tag} ratio big/small: median {ratio:.3f}, p99 {b['p99_ms'] / s['p99_ms']:.3f}        -> TARGET <= 1.1 {verdict(ratio <= 1.1)}")
print(f"bench-scale: admin list --json:   {list_s:8.2f} s                           -> TARGET < 5 s {verdict(list_s < 5)}")
print(f"bench-scale: admin report --json: {report_s:8.2f} s                           -> TARGET < 5 s {verdict(report_s < 5)}")
print(f"bench-scale: admin rotate-key:    {rotate_rate:8d} records/s (whole command)   -> TARGET >= 5000 {verdict(rotate_rate >= 5000)}")
EOF
