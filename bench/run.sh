#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# bench/run.sh: the cost of one login through pam_twostep vs pam_google_authenticator,
# side by side in one harness run. `make bench` runs it after building build/.
# pam_twostep is measured by its default path (asking a running `twostep-helper serve`,
# started here on a private socket and stopped on exit: the module's default socket= is
# /run/twostep/verify.sock, the same code with another path), its spawn fallback (the lean
# twostep-verify, socket=none), and spawning the full twostep-helper; and, when Debian's
# postgresql-15 is installed, the default path again with `store = postgresql` on a scratch
# local server (tests/pgserver.py: TLS, SCRAM, started here, removed on exit). A burst of
# BURST logins of different users at once compares throughput with google's.
# See bench/README.md for how to read the output.
#
# Environment:
#   ROUNDS        timed logins per module (default 300)
#   WARMUP        discarded warm-up logins per module (default 5)
#   BENCH_SEED    the rows' shuffle seed (default: a new one, printed; repeats an order)
#   BENCH_TMPDIR  where the state directories are created (default /var/tmp, which like
#                 /var/lib is normally on disk; fsync cost depends on the filesystem)
#   BUILD         directory holding the built binaries (default build/ next to bench/)
#   BURST         logins at once in the burst rows (default 64); BURST_ROUNDS (default 3)
#   BENCH_POSTGRES=0
#                 skip the PostgreSQL row (default: measured when postgresql-15 is installed)
#   BENCH_ACCOUNTS=0
#                 do not list the bench's users in /etc/passwd (default: listed, in a private
#                 mount namespace only; see "the bench's users as accounts" below)
#   BENCH_SYSLOG_SINK=1
#                 when the host has no /dev/log (no syslog daemon, as in containers and CI VMs),
#                 run the harness in a private mount namespace whose /dev has a /dev/log
#                 socket drained by a tiny sink, as journald/rsyslog would. Without it, libpam's
#                 pam_syslog (used by pam_google_authenticator) falls back to writing
#                 /dev/console, which on a serial console costs milliseconds per login, while
#                 twostep-helper's syslog() silently drops the message: neither is what a real
#                 host does. Nothing outside the namespace is changed.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
BUILD=${BUILD:-$root/build}
ROUNDS=${ROUNDS:-300}
WARMUP=${WARMUP:-5}
SECRET=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP
GA_MODULE=${GA_MODULE:-pam_google_authenticator.so}
GA_OPTIONS='TOTP_AUTH DISALLOW_REUSE'

case $ROUNDS in ''|*[!0-9]*) echo "bench: ROUNDS must be a positive integer" >&2; exit 64;; esac
case $WARMUP in ''|*[!0-9]*) echo "bench: WARMUP must be a non-negative integer" >&2; exit 64;; esac
[ "$ROUNDS" -ge 1 ] || { echo "bench: ROUNDS must be >= 1" >&2; exit 64; }

BURST=${BURST:-64}
BURST_ROUNDS=${BURST_ROUNDS:-3}
case $BURST$BURST_ROUNDS in *[!0-9]*) echo "bench: BURST and BURST_ROUNDS must be numbers" >&2; exit 64;; esac

for f in pam_twostep.so twostep twostep-helper twostep-verify; do
    [ -x "$BUILD/$f" ] || { echo "bench: $BUILD/$f is missing; run make first" >&2; exit 1; }
done
multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
ga_path=
for d in /lib/$multiarch/security /usr/lib/$multiarch/security /lib/security /usr/lib/security; do
    [ -e "$d/$GA_MODULE" ] && { ga_path=$d/$GA_MODULE; break; }
done
[ -n "$ga_path" ] || {
    echo "bench: $GA_MODULE not found; apt-get install libpam-google-authenticator" >&2; exit 1; }

