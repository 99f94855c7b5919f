#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Installs the Debian packages twostep needs to build, test, demo or bench, when missing.
# Usage: scripts/deps.sh build|test|demo|bench
set -eu
build="libpam0g-dev libssl-dev libqrencode-dev libpng-dev libpq-dev zlib1g-dev pkg-config"
test="$build libpam-google-authenticator libpam-oath postgresql-15 openssl exim4-daemon-light file binutils man-db groff-base systemd oathtool zbar-tools pamtester openssh-server openssh-client python3 python3-pytest python3-pyotp expect valgrind sudo passwd strace systemd-container"
demo="$build"
bench="$build oathtool libpam-google-authenticator postgresql-15 openssl python3"
eval "want=\$${1:-build}"
missing=""
for p in $want; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "twostep: missing Debian packages:$missing" >&2
    echo "twostep: run as root, or: sudo apt-get install$missing" >&2
    exit 1
fi
echo "twostep: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
