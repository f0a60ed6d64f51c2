#!/usr/bin/env bash
# Density (issue 16): how many idle workloads a node holds, and what each
# costs, through the `zlayer` CLI (embedded: no daemon), side by side with
# podman in the same run.
#
#   zlayer container  N x `zlayer --embedded run -d --network none IMG sleep 3600`
#   zlayer sandbox    N x `zlayer --embedded run -d --isolation sandbox IMG sleep 3600`
#   podman            N x `podman run -d --network none IMG sleep 3600`
#                     (runc, cgroupfs, overlay, conmon; its own temp root)
#
# Figures per phase:
#   start rate        containers started per second (one CLI call each,
#                     CONCURRENCY at a time)
#   memory/container  host memory: the drop in MemAvailable (page cache
#                     dropped before both readings) over N; and the PSS of
#                     the processes each container adds (monitor + workload
#                     for zlayer, conmon + workload for podman)
#   ps                `ps -a` wall time with every container listed (zlayer:
#                     both phases, 2N; podman: N), hyperfine median
#   removal           `rm -f` of all of them, then a check that nothing is
#                     left: state dirs, mounts, cgroups, processes
#
# Usage: bench/density.sh
#   N=500          containers per phase
#   CONCURRENCY=4  CLI calls in flight
#   SKIP_BUILD=1   use built binaries from $CARGO_TARGET_DIR (or ./target)
#   SKIP_PODMAN=1  zlayer only
#   APPEND_DOCS=1  append the table to docs/benchmarks.md
# Needs: root, cargo, hyperfine, jq, podman, runc.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-500}
CONCURRENCY=${CONCURRENCY:-4}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
[ "$(id -u)" = 0 ] || { echo "density.sh: run as root" >&2; exit 2; }
for tool in hyperfine jq xargs; do
    command -v "$tool" >/dev/null || { echo "density.sh: $tool is required" >&2; exit 2; }
done
[ -n "${SKIP_PODMAN:-}" ] || command -v podman >/dev/null || { echo "density.sh: podman is required (or SKIP_PODMAN=1)" >&2; exit 2; }
# shellcheck source=bench/zlayer-build.sh
. "$ROOT/bench/zlayer-build.sh"
zlayer_release_bins density.sh zlayer zlayer-shim zlayer-sandbox-shim examples/busybox_archive

