#!/usr/bin/env bash
# Times `markspace audit` against the tools people use, on the same generated inputs, in one run.
#
#   bash scripts/bench.sh                 # sizes 10000 100000 230000 700000 (iptables-save lines)
#   SIZES="10000 100000" bash scripts/bench.sh
#   SIZES= COLLECT_SIZES=10000 bash scripts/bench.sh      # only the collection rows
#   SIZES= COLLECT_SIZES= LIVE_SIZES= bash scripts/bench.sh   # only the mark-heavy rows
#   SIZES= COLLECT_SIZES= MARK_SIZES= CALICO= CALICO_TAILSCALE= MIXED= bash scripts/bench.sh
#                                                         # only audit --live
#   SIZES= COLLECT_SIZES= MARK_SIZES= CALICO= CALICO_TAILSCALE= MIXED= LIVE_SIZES= bash scripts/bench.sh
#                                                         # only the eBPF object rows (BPF_PROGRAMS)
#   MARKSPACE=/path/to/markspace bash scripts/bench.sh   # time another build
#   SIZES= COLLECT_SIZES= MARK_SIZES= CALICO= CALICO_TAILSCALE= MIXED= LIVE_SIZES= bash scripts/bench.sh
#                                                         # only the plan rows
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
# Mark-heavy nodes (MARK_SIZES, CALICO, CALICO_TAILSCALE, MIXED): the adversarial generator (8
# owners over overlapping bits, connmark saves and restores, ACCEPTs) at each size, Calico with
# CALICO endpoints:policies, alone and next to Tailscale (they share bits 0xf0000), and Cilium +
# kube-proxy + Tailscale: the whole audit (hyperfine) and the
# analysis stage alone (the median of ANALYSIS_RUNS runs' `MARKSPACE_TIMINGS`), with the
# growth of the analysis per doubling of the adversarial input.
# audit --live against iptables-save alone (LIVE_SIZES): the kube-proxy node loaded into the
# namespace, both timed by hyperfine in one run.
# fleet (FLEET nodes) against `audit --each` on the same generated nodes.
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

# Mark-heavy nodes: the analysis stage is what they stress.
MARK_SIZES=${MARK_SIZES-"20000 40000 80000 160000 320000 1000000"}
CALICO=${CALICO-"1000:50000 25000:50000"}
CALICO_TAILSCALE=${CALICO_TAILSCALE-"2000:2000 8000:8000"}
MIXED=${MIXED-"230000"}
ANALYSIS_RUNS=${ANALYSIS_RUNS:-5}
MARK_RESULTS=$WORK/mark.tsv
: >"$MARK_RESULTS"
# median analysis-stage milliseconds over ANALYSIS_RUNS runs of `markspace audit` on a file
analysis_ms() {
    for _ in $(seq "$ANALYSIS_RUNS"); do
        MARKSPACE_TIMINGS=1 "$MS" audit --format json --fail-on never "$1" 2>&1 >/dev/null |
            sed -n 's/.*timings: analysis: \([0-9.]*\) ms.*/\1/p'
    done | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
mark_row() { # kind label file
    local kind=$1 label=$2 f=$3 rules mark_rules m_mean m_sd
    "${IN_NS[@]}" iptables-restore --test "$f" ||
        { echo "bench.sh: iptables-restore --test rejected $f" >&2; exit 1; }
    read -r rules mark_rules < <("$MS" audit --format json --fail-on never "$f" |
        python3 -c 'import json,sys; s=json.load(sys.stdin)["summary"]; print(s["rules"], s["mark_rules"])')
    hyperfine -N -w 1 -m 5 --export-json "$WORK/mark-$kind-$label.json" \
        "$MS audit --format json --fail-on never $f" >/dev/null
    read -r m_mean m_sd _ < <(stats "$WORK/mark-$kind-$label.json")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$label" "$(wc -l <"$f")" "$rules" \
        "$mark_rules" "$m_mean" "$m_sd" "$(analysis_ms "$f")" \
        "$(rss "$MS" audit --format json --fail-on never "$f")" >>"$MARK_RESULTS"
}
for n in $MARK_SIZES; do
    f=$WORK/adversarial-$n.txt
    "$GEN" adversarial --lines "$n" >"$f"
    echo "== adversarial: $n lines"
    mark_row adversarial "$n" "$f"
done
for spec in $CALICO; do
    f=$WORK/calico-$spec.txt
    "$GEN" iptables --no-kube-proxy --calico "${spec%%:*}" --policies "${spec##*:}" >"$f"
    echo "== calico: $spec (endpoints:policies)"
    mark_row calico "$spec" "$f"
done
for spec in $CALICO_TAILSCALE; do
    f=$WORK/calico-ts-$spec.txt
    "$GEN" iptables --no-kube-proxy --tailscale --calico "${spec%%:*}" --policies "${spec##*:}" >"$f"
    echo "== calico + tailscale: $spec (endpoints:policies)"
    mark_row calico-ts "$spec" "$f"
done
for n in $MIXED; do
    f=$WORK/mixed-$n.txt
    "$GEN" iptables --lines "$n" --cilium --tailscale >"$f"
    echo "== cilium + kube-proxy + tailscale: $n lines"
    mark_row mixed "$n" "$f"
done

# audit --live against iptables-save alone, in one run, on the kube-proxy node in the namespace.
LIVE_SIZES=${LIVE_SIZES-"230000"}
LIVE_RESULTS=$WORK/live.tsv
: >"$LIVE_RESULTS"
for n in $LIVE_SIZES; do
    ipt=$WORK/kube-proxy-$n.txt
    [ -f "$ipt" ] || "$GEN" iptables --lines "$n" >"$ipt"
    "${IN_NS[@]}" iptables-restore "$ipt"
    echo "== audit --live: $n lines loaded"
    hyperfine -N -w 1 -r 5 --export-json "$WORK/live-$n.json" \
        "ip netns exec $NS iptables-save" \
        "ip netns exec $NS $MS audit --live --format json --fail-on never" >/dev/null
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]; print("\t".join([sys.argv[2]] + [str(x[k]) for x in r for k in ("mean", "stddev")]))' \
        "$WORK/live-$n.json" "$n" >>"$LIVE_RESULTS"
    for t in nat filter mangle raw; do
        "${IN_NS[@]}" iptables -t "$t" -F
        "${IN_NS[@]}" iptables -t "$t" -X
    done
