#!/usr/bin/env bash
# Times `markspace audit` against the tools people use, on the same generated inputs, in one run.
#
#   bash scripts/bench.sh                 # sizes 10000 100000 230000 700000 (iptables-save lines)
#   SIZES="10000 100000" bash scripts/bench.sh
#   SIZES= COLLECT_SIZES=10000 bash scripts/bench.sh      # only the collection rows
#   MARKSPACE=/path/to/markspace bash scripts/bench.sh   # time another build
#
# For each size it generates a kube-proxy node (the `gen-node` example, from `markspace::generate`,
# the `generate` feature), then:
#   - markspace: `markspace audit --format json` (release build), the whole command;
#   - baseline: `iptables-restore --test` on the same file, inside a throwaway network namespace
#     (so it starts from an empty ruleset and touches nothing on the host);
#   - nftables: kube-proxy's nftables mode for the same services, `nft -c -f` in the namespace
#     against `markspace audit` on the text and on `nft -j list ruleset` JSON, for sizes up to
#     NFT_MAX_LINES (default 30000: `nft -c` itself takes about a minute on the 100k-line
#     node); skipped with a note while markspace does not read nftables input. A small nft
#     node is always checked with `nft -c -f`.
# Times come from hyperfine (installed with apt-get when missing and root), peak RSS from
# `/usr/bin/time -v`. It ends with a Markdown table for the README and the machine it ran on.
# Needs root (network namespaces), iptables and nftables.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES=${SIZES-"10000 100000 230000 700000"}
NFT_MAX_LINES=${NFT_MAX_LINES:-30000}
WORK=${WORK:-$(mktemp -d /tmp/markspace-bench.XXXXXX)}
mkdir -p "$WORK"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
NS=markspace-bench-$$

