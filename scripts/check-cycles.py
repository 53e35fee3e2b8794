#!/usr/bin/env python3
"""Fails when the library's modules depend on each other in a cycle, listing every cycle.

Granularity: one node per source FILE of the library crate (crates/markspace/src): `lib.rs` is
`crate`, `analysis/mod.rs` is `analysis`, `analysis/checks/shared.rs` is
`analysis::checks::shared`. Modules written inline in a file (`mod bundle { ... }`) belong to
the file's node. A file is the unit a reader opens and the unit that can be split, so a cycle
between files is one between pieces that cannot be read (or moved to another crate) apart.

Edges: A -> B when A's non-test code refers to an item defined in B, through `use` paths or
paths written in code that start with `crate::`, `super::`, `self::`, a child module's name or a
name A imported. A path is followed to the file that DEFINES the item: `crate::analysis::Finding`
goes to `analysis::finding` when `analysis/mod.rs` only re-exports it. Not edges:
- a parent's `mod child;` declaration, and its `pub use` re-exports of its own descendants
  (that is how a module presents its children; the parent does not use them);
- anything under `#[cfg(test)]` (test modules, test-only items and imports), and files that are
  only declared under `#[cfg(test)]`;
- comments, doc comments (intra-doc links are not dependencies) and string literals.
The parser is textual (rustfmt-formatted code: top-level items start in column 0); it knows
no macros' expansions and resolves glob imports to the module they name.

The library has no cycle, and CI runs this with `--no-allow`. Should one ever have to be
accepted for a while, scripts/known-cycles.txt may list it, one a line, as `a -> b -> a`
starting at the smallest module name (the form this script prints); a listed cycle that is
gone is reported so it can be removed.

Usage: python3 scripts/check-cycles.py [--graph] [--no-allow]
  --graph     print every edge with the reference that makes it
  --no-allow  ignore the allow-list (list every cycle, fail on any)
"""

import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SRC = os.path.join(ROOT, "crates", "markspace", "src")
ALLOW = os.path.join(ROOT, "scripts", "known-cycles.txt")
MAX_CYCLES = 200  # per strongly connected component, to bound the listing

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip(text):
    """Blanks comments, strings and char literals, keeping every newline (line numbers hold)."""
    out = []
    i, n = 0, len(text)

    def blank(s):
        return "".join("\n" if c == "\n" else " " for c in s)

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(blank(text[i:j]))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(blank(text[i:j]))
            i = j
        elif re.match(r'b?r#*"', text[i:i + 300]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'(b?r)(#*)"', text[i:])
            end = '"' + m.group(2)
            j = text.find(end, i + len(m.group(0)))
            j = n if j < 0 else j + len(end)
            out.append(blank(text[i:j]))
            i = j
        elif c == '"' or (c == "b" and text.startswith('b"', i) and (i == 0 or not text[i - 1].isalnum())):
            j = i + (2 if c == "b" else 1)
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(blank(text[i:j + 1]))
            i = j + 1
        elif c == "'":
            # A char literal ('x', '\n', '\u{1F}'), else a lifetime or label.
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i:i + 12])
            if m:
                out.append(blank(m.group(0)))
                i += len(m.group(0))
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def item_end(text, i):
    """The end of the item starting at i: its `;` or its balanced `{...}` block."""
    n = len(text)
    head = text[i:i + 200].lstrip()
    if re.match(r"(pub(\([^)]*\))?\s+)?use\b", head):
        return text.find(";", i) + 1
    depth = 0
    j = i
    while j < n:
        c = text[j]
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif c == ";" and depth == 0:
            return j + 1
        elif c == "{" and depth == 0:
            level = 0
            while j < n:
                if text[j] == "{":
                    level += 1
                elif text[j] == "}":
                    level -= 1
                    if level == 0:
                        return j + 1
                j += 1
            return n
        j += 1
    return n


CFG_TEST = re.compile(r"#\[cfg\(test\)\]")


def drop_test_items(text):
    """Blanks every item under #[cfg(test)]; returns the text and the names of test-only
    `mod x;` declarations (files that are test code)."""
    test_mods = set()
    while True:
        m = CFG_TEST.search(text)
        if not m:
            return text, test_mods
        i = m.end()
        # Further attributes of the same item.
        while True:
            rest = text[i:]
            a = re.match(r"\s*#\[", rest)
            if not a:
                break
            depth, j = 0, i + a.end() - 1
            while j < len(text):
                if text[j] == "[":
                    depth += 1
                elif text[j] == "]":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            i = j + 1
        d = re.match(r"\s*(pub(\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;", text[i:])
        if d:
            test_mods.add(d.group(3))
        end = item_end(text, i)
        text = text[:m.start()] + "".join("\n" if c == "\n" else " " for c in text[m.start():end]) + text[end:]