D=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/twostep-bench.XXXXXX")
OLDDEV=
cleanup() {
    # the helper server, if the harness wrapper did not get to stop it
    if [ -s "$D/server.pid" ]; then kill "$(cat "$D/server.pid")" 2>/dev/null || true; fi
    if [ -s "$D/pgrun/server.pid" ]; then kill "$(cat "$D/pgrun/server.pid")" 2>/dev/null || true; fi
    if [ -d "$D/pg" ]; then python3 "$root/tests/pgserver.py" stop "$D/pg" || true; fi
    rm -rf "$D"
    # only ever an empty mount point (the bind mount lived in the private namespace)
    [ -z "$OLDDEV" ] || rmdir "$OLDDEV" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

echo "bench: compiling harness and trivial static binary into $BUILD"
cc -O2 -Wall -o "$BUILD/pam_bench" "$here/pam_bench.c" -lpam -lcrypto -lm
cc -O2 -static -o "$BUILD/trivial" "$here/trivial.c"

# --- twostep store ---------------------------------------------------------------------
cat > "$D/twostep.conf" <<EOF
state_dir = $D/state
key_dir = $D/keys
EOF
"$BUILD/twostep" admin init --config "$D/twostep.conf" >/dev/null

users() {  # PREFIX: the timed, warm-up and memory-round users
    i=0; while [ $i -lt "$ROUNDS" ]; do echo "$1$i"; i=$((i + 1)); done
    i=0; while [ $i -lt "$WARMUP" ]; do echo "${1}warm$i"; i=$((i + 1)); done
    echo "${1}rss"
}

burst_users() {  # PREFIX: USERPREFIX<round>_<i>, as pam_bench's --burst names them
    r=0; while [ $r -lt "$BURST_ROUNDS" ]; do
        i=0; while [ $i -lt "$BURST" ]; do echo "$1${r}_$i"; i=$((i + 1)); done
        r=$((r + 1))
    done
}

# sobench*: the default path (the running helper); lvbench*: the spawn fallback
# (twostep-verify); tsbench*: spawning the full twostep-helper; soburst*: the burst through
# the default path. A time step is accepted once per user, so every login needs its own user.
PG=0
if [ "${BENCH_POSTGRES:-1}" = 1 ] && [ -x /usr/lib/postgresql/15/bin/initdb ]; then PG=1; fi
n=$(((3 + PG) * (ROUNDS + WARMUP + 1) + BURST * BURST_ROUNDS))
echo "bench: enrolling $n twostep users (not timed in the benchmark)"
t0=$(date +%s.%N)
{ users tsbench; users sobench; users lvbench; burst_users soburst; [ $PG = 0 ] || users pgbench; } | while read -r u; do
    # The bench's users are no accounts of the host: each import warns so on stderr, which
    # is kept for a failure only. (Not --batch: that writes no state file, and the timed
    # logins are to rewrite an existing one in place, as every login after a user's first.)
    echo "$SECRET" | "$BUILD/twostep" admin import "$u" --secret - --config "$D/twostep.conf" >/dev/null 2>"$D/import.err" ||
        { cat "$D/import.err" >&2; exit 1; }
done
t1=$(date +%s.%N)
enrol_s=$(echo "$t0 $t1" | awk '{printf "%.2f", $2 - $1}')
enrol_ms=$(echo "$t0 $t1 $n" | awk '{printf "%.2f", ($2 - $1) * 1000 / $3}')
echo "bench: enrolment of $n users took ${enrol_s} s (${enrol_ms} ms per admin import)"

# --- the same records in PostgreSQL (store = postgresql, socket=) -------------------------
if [ $PG = 1 ]; then
    chmod 0711 "$D"   # the postgres user reaches its data directory under $D/pg
    echo "bench: starting a scratch PostgreSQL 15 (TLS, SCRAM) in $D/pg"
    pginfo=$(python3 "$root/tests/pgserver.py" start "$D/pg")
    pguri=$(echo "$pginfo" | sed -n 1p)
    pgpass=$(echo "$pginfo" | sed -n 2p)
    { cat "$D/twostep.conf"; echo "store = postgresql"; echo "database = $pguri";
      echo "database_password_file = $pgpass"; } > "$D/twostep-pg.conf"
    "$BUILD/twostep" admin db init --config "$D/twostep-pg.conf" >/dev/null
    # admin migrate copies the file store's records into the database byte for byte.
    "$BUILD/twostep" admin migrate --to postgresql --config "$D/twostep.conf" \
        --database "$pguri" --database-password-file "$pgpass"
    mkdir -m 0700 "$D/pgrun"
fi

# --- google-authenticator secret files (one per user, same secret, root-owned 0600) ----
mkdir -m 0700 "$D/ga"
{ users gabench; burst_users gaburst; } | while read -r u; do
    ( umask 077; printf '%s\n" TOTP_AUTH\n" DISALLOW_REUSE\n' "$SECRET" > "$D/ga/$u" )
done

# --- PAM services -----------------------------------------------------------------------
mkdir "$D/pam.d"
echo "auth required pam_permit.so" > "$D/pam.d/bench-baseline"
echo "auth required $BUILD/pam_twostep.so helper=$BUILD/twostep-helper config=$D/twostep.conf socket=none" \
    > "$D/pam.d/bench-twostep"
echo "auth required $BUILD/pam_twostep.so helper=$BUILD/twostep-verify config=$D/twostep.conf socket=none" \
    > "$D/pam.d/bench-twostep-lean"
# socket=: helper= names nothing, so a login that did not go through the server fails its
# round (and aborts the run) instead of silently measuring the spawn path.
SOCK=$D/helper.sock
echo "auth required $BUILD/pam_twostep.so helper=$D/no-such-helper config=$D/twostep.conf socket=$SOCK" \
    > "$D/pam.d/bench-twostep-socket"
echo "auth required $ga_path secret=$D/ga/\${USER} user=root" > "$D/pam.d/bench-google"
PGSOCK=$D/pgrun/helper.sock
echo "auth required $BUILD/pam_twostep.so helper=$D/no-such-helper config=$D/twostep-pg.conf socket=$PGSOCK" \
    > "$D/pam.d/bench-twostep-pg"

fstype=$(stat -f -c %T "$D/state")
ga_fstype=$(stat -f -c %T "$D/ga")
echo "bench: twostep state_dir $D/state is on filesystem type: $fstype"
echo "bench: google-authenticator secret files are on filesystem type: $ga_fstype"
echo "bench: google-authenticator options: module args 'secret=$D/ga/\${USER} user=root', file options: $GA_OPTIONS"
syslog_mode="host /dev/log"
if [ ! -S /dev/log ]; then
    if [ "${BENCH_SYSLOG_SINK:-0}" = 1 ]; then
        command -v unshare >/dev/null && command -v python3 >/dev/null || {
            echo "bench: BENCH_SYSLOG_SINK=1 needs unshare and python3" >&2; exit 1; }
        # not under BENCH_TMPDIR: that may be below /dev (e.g. /dev/shm), which the namespace hides
        OLDDEV=$(mktemp -d /var/tmp/twostep-bench-dev.XXXXXX)
        syslog_mode="sink on /dev/log in a private mount namespace"
    else
        syslog_mode="none: no /dev/log; pam_syslog falls back to /dev/console"
        echo "bench: NOTE: this host has no /dev/log. libpam's pam_syslog (used by"
        echo "bench:   pam_google_authenticator) then writes each log line to /dev/console"
        echo "bench:   ($(head -c 200 /proc/consoles 2>/dev/null | awk 'NR==1{print $1}')), which a real host does not do; twostep-helper's"
        echo "bench:   syslog() drops it. Rerun with BENCH_SYSLOG_SINK=1 for a syslog-daemon-like setup."
    fi
fi
# --- the bench's users as accounts (BENCH_ACCOUNTS, default 1) ---------------------------
# A real login is for an account NSS knows; the bench's few hundred users are not in the
# host's /etc/passwd. twostep looks every login's user up (the store is keyed by NSS's
# canonical name), and a name no source has walks every source of nsswitch.conf
# (libnss_systemd probes six userdb directories: about 0.2 ms against 0.02 ms for a name
# in /etc/passwd). The harness therefore runs where a copy of /etc/passwd that also lists
# the bench's users (uids from 3900001, nologin) is bind-mounted over /etc/passwd, in a
# private mount namespace: nothing outside it changes. google's module, given user=root and
# a secret path, looks no user up either way.
# NSS's files source reads /etc/passwd line by line, so a lookup costs more the further down
# its name is (here about 0.11 us a line: 0.03 ms at line 136, 0.19 ms at line 1,591),
# while a real host has a few dozen lines. Each login needs a user of its own (a time step
# passes once per user), so the bench adds hundreds; they are listed in the order the
# targets are judged: the default path's, the burst's, PostgreSQL's, then the spawn rows'.
accounts_mode=none
if [ "${BENCH_ACCOUNTS:-1}" = 1 ]; then
    if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
        cp /etc/passwd "$D/passwd"
        { users sobench; burst_users soburst; [ $PG = 0 ] || users pgbench; users lvbench; users tsbench;
          users gabench; burst_users gaburst; } |
            awk '{printf "%s:x:%d:65534:twostep bench:/nonexistent:/usr/sbin/nologin\n", $1, 3900000 + NR}' \
            >> "$D/passwd"
        chmod 0644 "$D/passwd"
        passwd_made=$(date +%s)
        accounts_mode=namespace
    else
        echo "bench: NOTE: not root or no unshare(1): the bench's users are not accounts, and every"
        echo "bench:   twostep login pays a lookup that misses every NSS source"
    fi
fi
echo "bench: accounts: $([ $accounts_mode = namespace ] && echo "bench users listed in /etc/passwd of a private mount namespace after its $(wc -l < /etc/passwd) lines, the default path's first" || echo "bench users unknown to NSS")"
echo "bench: syslog: $syslog_mode"
echo "bench: $(nproc) CPU(s), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "bench: $ROUNDS timed rounds per entry (+$WARMUP warm-up), each entry in its own forked child, interleaved round by round"
echo

# SINK: a script (run as `sh -eu -c "$SINK" sh OLDDEV CMD...` inside a private mount
# namespace) that runs CMD with a /dev that is a tmpfs of symlinks to the real /dev plus a
# /dev/log datagram socket drained by a sink (see BENCH_SYSLOG_SINK above).
SINK='
        olddev=$1; shift
        mount --rbind /dev "$olddev"
        mount -t tmpfs -o mode=0755,size=64k twostep-bench-dev /dev
        for f in "$olddev"/* "$olddev"/.[!.]*; do
            [ -e "$f" ] || [ -L "$f" ] || continue
            ln -s "$f" "/dev/${f##*/}"
        done
        python3 -c "
