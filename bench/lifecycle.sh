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
#    The two alternate run by run (RUNS each), so load changes on a shared
#    machine affect both alike.
# 2. Idle memory: N concurrent `sleep 300` containers; the monitors' RSS and
#    PSS per container, plus the driving process.
#
# Usage: bench/lifecycle.sh
#   RUNS=N          timed runs of each lifecycle command (default 100)
#   IDLE=N          containers for the memory figure (default 50)
#   SKIP_BUILD=1    use already built binaries from $CARGO_TARGET_DIR (or ./target)
#   APPEND_DOCS=1   append the figures to docs/benchmarks.md
#   BENCH_TMP=DIR   where the state, bundle and rootfs go (default /tmp), e.g.
#                   /dev/shm to take the disk's inode allocation out of it
# Needs: root, bash 5, cargo, runc, busybox-static.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-100}
IDLE=${IDLE:-50}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
[ "$(id -u)" = 0 ] || { echo "lifecycle.sh: run as root" >&2; exit 2; }
for tool in runc busybox awk; do
    command -v "$tool" >/dev/null || { echo "lifecycle.sh: $tool is required" >&2; exit 2; }
done
if [ -z "${SKIP_BUILD:-}" ]; then
    (cd "$ROOT" && cargo build --release -p zlayer-container --example lifecycle_bench --bin zlayer-shim)
fi
BENCH=$TARGET/release/examples/lifecycle_bench
SHIM=$TARGET/release/zlayer-shim
[ -x "$BENCH" ] && [ -x "$SHIM" ] || { echo "lifecycle.sh: build $BENCH and $SHIM first" >&2; exit 2; }

WORK=$(mktemp -d "${BENCH_TMP:-/tmp}/zl-bench-ctr.XXXXXX")
cleanup() {
    runc delete -f zlbench >/dev/null 2>&1 || true
    # A failed run may leave a container: unmount before deleting.
    grep -F "$WORK" /proc/self/mountinfo | awk '{ print $5 }' | sort -r | xargs -r -n1 umount -l || true
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

# Alternate the two commands run by run, so load changes on the (shared)
# machine hit both alike; each run is one process, timed with bash's
# microsecond clock.
ZCMD=($Z lifecycle 1)
RCMD=(runc run -b "$WORK/bundle" zlbench)
for _ in 1 2 3 4 5; do "${ZCMD[@]}" >/dev/null; "${RCMD[@]}"; done
: > "$WORK/zlayer.ms"; : > "$WORK/runc.ms"
for _ in $(seq "$RUNS"); do
    t0=$EPOCHREALTIME; "${ZCMD[@]}" >/dev/null; t1=$EPOCHREALTIME
    "${RCMD[@]}"; t2=$EPOCHREALTIME
    echo "$t0 $t1" | awk '{ printf "%.3f\n", ($2 - $1) * 1000 }' >> "$WORK/zlayer.ms"
    echo "$t1 $t2" | awk '{ printf "%.3f\n", ($2 - $1) * 1000 }' >> "$WORK/runc.ms"
done
stats() { sort -n "$1" | awk '{ v[NR] = $1; s += $1; ss += $1 * $1 } END {
    m = s / NR; sd = sqrt(ss / NR - m * m); printf "%.1f %.1f %.1f %.1f %.1f\n", m, sd, v[int((NR + 1) / 2)], v[1], v[NR] }'; }
read -r Z_MEAN Z_SD Z_MED Z_MIN Z_MAX < <(stats "$WORK/zlayer.ms")
read -r RUNC_MEAN RUNC_SD RUNC_MED RUNC_MIN RUNC_MAX < <(stats "$WORK/runc.ms")
echo "zlayer: mean $Z_MEAN ms ± $Z_SD, median $Z_MED, range $Z_MIN … $Z_MAX"
echo "runc:   mean $RUNC_MEAN ms ± $RUNC_SD, median $RUNC_MED, range $RUNC_MIN … $RUNC_MAX"

# CPU time per lifecycle (all processes involved), less sensitive to the
# machine's load than wall time; needs perf.
CPU_LINE="(perf not installed)"
if command -v perf >/dev/null; then
    cpu_ms() { perf stat -x, -e task-clock -- "$@" 2>&1 >/dev/null | awk -F, '/task-clock/ { printf "%.1f", $1 / 20 }'; }
    Z_CPU=$(cpu_ms "$BENCH" --root "$DATA" --shim "$SHIM" lifecycle 20)
    R_CPU=$(cpu_ms sh -c "for i in \$(seq 20); do runc run -b '$WORK/bundle' zlbench; done")
    CPU_LINE="zlayer $Z_CPU ms, runc $R_CPU ms of CPU per lifecycle (perf stat task-clock, 20 runs each)"
fi
echo "cpu: $CPU_LINE"

# Per-phase view from inside one process (no process start-up per run).
$Z lifecycle "$RUNS" | tail -1 | tee "$WORK/inproc.txt"

IDLE_LINE=$($Z idle "$IDLE" | tee /dev/stderr)

RATIO=$(awk -v z="$Z_MEAN" -v r="$RUNC_MEAN" 'BEGIN { printf "%.2f", z / r }')
field() { echo "$IDLE_LINE" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
SUMMARY=$(cat <<EOF
| run | zlayer mean ± σ (median) | runc run mean ± σ (median) | zlayer / runc (mean) |
| --- | --- | --- | --- |
| $(date -u +%Y-%m-%d) RUNS=$RUNS, load $(cut -d' ' -f1 /proc/loadavg) | $Z_MEAN ± $Z_SD ms ($Z_MED) | $RUNC_MEAN ± $RUNC_SD ms ($RUNC_MED) | **$RATIO** |

CPU: $CPU_LINE.
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
