#!/usr/bin/env python3
"""Helpers for scripts/bench.sh's collection benchmark.

  manifest-to-sh.py MANIFEST OUTDIR   prints a shell script running the commands a
                                      `markspace collect` ran (its manifest.json), in order,
                                      each output to a file in OUTDIR: the baseline.
  manifest-to-sh.py --table TSV       prints the README table from bench.sh's results.
"""
import json
import shlex
import sys


def script(manifest: str, out: str) -> None:
    print(f"mkdir -p {shlex.quote(out)}")
    for i, step in enumerate(json.load(open(manifest))["steps"]):
        if step["status"] in ("missing", "skipped"):
            continue
        print(f"{shlex.join(step['argv'])} >{shlex.quote(out)}/{i} 2>/dev/null || true")


def table(tsv: str) -> None:
    print("| node (iptables-save lines) | commands | the commands, from a shell script "
          "| markspace collect | overhead | markspace audit --live | overhead |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for line in open(tsv):
        n, cmds, *times = line.split()
        b, bsd, c, csd, l, lsd = (float(t) * 1000 for t in times)
        print(f"| {int(n):,} | {cmds} | {b:.0f} ms ± {bsd:.0f} | {c:.0f} ms ± {csd:.0f} | "
              f"{(c / b - 1) * 100:+.1f}% | {l:.0f} ms ± {lsd:.0f} | {(l / b - 1) * 100:+.1f}% |")


if __name__ == "__main__":
    if sys.argv[1] == "--table":
        table(sys.argv[2])
    else:
        script(sys.argv[1], sys.argv[2])
