#!/usr/bin/env bash
# The test command of the README: installs what the tests need on a fresh Debian machine (the
# kernel-oracle tests load real rules into network namespaces, so they need root and iptables,
# nftables, iproute2 and conntrack; the HTML tests need chromium), then runs every test of the
# workspace, then checks the release build (scripts/release-check.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v iptables-restore >/dev/null 2>&1 || missing+=(iptables)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v conntrack >/dev/null 2>&1 || missing+=(conntrack)
# The HTML reports are rendered and screenshotted in headless Chromium (tests/pictures.rs);
# scripts/release-check.sh reads the release binary with readelf and objdump.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v objdump >/dev/null 2>&1 || missing+=(binutils)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "installing: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "warning: missing ${missing[*]}; the kernel-oracle tests need them and root" >&2
    fi
fi

# --show-output prints the case counts of the conformance and kernel-oracle tests.
cargo test --workspace -j2 -- --show-output

# The release build as `cargo install` makes it, for the portable (static) target: size,
# no glibc dependency, a run in an empty chroot, bash completion (one build for all).
if [ "$(id -u)" = 0 ]; then
    bash scripts/release-check.sh
else
    echo "warning: scripts/release-check.sh needs root (chroot); not run" >&2
fi