import os, signal, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(\"/dev/log\")
n = 0
def done(*_):
    sys.stderr.write(\"bench: syslog sink received %d message(s)\\n\" % n); sys.exit(0)
signal.signal(signal.SIGTERM, done)
os.write(1, b\"ready\\n\")
while True:
    s.recv(65536); n += 1
" > "$olddev.ready" &
        sink=$!
        i=0
        while [ ! -s "$olddev.ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
        rm -f "$olddev.ready"
        [ -S /dev/log ] || { echo "bench: syslog sink did not start" >&2; kill $sink; exit 70; }
        set +e
        "$@"
        rc=$?
        kill $sink; wait $sink
        exit $rc
'
# Runs "$@" inside what the run needs: the bench's users listed in /etc/passwd (a private
# mount namespace where a copy of /etc/passwd with one line per bench user is bind-mounted
# over it; BENCH_ACCOUNTS), the syslog sink (BENCH_SYSLOG_SINK), both or neither.
run_harness() {
    if [ -n "$OLDDEV" ]; then
        set -- unshare --mount --propagation private sh -eu -c "$SINK" sh "$OLDDEV" "$@"
    fi
    if [ "$accounts_mode" = namespace ]; then
        set -- unshare --mount --propagation private sh -eu -c \
            'mount --bind "$1" /etc/passwd; shift; exec "$@"' sh "$D/passwd" "$@"
    fi
    "$@"
}
# SERVE: a script (run as `sh -eu -c "$SERVE" sh HELPER CONF SOCK DIR CMD...`) that runs CMD
# while `twostep-helper serve` listens on SOCK. It is handed to run_harness as the command,
# so the server starts inside whatever namespace run_harness sets up and logs where the
# spawned helpers log. The trap's cleanup stops the server if this never gets to.
SERVE='
    helper=$1 conf=$2 sock=$3 dir=$4; shift 4
    "$helper" serve --config "$conf" --socket "$sock" 2>"$dir/server.err" &
    echo $! > "$dir/server.pid"
    i=0
    while [ ! -S "$sock" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
    if [ ! -S "$sock" ]; then
        echo "bench: twostep-helper serve did not start: $(cat "$dir/server.err")" >&2
        kill "$(cat "$dir/server.pid")" 2>/dev/null || true
        exit 70
    fi
    set +e
    "$@"
    rc=$?
    kill "$(cat "$dir/server.pid")" 2>/dev/null
    wait
    rm -f "$dir/server.pid"
    exit $rc
'

set -- "$BUILD/pam_bench" --confdir "$D/pam.d" --secret "$SECRET" \
    --rounds "$ROUNDS" --warmup "$WARMUP" ${BENCH_SEED:+--seed "$BENCH_SEED"} --json "$BUILD/bench.json" \
    --module "pam_google_authenticator:bench-google:gabench" \
    --module "pam_twostep default (running helper):bench-twostep-socket:sobench" \
    --module "pam_twostep spawn fallback (twostep-verify):bench-twostep-lean:lvbench" \
    --module "pam_twostep spawn twostep-helper:bench-twostep:tsbench" \
    --spawn "trivial static spawn:$BUILD/trivial" \
    --spawn "twostep-verify --version spawn:$BUILD/twostep-verify:--version" \
    --spawn "twostep-helper --version spawn:$BUILD/twostep-helper:--version" \
    --ratio "pam_twostep default (running helper):pam_google_authenticator" \
    --ratio "pam_twostep spawn fallback (twostep-verify):pam_google_authenticator" \
    --ratio "pam_twostep spawn twostep-helper:pam_google_authenticator" \
    --overhead "pam_twostep spawn fallback (twostep-verify):trivial static spawn" \
    --burst "pam_google_authenticator x$BURST:bench-google:gaburst:$BURST" \
    --burst "pam_twostep default x$BURST:bench-twostep-socket:soburst:$BURST" \
    --burst-rounds "$BURST_ROUNDS" \
    --meta "pam_twostep_so_bytes=$(stat -c %s "$BUILD/pam_twostep.so")" \
    --meta "state_dir_fstype=$fstype" \
    --meta "syslog=$syslog_mode" \
    --meta "accounts=$accounts_mode" \
    --meta "google_secret_fstype=$ga_fstype" \
    --meta "google_module=$ga_path" \
    --meta "google_module_args=secret=\${USER}-file user=root" \
    --meta "google_file_options=$GA_OPTIONS" \
    --meta "twostep_enrol_ms_per_user=$enrol_ms" \
    --meta "twostep_socket_server=twostep-helper serve --socket $SOCK (pre-forked workers; each serves root's logins one after another)" \
    --meta "cpus=$(nproc)" \
    --meta "loadavg_at_start=$(cut -d' ' -f1-3 /proc/loadavg)" \
    --meta "kernel=$(uname -r)"
# With PostgreSQL: its row, and a second `twostep-helper serve` (store = postgresql) around
# the harness, inside the first one.
if [ $PG = 1 ]; then
    set -- "$@" --module "pam_twostep socket= postgresql:bench-twostep-pg:pgbench" \
        --ratio "pam_twostep socket= postgresql:pam_twostep default (running helper)" \
        --meta "postgresql=local PostgreSQL 15, TCP 127.0.0.1, TLS verify-full, SCRAM; one connection per pre-forked worker"
    set -- sh -eu -c "$SERVE" sh "$BUILD/twostep-helper" "$D/twostep-pg.conf" "$PGSOCK" "$D/pgrun" "$@"
fi
# The running helper answers from its index of /etc/passwd only once the file has been left
# alone for 2 s (PasswdFileCache.settleSeconds; NSS answers meanwhile), as /etc/passwd on a
# real host has been: the copy made above waits that out, or the default path's first
# seconds would measure glibc's NSS walk through the bench's hundreds of lines instead.
if [ "$accounts_mode" = namespace ]; then
    while [ $(($(date +%s) - passwd_made)) -lt 3 ]; do sleep 0.2; done
fi
set +e
run_harness sh -eu -c "$SERVE" sh "$BUILD/twostep-helper" "$D/twostep.conf" "$SOCK" "$D" "$@"
rc=$?
set -e
if [ $rc -ne 0 ]; then
    echo "bench: FAILED (pam_bench exit $rc); see the message above" >&2
    exit $rc
fi

echo
json_get() {  # crude reader of the JSON the harness wrote: FIELD (median_ms, p99_ms) of LABEL
    grep "\"label\": \"$1\"" "$BUILD/bench.json" | sed "s/.*\"$2\": \([0-9.]*\).*/\1/"
}
ga=$(json_get pam_google_authenticator median_ms)
ga99=$(json_get pam_google_authenticator p99_ms)
size=$(stat -c %s "$BUILD/pam_twostep.so")
stripped=$(strip --strip-unneeded -o "$D/pam_twostep.stripped.so" "$BUILD/pam_twostep.so" && stat -c %s "$D/pam_twostep.stripped.so")
rss=$(grep '"label": "pam_twostep default (running helper)"' "$BUILD/bench.json" | sed 's/.*"rss_added_kib": \([0-9-]*\).*/\1/')
garss=$(grep '"label": "pam_google_authenticator"' "$BUILD/bench.json" | sed 's/.*"rss_added_kib": \([0-9-]*\).*/\1/')
echo "bench: pam_twostep.so: $size bytes as built, $stripped stripped; adds $rss KiB to its host's RSS (google: $garss KiB)"
echo "bench: targets: default path <= google's median ($ga ms; p99 $ga99 ms); spawn fallback <= 2.5x google's"
for row in "pam_twostep default (running helper):1" "pam_twostep spawn fallback (twostep-verify):2.5" \
           "pam_twostep spawn twostep-helper:"; do
    label=${row%:*} limit=${row##*:}
    med=$(json_get "$label" median_ms)
    p99=$(json_get "$label" p99_ms)
    ratio=$(echo "$med $ga" | awk '{print $1 / $2}')
    verdict=
    [ -z "$limit" ] || verdict=$(echo "$ratio $limit" | awk '{print ($1 <= $2) ? "-> TARGET <= " $2 "x MET" : "-> TARGET <= " $2 "x NOT MET"}')
    printf 'bench:   %-44s median %8.3f ms  p99 %8.3f ms  ratio to google: median %.3f, p99 %.3f  %s\n' \
        "$label" "$med" "$p99" "$ratio" "$(echo "$p99 $ga99" | awk '{print $1 / $2}')" "$verdict"
done
burst_get() {  # FIELD of the burst LABEL
    grep "\"label\": \"$1\", \"logins_at_once\"" "$BUILD/bench.json" | sed "s/.*\"$2\": \([0-9.]*\).*/\1/"
}
gab=$(burst_get "pam_google_authenticator x$BURST" logins_per_s)
tsb=$(burst_get "pam_twostep default x$BURST" logins_per_s)
printf 'bench: %s logins of different users at once: google %s logins/s, pam_twostep default %s logins/s (%s) -> TARGET >= google %s\n' \
    "$BURST" "$gab" "$tsb" "$(echo "$tsb $gab" | awk '{printf "%.2fx", $1 / $2}')" \
    "$(echo "$tsb $gab" | awk '{print ($1 >= $2) ? "MET" : "NOT MET"}')"
if [ $PG = 1 ]; then
    pgmed=$(json_get "pam_twostep socket= postgresql" median_ms)
    pg99=$(json_get "pam_twostep socket= postgresql" p99_ms)
    fmed=$(json_get "pam_twostep default (running helper)" median_ms)
    ratio=$(echo "$pgmed $fmed" | awk '{printf "%.2f", $1 / $2}')
    verdict=$(echo "$ratio" | awk '{print ($1 <= 2) ? "MET" : "NOT MET"}')
    printf 'bench: store = postgresql (socket=): median %.3f ms  p99 %.3f ms  = %sx the file store (default path)  -> TARGET <= 2x %s\n' \
        "$pgmed" "$pg99" "$ratio" "$verdict"
fi
echo "bench: figures written to $BUILD/bench.json"
exit 0
