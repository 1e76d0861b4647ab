#!/bin/sh
# The whole test suite: formatting, lints, unit and integration tests
# (including the libtorrent end-to-end transfer and WebTorrent clients
# meeting over WebRTC), then the packaging proofs.
# As root it first installs the Debian tools the tests need.
set -eu
cd "$(dirname "$0")/.."

if [ "$(id -u)" -eq 0 ]; then
    missing=""
    /usr/bin/python3 -c 'import libtorrent' 2>/dev/null || missing="$missing python3-libtorrent"
    /usr/bin/python3 -c 'import yaml' 2>/dev/null || missing="$missing python3-yaml"
    command -v systemd-socket-activate >/dev/null 2>&1 || missing="$missing systemd"
    command -v nft >/dev/null 2>&1 || missing="$missing nftables"
    command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
    command -v node >/dev/null 2>&1 || missing="$missing nodejs"
    command -v npm >/dev/null 2>&1 || missing="$missing npm"
    if [ -n "$missing" ]; then
        echo "== installing:$missing"
        apt-get update -qq
        # shellcheck disable=SC2086 # word splitting of the package list is wanted
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    fi
else
    echo "== not root: root-only tests will report SKIPPED, packaging proofs are skipped"
fi

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked

if [ -x packaging/test.sh ]; then
    echo "== packaging/test.sh all"
    packaging/test.sh all
fi