done

# eBPF objects (BPF_PROGRAMS tc programs from scripts/gen-bpf.py, about 680 instructions each:
# 1500 is about a million), compiled once with clang: `markspace audit OBJECT` (read, relocate,
# abstract interpretation of every program, audit) against `llvm-objdump -d` of the same object
# (disassembly alone). Needs clang and llvm (installed with apt-get when missing and root).
BPF_PROGRAMS=${BPF_PROGRAMS-"1500"}
BPF_RESULTS=$WORK/bpf.tsv
: >"$BPF_RESULTS"
if [ -n "$BPF_PROGRAMS" ] && { ! need clang || ! need llvm-objdump; } && [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang llvm >/dev/null ||
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang llvm >/dev/null; }
fi
for n in $BPF_PROGRAMS; do
    need clang && need llvm-objdump || { echo "bench.sh: the eBPF rows need clang and llvm-objdump" >&2; exit 2; }
    obj=$WORK/bpf-$n.o
    if [ ! -f "$obj" ]; then
        python3 scripts/gen-bpf.py "$n" >"$WORK/bpf-$n.c"
        echo "== compiling $n eBPF programs (clang, about a minute for 1500)"
        clang -O2 -target bpf -c "$WORK/bpf-$n.c" -o "$obj"
    fi
    insns=$(llvm-objdump -d "$obj" | grep -c '^ *[0-9]*:')
    echo "== eBPF: $n programs, $insns instructions"
    hyperfine -N -w 1 -r 5 --export-json "$WORK/bpf-$n.json" \
        "$MS audit --format json --fail-on never $obj" \
        "llvm-objdump -d $obj" >/dev/null
    # Wall time (mean, stddev) and CPU time (user + system) of each command: on a shared
    # machine the wall time grows with the load, the CPU time much less.
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]; print("\t".join(sys.argv[2:4] + [str(v) for x in r for v in (x["mean"], x["stddev"], x["user"] + x["system"])]))' \
        "$WORK/bpf-$n.json" "$n" "$insns" >>"$BPF_RESULTS"
    printf '\t%s\n' "$(rss "$MS" audit --format json --fail-on never "$obj")" >>"$BPF_RESULTS"
