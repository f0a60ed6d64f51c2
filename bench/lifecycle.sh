#!/usr/bin/env bash
# Benchmark of the `container` isolation (issue 4).
#
# 1. Lifecycle: create + start + wait + delete of `true` in the busybox
#    fixture image, one process per run, side by side with `runc run` on a
#    bundle with the same config.json and a copy of the same rootfs:
#      zlayer: examples/lifecycle_bench.rs `lifecycle 1` (ContainerRuntime:
#              overlay rootfs, zlayer-shim monitor, libcontainer, logs, exit
#              record, full cleanup)
#      runc:   `runc run -b BUNDLE ID` (create, start, wait, delete)
# 2. Idle memory: N concurrent `sleep 300` containers; the monitors' RSS and
#    PSS per container, plus the driving process.
#
# Usage: bench/lifecycle.sh
#   RUNS=N          timed runs of each lifecycle command (default 100)
#   IDLE=N          containers for the memory figure (default 50)
#   SKIP_BUILD=1    use already built binaries from $CARGO_TARGET_DIR (or ./target)
#   APPEND_DOCS=1   append the figures to docs/benchmarks.md
# Needs: root, cargo, hyperfine, jq, runc, busybox-static.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-100}
IDLE=${IDLE:-50}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
[ "$(id -u)" = 0 ] || { echo "lifecycle.sh: run as root" >&2; exit 2; }
for tool in hyperfine jq runc busybox; do
    command -v "$tool" >/dev/null || { echo "lifecycle.sh: $tool is required" >&2; exit 2; }
done
if [ -z "${SKIP_BUILD:-}" ]; then
    (cd "$ROOT" && cargo build --release -p zlayer-agent --example lifecycle_bench --bin zlayer-shim)
fi
BENCH=$TARGET/release/examples/lifecycle_bench
SHIM=$TARGET/release/zlayer-shim
[ -x "$BENCH" ] && [ -x "$SHIM" ] || { echo "lifecycle.sh: build $BENCH and $SHIM first" >&2; exit 2; }

WORK=$(mktemp -d /tmp/zl-bench-ctr.XXXXXX)
cleanup() {
    runc delete -f zlbench >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
DATA=$WORK/data
Z="$BENCH --root $DATA --shim $SHIM"

$Z setup
$Z bundle "$WORK/bundle"
# Both commands work (and warm the page cache).
$Z lifecycle 1 >/dev/null
runc run -b "$WORK/bundle" zlbench

hyperfine -N --warmup 5 --runs "$RUNS" --export-json "$WORK/result.json" \
    -n zlayer "$Z lifecycle 1" \
    -n runc "runc run -b $WORK/bundle zlbench"

# Per-phase view from inside one process (no process start-up per run).
$Z lifecycle "$RUNS" | tail -1 | tee "$WORK/inproc.txt"

IDLE_LINE=$($Z idle "$IDLE" | tee /dev/stderr)

read -r Z_MEAN Z_SD RUNC_MEAN RUNC_SD < <(jq -r '
    [.results[] | select(.command=="zlayer") | .mean, .stddev] +
    [.results[] | select(.command=="runc") | .mean, .stddev] | map(. * 1000) | @tsv' "$WORK/result.json")
RATIO=$(awk -v z="$Z_MEAN" -v r="$RUNC_MEAN" 'BEGIN { printf "%.2f", z / r }')
field() { echo "$IDLE_LINE" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
SUMMARY=$(cat <<EOF
| run | zlayer (ms) | runc run (ms) | zlayer / runc |
| --- | --- | --- | --- |
| $(date -u +%Y-%m-%d) RUNS=$RUNS | $(printf %.1f "$Z_MEAN") ± $(printf %.1f "$Z_SD") | $(printf %.1f "$RUNC_MEAN") ± $(printf %.1f "$RUNC_SD") | **$RATIO** |

In-process loop (no process start-up per run): $(cat "$WORK/inproc.txt").

Idle memory, $IDLE concurrent \`sleep 300\` containers: monitor RSS $(field shim_rss_per_container_kib) KiB
per container (PSS $(field shim_pss_per_container_kib) KiB; sum $(field shim_rss_sum_kib) KiB), driving process
RSS $(field agent_rss_kib) KiB (PSS $(field agent_pss_kib) KiB); all $IDLE started in $(field start_all_s) s.
EOF
)
echo
echo "$SUMMARY"
if [ -n "${APPEND_DOCS:-}" ]; then
    printf '\n%s\n' "$SUMMARY" >> "$ROOT/docs/benchmarks.md"
fi
