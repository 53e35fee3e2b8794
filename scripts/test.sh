#!/usr/bin/env bash
# The test command of the README: installs what the tests need on a fresh Debian machine (the
# kernel-oracle tests load real rules into network namespaces, so they need root and iptables,
# nftables, iproute2 and conntrack; the eBPF oracle needs clang and bpftool, serve's test
# prometheus, the HTML tests chromium), then runs every test of the workspace, then checks the
# release build (scripts/release-check.sh).
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
# `serve`'s acceptance test scrapes the exporter with a real Prometheus (and queries it with
# promtool); the capability test of deploy/ runs the collector under setpriv (util-linux).
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v setpriv >/dev/null 2>&1 || missing+=(util-linux)
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

# deploy/*.yaml validated offline against the Kubernetes schemas the `kubernetes-validate`
# package (PyPI) bundles, in a virtual environment kept between runs.
venv=${MARKSPACE_VALIDATE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/markspace-validate}
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
    if ! python3 -m venv "$venv" 2>/dev/null; then
        if [ "$(id -u)" = 0 ]; then
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        fi
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install -q 'kubernetes-validate==1.37.0'
fi
"$venv/bin/python" scripts/validate-deploy.py deploy

# --show-output prints the case counts of the conformance and kernel-oracle tests.
cargo test --workspace -j2 -- --show-output

# The release build as `cargo install` makes it, for the portable (static) target: size,
# no glibc dependency, a run in an empty chroot, bash completion (one build for all).
if [ "$(id -u)" = 0 ]; then
    bash scripts/release-check.sh
else
    echo "warning: scripts/release-check.sh needs root (chroot); not run" >&2
fi
