#!/usr/bin/env bash
# Benchmark of the `sandbox` isolation (issue 8): one full run of /bin/true
# (create + start + wait + remove, through examples/sandbox_bench.rs) against
# bubblewrap with comparable confinement (read-only rootfs, every namespace
# but the network, --die-with-parent, --new-session). A third row times the
# same through the CLI, `zlayer run --rm --isolation sandbox` of the bundled
# busybox image, which adds the zlayer process, its catalog and log follow.
#
# Usage: bench/sandbox.sh            (RUNS=100 by default)
#   RUNS=N          number of timed runs of each command
#   SKIP_BUILD=1    use already built binaries from $CARGO_TARGET_DIR (or ./target)
#   APPEND_DOCS=1   append the figures to docs/benchmarks.md
#   SANDBOX_DATA=D  put the sandbox's state (container dirs, image copies) under D;
#                   default: a temp dir under /tmp
# Per-phase wall times of one run: SANDBOX_BENCH_PHASES=1 $BENCH --data D --rootfs R -- /bin/true
# Needs: cargo, hyperfine, jq, bwrap (bubblewrap), busybox-static; perf (optional, CPU time).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-100}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
for tool in hyperfine jq bwrap busybox; do
    command -v "$tool" >/dev/null || { echo "sandbox.sh: $tool is required" >&2; exit 2; }
done
if [ -z "${SKIP_BUILD:-}" ]; then
    (cd "$ROOT" && cargo build --release -p zlayer-sandbox --example sandbox_bench --bins -p zlayer-cli)
    "$ROOT/scripts/build-static"
fi
BENCH=$TARGET/release/examples/sandbox_bench
[ -x "$BENCH" ] && [ -x "$TARGET/release/zlayer-sandbox-shim" ] || {
    echo "sandbox.sh: build $BENCH and $TARGET/release/zlayer-sandbox-shim first" >&2; exit 2; }

WORK=$(mktemp -d /tmp/zl-bench-sbx.XXXXXX)
if [ -n "${SANDBOX_DATA:-}" ]; then
    DATA=$(mktemp -d "$SANDBOX_DATA/zl-bench-sbx.XXXXXX")
else
    DATA=$WORK/data
fi
trap 'rm -rf "$WORK" "$DATA"' EXIT
mkdir -p "$DATA"
FSTYPE=$(findmnt -no FSTYPE -T "$DATA" 2>/dev/null || stat -f -c %T "$DATA")
ROOTFS=$WORK/rootfs
mkdir -p "$ROOTFS/bin" "$ROOTFS/proc" "$ROOTFS/dev" "$ROOTFS/tmp"
cp "$(command -v busybox)" "$ROOTFS/bin/busybox"
for a in true sh echo; do ln -s busybox "$ROOTFS/bin/$a"; done

# Registers the image once, and checks the commands work.
"$BENCH" --data "$DATA" --rootfs "$ROOTFS" -- /bin/true
# The same through the CLI, as a user runs it: `zlayer run --rm --isolation
# sandbox` of the bundled busybox image (from the image store).
# The CLI runs from an installed copy, as `scripts/setup` installs it
# (install(1) copies): a binary the linker has just written sits in the page
# cache in small folios and takes many more page faults at every exec than
# the same file once copied (~0.7 ms per run here; see docs/benchmarks.md).
BIN=$WORK/bin
mkdir -p "$BIN"
for b in zlayer zlayer-shim zlayer-sandbox-shim zlayer-dns; do
    [ -x "$TARGET/release/$b" ] && install -m 0755 "$TARGET/release/$b" "$BIN/$b"
done
# The static monitor from scripts/build-static, as scripts/setup installs
# it; both rows use it.
SHIM_KIND=dynamic
STATIC_SHIM=$TARGET/x86_64-unknown-linux-gnu/release/zlayer-sandbox-shim
if [ -x "$STATIC_SHIM" ]; then
    install -m 0755 "$STATIC_SHIM" "$BIN/zlayer-sandbox-shim"
    SHIM_KIND=static
fi
export ZLAYER_SANDBOX_SHIM=$BIN/zlayer-sandbox-shim
ZL="$BIN/zlayer --root $DATA/zl --embedded"
CLI=""
if [ -x "$BIN/zlayer" ]; then
    $ZL image builtin >/dev/null
    CLI="$ZL run --rm --isolation sandbox localhost/zlayer/busybox true"
    $CLI
fi
BWRAP="bwrap --ro-bind $ROOTFS / --proc /proc --dev /dev --tmpfs /tmp --unshare-all --share-net --die-with-parent --new-session /bin/true"
$BWRAP

hyperfine -N --warmup 5 --runs "$RUNS" --export-json "$WORK/result.json" \
    -n sandbox "$BENCH --data $DATA --rootfs $ROOTFS -- /bin/true" \
    -n bwrap "$BWRAP" \
    ${CLI:+-n zlayer-run "$CLI"}