WORK=$(mktemp -d /tmp/zl-bench-density.XXXXXX)
Z="$BIN/zlayer --root $WORK/zl --embedded"
P="podman --root $WORK/podman --runroot $WORK/podman-run --storage-driver overlay"
cleanup() {
    $Z ps -aq 2>/dev/null | xargs -r $Z rm -f >/dev/null 2>&1 || true
    [ -n "${SKIP_PODMAN:-}" ] || { $P rm -af -t 0 >/dev/null 2>&1 || true; $P system reset -f >/dev/null 2>&1 || true; }
    grep -F "$WORK" /proc/self/mountinfo | awk '{ print $5 }' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

IMG=localhost/zlayer/busybox:latest
"$BIN/examples/busybox_archive" "$WORK/busybox.tar" "$IMG" >/dev/null
$Z load -i "$WORK/busybox.tar" >/dev/null
$Z run --rm --network none $IMG true
$Z run --rm --isolation sandbox $IMG true

if [ -z "${SKIP_PODMAN:-}" ]; then
    # shellcheck source=bench/podman.sh
    . "$ROOT/bench/podman.sh"
    podman_setup "$WORK" "$IMG"
    $P run --rm --network none $IMG true
fi

# MemAvailable in KiB, page cache and slab caches dropped first.
avail() { sync; echo 3 > /proc/sys/vm/drop_caches; awk '/^MemAvailable:/ { print $2 }' /proc/meminfo; }
# Total PSS (KiB) of the processes whose command line matches $1 (a
# regular expression over the NUL-separated words joined with spaces).
pss_of() {
    local total=0 pid
    for pid in $(pgrep -f -- "$1" || true); do
        total=$((total + $(awk '/^Pss:/ { print $2 }' "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0)))
    done
    echo "$total"
}
now() { date +%s.%N; }

# start NAME COMMAND...: starts N containers `COMMAND --name NAME-i IMG
# sleep 3600`; sets RATE and MEM_KIB (MemAvailable drop per container).
start_phase() {
    local name=$1; shift
    local before t0 t1
    before=$(avail)
    t0=$(now)
    seq "$N" | xargs -P "$CONCURRENCY" -I{} "$@" --name "$name-{}" "$IMG" sleep 3600 >/dev/null
    t1=$(now)
    sleep 2
    RATE=$(awk -v n="$N" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", n / (b - a) }')
    MEM_KIB=$(awk -v n="$N" -v a="$before" -v b="$(avail)" 'BEGIN { printf "%.0f", (a - b) / n }')
}

ps_ms() {
    hyperfine -N --warmup 2 --runs 10 --export-json "$WORK/ps.json" "$1" >/dev/null
    jq -r '.results[0].median * 1000 | . * 10 | round / 10' "$WORK/ps.json"
}

echo "zlayer: $N containers (--network none)..."
start_phase zc $Z run -d --network none
Z_C_RATE=$RATE Z_C_MEM=$MEM_KIB
# The monitors are this build's binaries; the workloads the `sleep 3600`s.
Z_C_PSS=$(( ($(pss_of "^$BIN/zlayer-shim") + $(pss_of '^sleep 3600$')) / N ))
SLEEPS_BEFORE=$(pss_of '^sleep 3600$')
echo "zlayer: $N sandboxes..."
start_phase zs $Z run -d --isolation sandbox
Z_S_RATE=$RATE Z_S_MEM=$MEM_KIB
Z_S_PSS=$(( ($(pss_of "^$BIN/zlayer-sandbox-shim") + $(pss_of '^sleep 3600$') - SLEEPS_BEFORE) / N ))
LISTED=$($Z ps -aq | wc -l)
[ "$LISTED" = $((2 * N)) ] || { echo "density.sh: zlayer ps lists $LISTED, not $((2 * N))" >&2; exit 1; }
RUNNING=$($Z ps -q | wc -l)
[ "$RUNNING" = $((2 * N)) ] || { echo "density.sh: only $RUNNING of $((2 * N)) are running" >&2; exit 1; }
Z_PS=$(ps_ms "$Z ps -a")
t0=$(now)
$Z ps -aq | xargs $Z rm -f >/dev/null
Z_RM=$(awk -v a="$t0" -v b="$(now)" -v n=$((2 * N)) 'BEGIN { printf "%.1f", n / (b - a) }')

# Nothing left: state dirs, mounts, cgroups, processes.
LEFT=""
dirs=$(find "$WORK/zl/containers" -mindepth 1 -maxdepth 1 ! -name '.*' | wc -l)
[ "$dirs" = 0 ] || LEFT="$LEFT $dirs state dirs;"
mounts=$(grep -cF "$WORK/zl/containers" /proc/self/mountinfo || true)
[ "$mounts" = 0 ] || LEFT="$LEFT $mounts mounts;"
cgroups=$(find /sys/fs/cgroup -maxdepth 3 -name "zlayer-*-zc-*" 2>/dev/null | wc -l)
[ "$cgroups" = 0 ] || LEFT="$LEFT $cgroups cgroups;"
# Monitors hold their log open; QEMU would name the root.
holders=0
for fd in /proc/[0-9]*/fd; do
    ls -l "$fd" 2>/dev/null | grep -qF "$WORK/zl/" && holders=$((holders + 1))
done
[ "$holders" = 0 ] || LEFT="$LEFT $holders processes holding files under the root;"
monitors=$(pgrep -fc -- "^$BIN/zlayer-(sandbox-)?shim" || true)
[ "$monitors" = 0 ] || LEFT="$LEFT $monitors monitors;"
sleeps=$(pgrep -fc '^sleep 3600$' || true)
[ "$sleeps" = 0 ] || LEFT="$LEFT $sleeps workloads;"
[ -z "$LEFT" ] || { echo "density.sh: removal left:$LEFT" >&2; exit 1; }
echo "zlayer: removal left nothing"

P_RATE=- P_MEM=- P_PSS=- P_PS=- P_RM=-
if [ -z "${SKIP_PODMAN:-}" ]; then
    echo "podman: $N containers (--network none)..."
    start_phase pc $P run -d --network none
    P_RATE=$RATE P_MEM=$MEM_KIB
    P_PSS=$(( ($(pss_of "conmon .*$WORK/podman") + $(pss_of '^sleep 3600$')) / N ))
    P_PS=$(ps_ms "$P ps -a")
    t0=$(now)
    $P rm -af -t 0 >/dev/null
    P_RM=$(awk -v a="$t0" -v b="$(now)" -v n="$N" 'BEGIN { printf "%.1f", n / (b - a) }')
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }
mib() { awk -v k="$1" 'BEGIN { if (k == "-") print "-"; else printf "%.2f", k / 1024 }'; }
SUMMARY=$(
    echo "Measured $(date -u +%Y-%m-%d), N=$N per phase, CONCURRENCY=$CONCURRENCY, load $(cut -d' ' -f1-3 /proc/loadavg):"
    echo
    echo "| figure | zlayer container | zlayer sandbox | podman (runc) | zlayer container / podman |"
    echo "| --- | --- | --- | --- | --- |"
    echo "| start rate (containers/s) | $Z_C_RATE | $Z_S_RATE | $P_RATE | $(ratio "$Z_C_RATE" "$P_RATE") (higher is better) |"
    echo "| host memory per container (MiB, MemAvailable drop) | $(mib "$Z_C_MEM") | $(mib "$Z_S_MEM") | $(mib "$P_MEM") | $(ratio "$Z_C_MEM" "$P_MEM") |"
    echo "| PSS per container (MiB, monitor + workload; podman: conmon + workload) | $(mib "$Z_C_PSS") | $(mib "$Z_S_PSS") | $(mib "$P_PSS") | $(ratio "$Z_C_PSS" "$P_PSS") |"
    echo "| \`ps -a\` (ms, median of 10) | $Z_PS with $((2 * N)) listed | | $P_PS with $N listed | $(ratio "$Z_PS" "$P_PS") |"
    echo "| removal (containers/s) | $Z_RM (both phases, one \`rm -f\`) | | $P_RM (\`rm -af\`) | $(ratio "$Z_RM" "$P_RM") (higher is better) |"
)
echo
echo "$SUMMARY"
if [ -n "${APPEND_DOCS:-}" ]; then
    printf '\n%s\n' "$SUMMARY" >> "$ROOT/docs/benchmarks.md"
fi
