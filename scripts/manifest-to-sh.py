#!/usr/bin/env python3
"""Helpers for scripts/bench.sh's collection benchmark.

  manifest-to-sh.py MANIFEST OUTDIR   prints a shell script running the commands a
                                      `markspace collect` ran (its version probes, then the
                                      steps of its manifest.json, in order, each output to a
                                      file in OUTDIR): the baseline.
  manifest-to-sh.py --table TSV       prints the README table from bench.sh's results.
"""
import json
import shlex
import sys


# The version probes `markspace collect` runs before its steps (collect.rs, tool_versions);
# the manifest keeps their answers, not their argv.
PROBES = [["iptables", "--version"], ["nft", "--version"], ["ip", "-V"], ["tc", "-V"],
          ["ss", "-V"], ["wg", "--version"], ["ovs-vsctl", "--version"],
          ["ipvsadm", "--version"], ["bpftool", "version"]]


def script(manifest: str, out: str) -> None:
    print(f"mkdir -p {shlex.quote(out)}")
    tools = dict(json.load(open(manifest))["tools"])
    for argv in PROBES:
        if tools.get(argv[0]) != "not installed":
            print(f"{shlex.join(argv)} >/dev/null 2>&1 || true")
    for i, step in enumerate(json.load(open(manifest))["steps"]):
        if step["status"] in ("missing", "skipped"):
            continue
        print(f"{shlex.join(step['argv'])} >{shlex.quote(out)}/{i} 2>/dev/null || true")


def table(tsv: str) -> None:
    print("| node (iptables-save lines) | commands | the commands, from a shell script "
          "| markspace collect | overhead | markspace audit --live | overhead "
          "| collect's manifest: total / its steps |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for line in open(tsv):
        n, cmds, *times, total, steps = line.split()
        b, bsd, c, csd, l, lsd = (float(t) * 1000 for t in times)
        total, steps = int(total), int(steps)
        print(f"| {int(n):,} | {cmds} | {b:.0f} ms ± {bsd:.0f} | {c:.0f} ms ± {csd:.0f} | "
              f"{(c / b - 1) * 100:+.1f}% | {l:.0f} ms ± {lsd:.0f} | {(l / b - 1) * 100:+.1f}% "
              f"| {total} ms / {steps} ms ({(total / steps - 1) * 100:+.1f}%) |")


if __name__ == "__main__":
    if sys.argv[1] == "--table":
        table(sys.argv[2])
    else:
        script(sys.argv[1], sys.argv[2])
