#!/usr/bin/env bash
# Benchmark of the `sandbox` isolation (issue 8): one full run of /bin/true
# (create + start + wait + remove, through examples/sandbox_bench.rs) against
# bubblewrap with comparable confinement (read-only rootfs, every namespace
# but the network, --die-with-parent, --new-session).
#
# Usage: bench/sandbox.sh            (RUNS=100 by default)
#   RUNS=N          number of timed runs of each command
#   SKIP_BUILD=1    use already built binaries from $CARGO_TARGET_DIR (or ./target)
#   APPEND_DOCS=1   append the figures to docs/benchmarks.md
# Needs: cargo, hyperfine, jq, bwrap (bubblewrap), busybox-static.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-100}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
for tool in hyperfine jq bwrap busybox; do
    command -v "$tool" >/dev/null || { echo "sandbox.sh: $tool is required" >&2; exit 2; }
done
if [ -z "${SKIP_BUILD:-}" ]; then
    (cd "$ROOT" && cargo build --release -p zlayer-agent --example sandbox_bench --bin zlayer-sandbox-shim)
fi
BENCH=$TARGET/release/examples/sandbox_bench
[ -x "$BENCH" ] && [ -x "$TARGET/release/zlayer-sandbox-shim" ] || {
    echo "sandbox.sh: build $BENCH and $TARGET/release/zlayer-sandbox-shim first" >&2; exit 2; }

WORK=$(mktemp -d /tmp/zl-bench-sbx.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
ROOTFS=$WORK/rootfs
mkdir -p "$ROOTFS/bin" "$ROOTFS/proc" "$ROOTFS/dev" "$ROOTFS/tmp"
cp "$(command -v busybox)" "$ROOTFS/bin/busybox"
for a in true sh echo; do ln -s busybox "$ROOTFS/bin/$a"; done

# Registers the image once, and checks both commands work.
"$BENCH" --data "$WORK/data" --rootfs "$ROOTFS" -- /bin/true
BWRAP="bwrap --ro-bind $ROOTFS / --proc /proc --dev /dev --tmpfs /tmp --unshare-all --share-net --die-with-parent --new-session /bin/true"
$BWRAP

hyperfine -N --warmup 5 --runs "$RUNS" --export-json "$WORK/result.json" \
    -n sandbox "$BENCH --data $WORK/data --rootfs $ROOTFS -- /bin/true" \
    -n bwrap "$BWRAP"

stat() { jq -r --arg n "$1" --arg f "$2" '.results[] | select(.command == $n) | .[$f]' "$WORK/result.json"; }
ms() { awk -v s="$1" 'BEGIN { printf "%.2f", s * 1000 }'; }
S_MEAN=$(stat sandbox mean); S_MED=$(stat sandbox median); S_SD=$(stat sandbox stddev)
B_MEAN=$(stat bwrap mean); B_MED=$(stat bwrap median); B_SD=$(stat bwrap stddev)
RATIO=$(awk -v a="$S_MEAN" -v b="$B_MEAN" 'BEGIN { printf "%.2f", a / b }')
KERNEL=$(uname -r)
CPUS=$(nproc)
DATE=$(date -u +%Y-%m-%d)

REPORT=$(cat <<MD

## Sandbox (issue 8)

\`bench/sandbox.sh\` ($DATE, kernel $KERNEL, $CPUS CPUs, $RUNS runs each, hyperfine -N, 5 warm-ups).
One run of \`/bin/true\` from a busybox rootfs. **sandbox**: \`examples/sandbox_bench\` = process start +
create (rootfs clone, policy) + start (monitor, Landlock + seccomp + caps) + wait + remove.
**bwrap**: \`$BWRAP\` (ro-bind rootfs, all namespaces but net, new session; no seccomp filter).

| command | mean (ms) | median (ms) | stddev (ms) |
|---|---|---|---|
| sandbox | $(ms "$S_MEAN") | $(ms "$S_MED") | $(ms "$S_SD") |
| bwrap | $(ms "$B_MEAN") | $(ms "$B_MED") | $(ms "$B_SD") |

Ratio sandbox / bwrap (mean): **$RATIO×** (target ≤ 1.5×).
MD
)
echo "$REPORT"
if [ -n "${APPEND_DOCS:-}" ]; then
    echo "$REPORT" >> "$ROOT/docs/benchmarks.md"
fi