need() { command -v "$1" >/dev/null 2>&1; }
if ! need hyperfine || [ ! -x /usr/bin/time ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "installing hyperfine and time"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine time >/dev/null ||
            { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine time >/dev/null; }
    fi
fi
need hyperfine || { echo "bench.sh: hyperfine is required (apt-get install hyperfine)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench.sh: /usr/bin/time is required (apt-get install time)" >&2; exit 2; }
for tool in ip iptables-restore nft python3; do
    need "$tool" || { echo "bench.sh: $tool is required" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "bench.sh: run as root (network namespaces)" >&2; exit 2; }

echo "== building (release)"
# Two commands: with `--example`, cargo builds only that example of every package named, so one
# command would leave an old (or no) markspace binary to time; and the generator's `generate`
# feature (turned on by markspace's dev-dependency on itself) would be compiled into the timed
# binary's library. The timed binary is built exactly as a user builds it.
cargo build --release -j2 -q -p markspace-cli
cargo build --release -j2 -q -p markspace --example gen-node
# MARKSPACE=path times another markspace binary (an older release, another branch's build).
MS=${MARKSPACE:-$CARGO_TARGET_DIR/release/markspace}
GEN=$CARGO_TARGET_DIR/release/examples/gen-node

ip netns add "$NS"
trap 'ip netns delete "$NS" 2>/dev/null || true' EXIT
IN_NS=(ip netns exec "$NS")

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
RESULTS=$WORK/results.tsv
: >"$RESULTS"

# peak RSS in KiB of a command (its output discarded)
rss() { /usr/bin/time -f %M -o "$WORK/rss" "$@" >/dev/null 2>&1 || true; cat "$WORK/rss"; }
# the rule count of a markspace JSON report on stdin
rules_of() { python3 -c 'import json,sys; print(json.load(sys.stdin)["summary"]["rules"])'; }
# mean and stddev in seconds from a hyperfine JSON export
stats() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print(r["mean"], r["stddev"] or 0, len(r["times"]))' "$1"; }

# The generated nft text must load; whether markspace reads nft decides the nft rows.
"$GEN" nft --services 50 --endpoints 3 >"$WORK/probe.nft"
"${IN_NS[@]}" nft -c -f "$WORK/probe.nft" ||
    { echo "bench.sh: nft -c rejected the generated nft node" >&2; exit 1; }
nft_note=""
if ! "$MS" audit --format json --fail-on never "$WORK/probe.nft" >/dev/null 2>"$WORK/nft-err"; then
    nft_note="nftables: skipped: this markspace does not read nftables input ($(head -n1 "$WORK/nft-err")); the generated nft node loads with nft -c -f"
fi
for n in $SIZES; do
    ipt=$WORK/kube-proxy-$n.txt
    nftf=$WORK/kube-proxy-$n.nft
    "$GEN" iptables --lines "$n" >"$ipt"
    [ -n "$nft_note" ] || [ "$n" -gt "$NFT_MAX_LINES" ] || "$GEN" nft --lines "$n" >"$nftf"
    lines=$(wc -l <"$ipt")
    bytes=$(stat -c %s "$ipt")
    echo "== $n: $lines lines, $bytes bytes"

    # The baselines must accept the generated input, or the comparison means nothing.
    "${IN_NS[@]}" iptables-restore --test "$ipt" ||
        { echo "bench.sh: iptables-restore --test rejected $ipt" >&2; exit 1; }
    rules=$("$MS" audit --format json --fail-on never "$ipt" | rules_of)

    # Few runs of the slow baseline on large inputs; markspace gets at least ten.
    if [ "$n" -ge 200000 ]; then base_runs=3; else base_runs=5; fi
    hyperfine -N -w 2 -m 10 --export-json "$WORK/ms-$n.json" \
        "$MS audit --format json --fail-on never $ipt" >/dev/null
    hyperfine -N -w 1 -r "$base_runs" --export-json "$WORK/ipt-$n.json" \
        "ip netns exec $NS iptables-restore --test $ipt" >/dev/null
    read -r ms_mean ms_sd ms_n < <(stats "$WORK/ms-$n.json")
    read -r b_mean b_sd b_n < <(stats "$WORK/ipt-$n.json")
    ms_rss=$(rss "$MS" audit --format json --fail-on never "$ipt")
    b_rss=$(rss "${IN_NS[@]}" iptables-restore --test "$ipt")
    printf 'iptables\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\tiptables-restore --test\n' \
        "$n" "$lines" "$rules" "$bytes" "$ms_mean" "$ms_sd" "$ms_n" "$b_mean" "$b_sd" "$b_n" "$ms_rss" "$b_rss" >>"$RESULTS"

    # nftables: the same services in kube-proxy's nftables mode.
    if [ -n "$nft_note" ] || [ "$n" -gt "$NFT_MAX_LINES" ]; then
        continue
    fi
    "${IN_NS[@]}" nft -c -f "$nftf" || { echo "bench.sh: nft -c rejected $nftf" >&2; exit 1; }
    nlines=$(wc -l <"$nftf")
    nrules=$("$MS" audit --format json --fail-on never "$nftf" | rules_of)
    nbytes=$(stat -c %s "$nftf")
    hyperfine -N -w 2 -m 10 --export-json "$WORK/msn-$n.json" \
        "$MS audit --format json --fail-on never $nftf" >/dev/null
    hyperfine -N -w 1 -r "$base_runs" --export-json "$WORK/nft-$n.json" \
        "ip netns exec $NS nft -c -f $nftf" >/dev/null
    read -r ms_mean ms_sd ms_n < <(stats "$WORK/msn-$n.json")
    read -r b_mean b_sd b_n < <(stats "$WORK/nft-$n.json")
    ms_rss=$(rss "$MS" audit --format json --fail-on never "$nftf")
    b_rss=$(rss "${IN_NS[@]}" nft -c -f "$nftf")
    printf 'nft\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\tnft -c -f\n' \
        "$n" "$nlines" "$nrules" "$nbytes" "$ms_mean" "$ms_sd" "$ms_n" "$b_mean" "$b_sd" "$b_n" "$ms_rss" "$b_rss" >>"$RESULTS"
    # The JSON form, converted by the real nft: load the text, list it back.
    json=$WORK/kube-proxy-$n.json
    "${IN_NS[@]}" nft -f "$nftf"
    "${IN_NS[@]}" nft -j list ruleset >"$json"
    "${IN_NS[@]}" nft flush ruleset
    if "$MS" audit --format json --fail-on never "$json" >/dev/null 2>&1; then
        hyperfine -N -w 2 -m 10 --export-json "$WORK/msj-$n.json" \
            "$MS audit --format json --fail-on never $json" >/dev/null
        read -r ms_mean ms_sd ms_n < <(stats "$WORK/msj-$n.json")
        ms_rss=$(rss "$MS" audit --format json --fail-on never "$json")
        printf 'nft-json\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\tnft -c -f (text)\n' \
            "$n" "$(wc -l <"$json")" "$nrules" "$(stat -c %s "$json")" "$ms_mean" "$ms_sd" "$ms_n" \
            "$b_mean" "$b_sd" "$b_n" "$ms_rss" "$b_rss" >>"$RESULTS"
    fi
done

# collect and audit --live against the commands they run: the namespace holds the kube-proxy
# rules; the commands come from the manifest of a first collection and run from a shell script
# in the same order, each output to a file, as the baseline. (nft 1.0.6 dumps every rule for
# `nft list tables`, and the kernel's dump of iptables-nft rules grows with their square, so
# large nodes make that one command slow for everybody: sizes stay moderate.)
COLLECT_SIZES=${COLLECT_SIZES-"10000 30000"}
COLLECT_RESULTS=$WORK/collect.tsv
: >"$COLLECT_RESULTS"
for n in $COLLECT_SIZES; do
    ipt=$WORK/kube-proxy-$n.txt
    [ -f "$ipt" ] || "$GEN" iptables --lines "$n" >"$ipt"
    "${IN_NS[@]}" iptables-restore "$ipt"
    echo "== collect: $n lines loaded"
    col=$WORK/collect-$n
    "${IN_NS[@]}" "$MS" collect --out "$col" >/dev/null 2>&1
    python3 scripts/manifest-to-sh.py "$col/manifest.json" "$WORK/collect-$n-baseline" >"$WORK/collect-$n.sh"
    hyperfine -N -w 1 -r 10 --export-json "$WORK/colb-$n.json" \
        "ip netns exec $NS bash $WORK/collect-$n.sh" >/dev/null
    hyperfine -N -w 1 -r 10 --export-json "$WORK/colm-$n.json" \
        "ip netns exec $NS $MS collect --out $col" >/dev/null
    hyperfine -N -w 1 -r 10 --export-json "$WORK/coll-$n.json" \
        "ip netns exec $NS $MS audit --live --format json --fail-on never" >/dev/null
    read -r b_mean b_sd _ < <(stats "$WORK/colb-$n.json")
    read -r c_mean c_sd _ < <(stats "$WORK/colm-$n.json")
    read -r l_mean l_sd _ < <(stats "$WORK/coll-$n.json")
    # audit --live is the collection plus an audit of the snapshot: time that audit alone.
    hyperfine -N -w 1 -r 10 --export-json "$WORK/cola-$n.json" \
        "$MS audit --format json --fail-on never $col" >/dev/null
    read -r a_mean _ _ < <(stats "$WORK/cola-$n.json")
    # The collector's own time, without the noise of the commands: the manifest's total against
    # the sum of its steps' durations (the last run's).
    read -r m_total m_steps < <(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m["duration_ms"], sum(s["duration_ms"] for s in m["steps"]))' "$col/manifest.json")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$(grep -c '>' "$WORK/collect-$n.sh")" \
        "$b_mean" "$b_sd" "$c_mean" "$c_sd" "$l_mean" "$l_sd" "$m_total" "$m_steps" "$a_mean" >>"$COLLECT_RESULTS"
    for t in nat filter mangle raw; do
        "${IN_NS[@]}" iptables -t "$t" -F
        "${IN_NS[@]}" iptables -t "$t" -X
    done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)