done

# fleet (FLEET nodes, default 200, three layouts: kube-proxy + Calico, the same + Tailscale,
# Cilium + kube-proxy; sizes vary per node) against the baseline of the same nodes audited one by
# one in one process, `markspace audit --each`. Target: under 5 s.
FLEET=${FLEET-"200"}
FLEET_RESULTS=$WORK/fleet.tsv
: >"$FLEET_RESULTS"
for n in $FLEET; do
    dir=$WORK/fleet-$n
    rm -rf "$dir"
    for i in $(seq 0 $((n - 1))); do
        mkdir -p "$dir/node-$i"
        args=(iptables --services $((20 + i % 13 * 5)) --endpoints $((1 + i % 3)))
        case $((i % 20)) in
            0 | 10) args+=(--cilium) ;;
            1 | 2 | 3 | 4) args+=(--calico $((5 + i % 11)) --policies $((10 + i % 7)) --tailscale) ;;
            *) args+=(--calico $((5 + i % 11)) --policies $((10 + i % 7))) ;;
        esac
        "$GEN" "${args[@]}" >"$dir/node-$i/iptables-save.txt"
    done
    layouts=$("$MS" fleet --format json --fail-on never "$dir" | python3 -c 'import json,sys; print(json.load(sys.stdin)["summary"]["layouts"])')
    echo "== fleet: $n nodes, $layouts layouts"
    hyperfine -N -w 1 -r 5 --export-json "$WORK/fleet-$n.json" \
        "$MS audit --each --format json --fail-on never $dir" \
        "$MS fleet --format json --fail-on never $dir" >/dev/null
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]; print("\t".join([sys.argv[2], sys.argv[3]] + [str(x[k]) for x in r for k in ("mean", "stddev")]))' \
        "$WORK/fleet-$n.json" "$n" "$layouts" >>"$FLEET_RESULTS"
    echo "$n $(rss "$MS" fleet --format json --fail-on never "$dir")" >>"$WORK/fleet-rss"
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
if [ -s "$MARK_RESULTS" ]; then
    echo
    python3 - "$MARK_RESULTS" <<'EOF'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
names = {"adversarial": "adversarial, 8 owners", "calico": "Calico (endpoints:policies {})",
         "calico-ts": "Calico ({}) + Tailscale", "mixed": "Cilium + kube-proxy + Tailscale"}
print("| node | lines | rules | mark rules | markspace audit | analysis stage (median) "
      "| analysis growth | peak RSS |")
print("|---|---:|---:|---:|---:|---:|---|---:|")
prev = None
for kind, label, lines, rules, mark, m, msd, an, rss in rows:
    grow = ""
    if kind == "adversarial" and prev:
        grow = f"{float(an) / float(prev[1]):.2f}× for {int(lines) / int(prev[0]):.2f}× lines"
    if kind == "adversarial":
        prev = (lines, an)
    print(f"| {names[kind].format(label)} | {int(lines):,} | {int(rules):,} | {int(mark):,} "
          f"| {float(m) * 1000:.0f} ms ± {float(msd) * 1000:.0f} | {float(an):.1f} ms | {grow} "
          f"| {int(rss) / 1024:.0f} MiB |")
EOF
fi
if [ -s "$LIVE_RESULTS" ]; then
    echo
    echo "| node (iptables-save lines) | iptables-save alone | markspace audit --live | ratio |"
    echo "|---:|---:|---:|---:|"
    while read -r n s_mean s_sd l_mean l_sd; do
        python3 -c 'import sys; n, a, asd, b, bsd = sys.argv[1:]; print(f"| {int(n):,} | {float(a)*1000:.0f} ms ± {float(asd)*1000:.0f} | {float(b)*1000:.0f} ms ± {float(bsd)*1000:.0f} | **{float(b)/float(a):.2f}×** |")' \
            "$n" "$s_mean" "$s_sd" "$l_mean" "$l_sd"
    done <"$LIVE_RESULTS"
