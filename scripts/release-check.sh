#!/usr/bin/env bash
# The release build as users get it, checked once: `cargo install --path crates/markspace-cli`
# into a temporary root, for the portable target (x86_64-unknown-linux-musl: a static binary
# that needs no C library of the host, so it runs on RHEL 8, Amazon Linux 2, Ubuntu 20.04 or a
# distroless image alike). One build serves every check:
#   - the binary is under 8 MiB (release profile: stripped, no debug info);
#   - it is static: no program interpreter, no NEEDED library, no GLIBC_* symbol version
#     (`objdump -T` would list the newest glibc it needs; there must be none);
#   - it runs in an empty chroot holding only itself and an input, with an empty environment,
#     and audits the Tailscale + Calico example (MS001 found);
#   - the completion script it prints completes `markspace audit --fo` in bash.
# Run by scripts/test.sh (so by CI); needs root for chroot. About 80 s on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=x86_64-unknown-linux-musl
LIMIT=$((8 * 1024 * 1024))
if ! rustup target list --installed | grep -qx "$TARGET"; then
    echo "release-check: adding the $TARGET target"
    rustup target add "$TARGET"
fi
WORK=$(mktemp -d /tmp/markspace-release.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

echo "== cargo install --path crates/markspace-cli --target $TARGET (temporary root)"
start=$(date +%s)
cargo install --locked --quiet -j2 --path crates/markspace-cli --root "$WORK/root" \
    --target "$TARGET" --target-dir "${CARGO_TARGET_DIR:-target}"
BIN=$WORK/root/bin/markspace
echo "built and installed in $(($(date +%s) - start)) s: $BIN"

fail() { echo "release-check: $*" >&2; exit 1; }

size=$(stat -c %s "$BIN")
echo "size: $size bytes (limit $LIMIT)"
[ "$size" -lt "$LIMIT" ] || fail "the release binary is $size bytes, over the 8 MiB limit"

if readelf -l "$BIN" | grep -q 'Requesting program interpreter'; then
    fail "the binary asks for a program interpreter (dynamically linked)"
fi
if readelf -d "$BIN" 2>/dev/null | grep -q '(NEEDED)'; then
    fail "the binary needs shared libraries: $(readelf -d "$BIN" | grep NEEDED)"
fi
glibc=$(objdump -T "$BIN" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1 || true)
[ -z "$glibc" ] || fail "the binary needs $glibc"
echo "static: no interpreter, no NEEDED library, no GLIBC symbol version"

JAIL=$WORK/jail
mkdir -p "$JAIL"
cp "$BIN" "$JAIL/markspace"
cp examples/nodes/tailscale-calico/iptables-save.txt "$JAIL/iptables-save.txt"
echo "jail: $(find "$JAIL" | wc -l) entries, no /lib, no /etc, no /proc"
env -i /usr/sbin/chroot "$JAIL" /markspace --version
env -i /usr/sbin/chroot "$JAIL" /markspace audit -o json --fail-on never /iptables-save.txt >"$WORK/audit.json"
python3 - "$WORK/audit.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
codes = [f["code"] for f in doc["findings"]]
owners = sorted(o["id"] for o in doc["owners"])
assert "MS001" in codes, codes
assert "calico" in owners and "tailscale" in owners, owners
print(f"chroot audit: owners {owners}, findings {codes}")
PY

"$BIN" completions bash >"$WORK/markspace.bash"
replies=$(bash --norc --noprofile -c "
source '$WORK/markspace.bash'
COMP_WORDS=(markspace audit --fo); COMP_CWORD=2; COMP_LINE='markspace audit --fo'; COMP_POINT=\${#COMP_LINE}
func=\$(complete -p markspace | sed -E 's/.*-F ([^ ]+).*/\\1/')
\$func markspace --fo audit
echo \"\${COMPREPLY[*]}\"")
[ "$replies" = "--format" ] || fail "bash completes 'markspace audit --fo' to '$replies', not --format"
echo "bash: markspace audit --fo<TAB> -> $replies"
echo "release-check: ok"