class Module:
    def __init__(self, path, file):
        self.path = path  # tuple of names, () for the crate root
        self.file = file
        self.children = {}  # name -> Module
        self.defs = set()  # names of items defined at top level
        self.binds = {}  # imported name -> (segments, line)
        self.uses = []  # (segments, line, is_pub, inline_depth)
        self.refs = []  # inline paths: (segments, line, inline_depth)
        self.globs = []

    @property
    def name(self):
        return "::".join(self.path) or "crate"


def expand_use(tree):
    """`a::{b, c::{self, d as e}, f::*}` -> [(segments, alias)]; alias None for globs."""
    tree = re.sub(r"\s+as\s+", "@", tree)
    tree = re.sub(r"\s+", "", tree)
    out = []

    def split_top(s):
        parts, depth, cur = [], 0, ""
        for ch in s:
            depth += {"{": 1, "}": -1}.get(ch, 0)
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
            else:
                cur += ch
        return parts + [cur] if cur else parts

    def walk(prefix, s):
        s = s.lstrip(":")
        brace = s.find("{")
        if brace >= 0:
            head = [x for x in s[:brace].split("::") if x]
            for part in split_top(s[brace + 1:s.rfind("}")]):
                walk(prefix + head, part)
            return
        s, _, alias = s.partition("@")
        segs = prefix + [x for x in s.split("::") if x]
        if segs and segs[-1] == "*":
            out.append((segs[:-1], None))
            return
        if segs and segs[-1] == "self":
            segs = segs[:-1]
        if segs:
            out.append((segs, alias or segs[-1]))

    walk([], tree)
    return out


def load():
    modules = {}

    def file_for(dir_, name):
        for f in (os.path.join(dir_, name + ".rs"), os.path.join(dir_, name, "mod.rs")):
            if os.path.exists(f):
                return f
        return None

    def visit(path, file):
        mod = Module(path, file)
        modules[path] = mod
        raw = open(file, encoding="utf-8").read()
        text, test_mods = drop_test_items(strip(raw))
        mod.text = text
        line_of = lambda off: text.count("\n", 0, off) + 1
        # Inline modules: (start, end) spans, for `super` inside them.
        inline = []
        for m in re.finditer(r"(?m)^\s*(pub(\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*\{", text):
            inline.append((m.end() - 1, item_end(text, m.end() - 1)))
        depth_at = lambda off: sum(1 for s, e in inline if s < off < e)
        # Child file modules.
        here = os.path.dirname(file)
        base = os.path.basename(file)
        child_dir = here if base in ("lib.rs", "mod.rs") else os.path.join(here, base[:-3])
        for m in re.finditer(r"(?m)^\s*(pub(\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;", text):
            name = m.group(3)
            if name in test_mods:
                continue
            f = file_for(child_dir, name)
            if f:
                mod.children[name] = visit(path + (name,), f)
        # Top-level definitions (column 0 in rustfmt-formatted code).
        for m in re.finditer(
            r"(?m)^(?:pub(?:\([^)]*\))?\s+)?(?:(?:const|async|unsafe|extern\s*)\s+)*"
            r"(?:fn|struct|enum|trait|type|const|static|union|mod)\s+(" + IDENT + r")",
            text,
        ):
            mod.defs.add(m.group(1))
        for m in re.finditer(r"(?m)^macro_rules!\s*(" + IDENT + r")", text):
            mod.defs.add(m.group(1))
        # Use declarations, anywhere in non-test code.
        rest = text
        for m in re.finditer(r"(?<![A-Za-z0-9_])(pub(\([^)]*\))?\s+)?use\s+([^;]+);", text):
            line = line_of(m.start())
            is_pub = m.group(1) is not None
            for segs, alias in expand_use(m.group(3)):
                if alias is None:
                    mod.globs.append(segs)
                mod.uses.append((segs, line, is_pub, depth_at(m.start())))
                if alias is not None:
                    mod.binds[alias] = (segs, line, depth_at(m.start()))
            rest = rest[:m.start()] + " " * (m.end() - m.start()) + rest[m.end():]
        # Paths in code: a::b(::c)*, not preceded by `::` or an identifier character.
        for m in re.finditer(r"(?<![A-Za-z0-9_:])(" + IDENT + r"(?:\s*::\s*" + IDENT + r")+)", rest):
            segs = [s.strip() for s in m.group(1).split("::")]
            mod.refs.append((segs, line_of(m.start()), depth_at(m.start())))
        return mod

    visit((), os.path.join(SRC, "lib.rs"))
    return modules