echo
python3 - "$RESULTS" "$(nproc)" "$cpu" "$mem" "$(uname -r)" "$load_start" "$load_end" \
    "$(iptables --version)" "$(nft --version)" "$(hyperfine --version)" <<'EOF'
import sys
path, nproc, cpu, mem, kernel, load0, load1, ipt, nft, hf = sys.argv[1:]
rows = [l.rstrip("\n").split("\t") for l in open(path) if l.strip()]
def ms(s): return f"{float(s) * 1000:.1f} ms"
def t(mean, sd): return f"{ms(mean)} ± {float(sd) * 1000:.1f}"
def mib(kib): return f"{int(kib) / 1024:.0f} MiB"
print(f"Machine: {nproc} cores, {cpu}, {mem}, Linux {kernel}; {ipt}, {nft}, {hf}.")
print(f"Load average (1, 5, 15 min): {load0} at the start, {load1} at the end.")
print()
print("| input | lines | rules | size | markspace audit | baseline | baseline time | speed-up | markspace peak RSS | RSS / input | baseline peak RSS |")
print("|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|")
for kind, n, lines, rules, size, m, msd, mn, b, bsd, bn, mr, br, base in rows:
    name = {"iptables": "kube-proxy iptables-save", "nft": "kube-proxy nftables (text)",
            "nft-json": "kube-proxy nftables (`nft -j`)"}[kind]
    ratio = float(b) / float(m)
    print(f"| {name} | {int(lines):,} | {int(rules):,} | {int(size) / 1e6:.1f} MB | {t(m, msd)} | `{base}` | "
          f"{t(b, bsd)} | **{ratio:.1f}×** | {mib(mr)} | {int(mr) * 1024 / int(size):.2f}× | {mib(br)} |")
print()
print("Time per MB of input (linearity):")
for kind, n, lines, rules, size, m, *_ in rows:
    print(f"  {kind:9} {int(lines):>9,} lines: markspace {float(m) * 1000 / (int(size) / 1e6):.2f} ms/MB")
print()
print("Ratios (baseline time / markspace time):")
for kind, n, lines, rules, size, m, msd, mn, b, *_ , base in rows:
    print(f"  {kind:9} {int(lines):>9,} lines: {float(b) / float(m):.1f}x faster than {base}")
EOF
if [ -s "$COLLECT_RESULTS" ]; then
    echo
    python3 scripts/manifest-to-sh.py --table "$COLLECT_RESULTS"
fi
if [ -n "$nft_note" ]; then
    echo
    echo "$nft_note"
fi
echo
echo "inputs and hyperfine exports: $WORK"
