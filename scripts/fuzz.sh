#!/usr/bin/env bash
# Runs every fuzz target (or the TARGETs named after SECONDS) for SECONDS each (default 120) and prints executions and time per
# target. cargo-fuzz needs nightly features: RUSTC_BOOTSTRAP=1 enables them on the stable
# toolchain. The shared conformance corpus, when present, is read (never copied) as an extra
# starting corpus. A crash stops the script with libFuzzer's report and the input in
# fuzz/artifacts/; minimise it (`cargo fuzz tmin`) and add it to fuzz/regressions/<target>/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-120}
shift || true
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
export RUSTC_BOOTSTRAP=1
shared=../../shared/corpus
targets=${*:-$(sed -n 's/^name = "\(.*\)"/\1/p' Cargo.toml | grep -v '^markspace-fuzz$')}
cargo fuzz build
printf '%-16s %12s %8s %s\n' target executions seconds result
for t in $targets; do
    mkdir -p "corpus/$t"
    extra=()
    [ -d "$shared/iptables" ] && [[ $t == iptables* || $t == audit ]] && extra+=("$shared/iptables")
    [ -d "$shared/formats" ] && [[ $t != iptables* ]] && extra+=("$shared/formats")
    [ -d "$shared/nftables/shell-dumps" ] && [[ $t == nft* || $t == audit ]] && extra+=("$shared/nftables/shell-dumps")
    log=$(mktemp)
    start=$(date +%s)
    if cargo fuzz run "$t" "corpus/$t" "seeds/$t" "${extra[@]}" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
        result=ok
    else
        result="FAILED (see $log)"
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    printf '%-16s %12s %8s %s\n' "$t" "${execs:-?}" "$(( $(date +%s) - start ))" "$result"
    [ "$result" = ok ] || { tail -40 "$log"; exit 1; }
done
