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
        # The nf_tables table dump is a netlink request of the collector's own, no command.
        if step["argv"][0] == "netlink":
            continue
        print(f"{shlex.join(step['argv'])} >{shlex.quote(out)}/{i} 2>/dev/null || true")


def table(tsv: str) -> None:
    """Two views: hyperfine's wall times (the commands' own variance dominates them), and the
    collector's own time from its manifest (total against the sum of its commands' durations),
    plus, for audit --live, the audit of the collected snapshot."""
    print("| node (iptables-save lines) | commands | the commands, from a shell script "
          "| markspace collect | markspace audit --live "
          "| collect: manifest total / its commands | collect's own time "
          "| audit of the snapshot | audit --live's own time |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for line in open(tsv):
        n, cmds, *times, total, steps, audit = line.split()
        b, bsd, c, csd, l, lsd = (float(t) * 1000 for t in times)
        total, steps, audit = int(total), int(steps), float(audit) * 1000
        own = total - steps
        print(f"| {int(n):,} | {cmds} | {b:.0f} ms ± {bsd:.0f} | {c:.0f} ms ± {csd:.0f} "
              f"| {l:.0f} ms ± {lsd:.0f} | {total} ms / {steps} ms | {own} ms "
              f"(**{own / steps * 100:+.1f}%**) | {audit:.0f} ms "
              f"| {own + audit:.0f} ms (**{(own + audit) / steps * 100:+.1f}%**) |")


if __name__ == "__main__":
    if sys.argv[1] == "--table":
        table(sys.argv[2])
    else:
        script(sys.argv[1], sys.argv[2])