fi
if [ -s "$BPF_RESULTS" ]; then
    echo
    echo "| eBPF object | instructions | markspace audit | its CPU time | llvm-objdump -d | its CPU time | CPU ratio | markspace peak RSS |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    paste - - <"$BPF_RESULTS" | while read -r n insns m_mean m_sd m_cpu b_mean b_sd b_cpu rss_kb; do
        python3 -c 'import sys; n, i, a, asd, ac, b, bsd, bc, r = sys.argv[1:]; print(f"| {int(n):,} tc programs | {int(i):,} | {float(a)*1000:.0f} ms ± {float(asd)*1000:.0f} | {float(ac)*1000:.0f} ms | {float(b)*1000:.0f} ms ± {float(bsd)*1000:.0f} | {float(bc)*1000:.0f} ms | **{float(bc)/float(ac):.2f}×** | {int(r)/1024:.0f} MiB |")' \
            "$n" "$insns" "$m_mean" "$m_sd" "$m_cpu" "$b_mean" "$b_sd" "$b_cpu" "$rss_kb"
    done
fi
if [ -s "$FLEET_RESULTS" ]; then
    echo
    echo "| nodes | layouts | baseline: markspace audit --each | markspace fleet | ratio | fleet peak RSS |"
    echo "|---:|---:|---:|---:|---:|---:|"
    while read -r n layouts b_mean b_sd f_mean f_sd; do
        peak=$(awk -v n="$n" '$1 == n {print $2}' "$WORK/fleet-rss" | tail -n1)
        python3 -c 'import sys; n, l, a, asd, b, bsd, rss = sys.argv[1:]; print(f"| {int(n):,} | {l} | {float(a)*1000:.0f} ms ± {float(asd)*1000:.0f} | {float(b)*1000:.0f} ms ± {float(bsd)*1000:.0f} | **{float(a)/float(b):.2f}×** | {int(rss)/1024:.0f} MiB |")' \
            "$n" "$layouts" "$b_mean" "$b_sd" "$f_mean" "$f_sd" "$peak"
    done <"$FLEET_RESULTS"
fi
if [ -n "$nft_note" ]; then
    echo
    echo "$nft_note"
fi
# plan (issue #16): 12 software with every knob in play, once feasible (7 knobs, 6 of them move)
# and once infeasible (the smallest conflicting set and every remedy are searched too), against
# `markspace plan kube-proxy --format json` (the same start-up and registry load, one software
# and nothing to move): the difference is the cost of the 12-software search. Target: under 1 s.
# PLAN= skips these rows.
if [ -n "${PLAN-1}" ]; then
    echo
    echo "| plan (12 software) | knobs | changed | markspace plan | plan kube-proxy (baseline) | difference |"
    echo "|---|---:|---:|---:|---:|---:|"
    hyperfine -N -w 3 -m 20 --export-json "$WORK/plan-base.json" \
        "$MS plan kube-proxy --format json" >/dev/null
    read -r pb_mean pb_sd _ < <(stats "$WORK/plan-base.json")
    for set in "feasible:calico kube-proxy kubelet@1.27 tailscale wireguard aws-vpc-cni istio networkmanager-wireguard keepalived podman-netavark linkerd metallb" \
        "infeasible:calico kube-proxy kubelet@1.27 tailscale wireguard aws-vpc-cni istio networkmanager-wireguard keepalived mihomo consul envoy"; do
        label=${set%%:*}
        sw=${set#*:}
        # shellcheck disable=SC2086
        "$MS" plan $sw --format json >"$WORK/plan-$label.json" || true
        read -r knobs changed < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d["settings"]), d["changes"])' "$WORK/plan-$label.json")
        hyperfine -N -w 3 -m 20 -i --export-json "$WORK/plan-$label.json.h" \
            "$MS plan $sw --format json" >/dev/null
        read -r p_mean p_sd _ < <(stats "$WORK/plan-$label.json.h")
        python3 -c 'import sys; l, k, c, a, asd, b, bsd = sys.argv[1:]; print(f"| {l} | {k} | {c} | {float(a)*1000:.1f} ms ± {float(asd)*1000:.1f} | {float(b)*1000:.1f} ms ± {float(bsd)*1000:.1f} | {(float(a)-float(b))*1000:.1f} ms |")' \
            "$label" "$knobs" "$changed" "$p_mean" "$p_sd" "$pb_mean" "$pb_sd"
    done
fi
echo
echo "inputs and hyperfine exports: $WORK"
