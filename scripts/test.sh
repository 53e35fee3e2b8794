#!/usr/bin/env bash
# The test command of the README: installs what the tests need on a fresh Debian machine (the
# kernel-oracle tests load real rules into network namespaces, so they need root and iptables,
# nftables, iproute2 and conntrack, clang for the eBPF oracle and bpftool), then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v iptables-restore >/dev/null 2>&1 || missing+=(iptables)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v conntrack >/dev/null 2>&1 || missing+=(conntrack)
# The eBPF oracle compiles its generated tc programs (crates/markspace/tests/bpf_oracle.rs).
command -v clang >/dev/null 2>&1 || missing+=(clang)
# collect reads live eBPF programs with bpftool (crates/markspace-cli/tests/bpf.rs).
command -v bpftool >/dev/null 2>&1 || missing+=(bpftool)
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