def resolve(modules, mod, segs, inline_depth, seen=None):
    """The module that defines what `segs` names, seen from `mod`; None when outside the crate."""
    seen = seen or set()
    key = (mod.path, tuple(segs))
    if key in seen or not segs:
        return None
    seen.add(key)
    cur, i = None, 0
    first = segs[0]
    if first == "crate":
        cur, i = modules[()], 1
    elif first in ("super", "self"):
        cur = mod
        d = inline_depth
        while i < len(segs) and segs[i] in ("super", "self"):
            if segs[i] == "super":
                if d > 0:
                    d -= 1
                else:
                    if not cur.path:
                        return None
                    cur = modules[cur.path[:-1]]
            i += 1
    elif first in mod.children:
        cur, i = mod.children[first], 1
    elif first in mod.binds:
        bsegs, _, bdepth = mod.binds[first]
        target = resolve_module_path(modules, mod, bsegs, bdepth, seen)
        if target is None:
            return None
        if isinstance(target, Module):
            cur, i = target, 1
        else:
            return target[0]  # an item in that module: its methods, variants…
    else:
        return None
    while i < len(segs) and segs[i] in cur.children:
        cur, i = cur.children[segs[i]], i + 1
    if i >= len(segs):
        return cur
    name = segs[i]
    if name in cur.defs:
        return cur
    if name in cur.binds:
        bsegs, _, bdepth = cur.binds[name]
        target = resolve(modules, cur, bsegs, bdepth, seen)
        return target if target is not None else cur
    for g in cur.globs:
        target = resolve(modules, cur, g + [name], 0, seen)
        if target is not None:
            return target
    return cur


def resolve_module_path(modules, mod, segs, depth, seen):
    """Like resolve, but says whether segs name a module (Module) or an item ((Module,))."""
    target = resolve(modules, mod, segs, depth, seen)
    if target is None:
        return None
    # segs names a module exactly when walking it ends on that module's path.
    if target.path and target.path[-1] == segs[-1] and segs[-1] not in target.defs:
        return target
    if segs[-1] in ("crate", "self", "super"):
        return target
    return (target,)


def descends(a, b):
    return len(b) > len(a) and b[:len(a)] == a


def edges(modules):
    out = {}  # (a, b) -> first reference "file:line: path"
    for mod in modules.values():
        rel = os.path.relpath(mod.file, ROOT)
        refs = [(s, l, False, d) for s, l, d in mod.refs] + list(mod.uses)
        for segs, line, is_pub, depth in refs:
            target = resolve(modules, mod, segs, depth)
            if target is None or target is mod:
                continue
            if is_pub and descends(mod.path, target.path):
                continue  # a parent presenting its children
            out.setdefault((mod.name, target.name), f"{rel}:{line}: {'::'.join(segs)}")
    return out


def sccs(nodes, adj):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in adj.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            strong(v)
    return out


def cycles_in(comp, adj):
    """Elementary cycles of one component, each starting at its smallest node."""
    members = set(comp)
    found = []
    for start in comp:
        allowed = {v for v in members if v >= start}
        stack = [(start, [start])]
        while stack and len(found) < MAX_CYCLES:
            v, path = stack.pop()
            for w in sorted(adj.get(v, ()), reverse=True):
                if w == start:
                    found.append(path + [start])
                elif w in allowed and w not in path:
                    stack.append((w, path + [w]))
    return found


def main():
    args = set(sys.argv[1:])
    modules = load()
    es = edges(modules)
    adj = {}
    for a, b in es:
        adj.setdefault(a, set()).add(b)
    if "--graph" in args:
        for (a, b), why in sorted(es.items()):
            print(f"{a} -> {b}    ({why})")
    allowed = set()
    if "--no-allow" not in args and os.path.exists(ALLOW):
        for line in open(ALLOW, encoding="utf-8"):
            line = line.split("#", 1)[0].strip()
            if line:
                allowed.add(" -> ".join(p.strip() for p in line.split("->")))
    names = [m.name for m in modules.values()]
    found, new = [], []
    for comp in sccs(names, adj):
        if len(comp) < 2:
            continue
        for cyc in cycles_in(comp, adj):
            text = " -> ".join(cyc)
            found.append(text)
            if text not in allowed:
                new.append((cyc, text))
    print(f"{len(modules)} modules, {len(es)} edges, {len(found)} cycle(s), "
          f"{len(found) - len(new)} of them in {os.path.relpath(ALLOW, ROOT)}")
    for text in sorted(allowed - set(found)):
        print(f"gone (remove it from the list): {text}")
    for cyc, text in new:
        print(f"cycle: {text}")
        for a, b in zip(cyc, cyc[1:]):
            print(f"    {a} -> {b}: {es[(a, b)]}")
    return 1 if new else 0


if __name__ == "__main__":
    sys.exit(main())
