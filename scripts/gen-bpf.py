#!/usr/bin/env python3
"""Writes the C source of an eBPF object for scripts/bench.sh: PROGRAMS tc programs of 100
mark tests and writes each (`if ((m & C) == V) m = m OP X; else skb->mark = m;`), about 680
instructions per program once compiled (`clang -O2 -target bpf`): 1500 programs are about
one million instructions. Deterministic (fixed seed)."""
import random
import sys

programs = int(sys.argv[1]) if len(sys.argv) > 1 else 1500
r = random.Random(1)
print("typedef unsigned int __u32;")
print("struct __sk_buff { __u32 len, pkt_type, mark; };")
print('#define SEC(n) __attribute__((section(n), used))')
print('char _license[] SEC("license") = "GPL";')
for p in range(programs):
    print(f'SEC("tc") int prog{p}(struct __sk_buff *skb) {{\n  __u32 m = skb->mark;')
    for _ in range(100):
        c = r.getrandbits(32)
        v = c & r.getrandbits(32)
        x = r.getrandbits(32)
        op = r.choice(["^", "|", "&", "+"])
        print(f"  if ((m & {c:#x}u) == {v:#x}u) m = m {op} {x:#x}u; else skb->mark = m;")
    print("  skb->mark = m;\n  return 0;\n}")