stat() { jq -r --arg n "$1" --arg f "$2" '.results[] | select(.command == $n) | .[$f]' "$WORK/result.json"; }
ms() { awk -v s="$1" 'BEGIN { printf "%.2f", s * 1000 }'; }
S_MEAN=$(stat sandbox mean); S_MED=$(stat sandbox median); S_SD=$(stat sandbox stddev)
B_MEAN=$(stat bwrap mean); B_MED=$(stat bwrap median); B_SD=$(stat bwrap stddev)
RATIO=$(awk -v a="$S_MEAN" -v b="$B_MEAN" 'BEGIN { printf "%.2f", a / b }')
CLI_ROW="| \`zlayer run --rm --isolation sandbox\` | (zlayer binary not built) | | |"
if [ -n "$CLI" ]; then
    Z_MEAN=$(stat zlayer-run mean); Z_SD=$(stat zlayer-run stddev); Z_MED=$(stat zlayer-run median)
    CLI_ROW="| \`zlayer run --rm --isolation sandbox\` (CLI, installed copy, store image): hyperfine mean ± stddev, median (ms) | $(ms "$Z_MEAN") ± $(ms "$Z_SD"), $(ms "$Z_MED") | $(ms "$B_MEAN") | **$(awk -v a="$Z_MEAN" -v b="$B_MEAN" 'BEGIN { printf "%.2f", a / b }')×** |"
fi

# Interleaved loops: one sandbox run then one bwrap run, RUNS times, so both
# see the same background load (a shared machine makes hyperfine's
# back-to-back batches drift); then the same for the CLI and bwrap (a loop of
# its own: the sandbox runs' background deletions would otherwise slow the
# CLI's inode allocations on the same filesystem).
: > "$WORK/loop.txt"
for _ in $(seq "$RUNS"); do
    t0=$EPOCHREALTIME
    "$BENCH" --data "$DATA" --rootfs "$ROOTFS" -- /bin/true
    t1=$EPOCHREALTIME
    $BWRAP
    t2=$EPOCHREALTIME
    echo "$t0 $t1 $t2" >> "$WORK/loop.txt"
done
: > "$WORK/cli-loop.txt"
if [ -n "$CLI" ]; then
    for _ in $(seq "$RUNS"); do
        t0=$EPOCHREALTIME
        $CLI
        t1=$EPOCHREALTIME
        $BWRAP
        t2=$EPOCHREALTIME
        echo "$t0 $t1 $t2" >> "$WORK/cli-loop.txt"
    done
fi
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) m = a[(NR + 1) / 2]; else m = (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.2f", m }'; }
L_S=$(awk '{ print ($2 - $1) * 1000 }' "$WORK/loop.txt" | median)
L_B=$(awk '{ print ($3 - $2) * 1000 }' "$WORK/loop.txt" | median)
L_RATIO=$(awk -v a="$L_S" -v b="$L_B" 'BEGIN { printf "%.2f", a / b }')
if [ -n "$CLI" ]; then
    L_Z=$(awk '{ print ($2 - $1) * 1000 }' "$WORK/cli-loop.txt" | median)
    L_ZB=$(awk '{ print ($3 - $2) * 1000 }' "$WORK/cli-loop.txt" | median)
    CLI_ROW="$CLI_ROW
| the same CLI run, interleaved with bwrap, median (ms) | $L_Z | $L_ZB | **$(awk -v a="$L_Z" -v b="$L_ZB" 'BEGIN { printf "%.2f", a / b }')×** |"
fi
# CPU time (user + system of the whole process tree), insensitive to load.
cpu() { perf stat -x, -r 20 -e task-clock "$@" 2>&1 >/dev/null | awk -F, '/task-clock/ { printf "%.2f", $1 }'; }
if command -v perf >/dev/null; then
    C_S=$(cpu "$BENCH" --data "$DATA" --rootfs "$ROOTFS" -- /bin/true)
    C_B=$(cpu $BWRAP)
else
    C_S=n/a; C_B=n/a
fi
KERNEL=$(uname -r)
CPUS=$(nproc)
LOAD=$(cut -d' ' -f1 /proc/loadavg)
DATE=$(date -u +%Y-%m-%d)

REPORT=$(cat <<MD

## Sandbox (issue 8)

\`bench/sandbox.sh\` ($DATE, kernel $KERNEL, $CPUS CPUs, load average $LOAD at the end, $RUNS runs each).
One run of \`/bin/true\` from a busybox rootfs; sandbox state on **$FSTYPE**; $SHIM_KIND sandbox monitor. **sandbox**: \`examples/sandbox_bench\` = process start +
create (overlay rootfs on a tmpfs as root, else a clone; policy) + start (monitor, Landlock + seccomp + caps) + wait +
remove (unmount, rename into the trash; the deletion runs on a thread, and what is left at exit is swept by the next run).
**bwrap**: \`bwrap --ro-bind ROOTFS / --proc /proc --dev /dev --tmpfs /tmp --unshare-all --share-net
--die-with-parent --new-session /bin/true\` (all namespaces but net, new session; no seccomp filter).

| measure | sandbox | bwrap | ratio |
|---|---|---|---|
| hyperfine -N mean ± stddev (ms) | $(ms "$S_MEAN") ± $(ms "$S_SD") | $(ms "$B_MEAN") ± $(ms "$B_SD") | **$RATIO×** |
| hyperfine median (ms) | $(ms "$S_MED") | $(ms "$B_MED") | |
| interleaved loop, median (ms) | $L_S | $L_B | **$L_RATIO×** |
| CPU time per run, perf task-clock (ms) | $C_S | $C_B | |
$CLI_ROW

Target: ≤ 1.5× bwrap.
MD
)
echo "$REPORT"
if [ -n "${APPEND_DOCS:-}" ]; then
    echo "$REPORT" >> "$ROOT/docs/benchmarks.md"
fi
