#!/usr/bin/env bash
# Benchmark of the CLI and the Docker API (issue 5): the wall time of
# `run --rm IMAGE true` (create, start, wait, remove) from the command line,
# like for like in both network modes:
#
#   none (a private netns with only `lo`):
#     zlayer         `zlayer --embedded run --rm --network none IMG true`
#     podman         `podman run --rm --network none IMG true` (runc, cgroupfs,
#                    overlay, its own temp root; containers.conf with
#                    `default_ulimits = []` since CAP_SYS_RESOURCE is absent)
#   bridge (each tool's default: a veth on a bridge, an address, NAT):
#     zlayer-bridge  `zlayer --embedded run --rm IMG true`
#     zlayer+daemon  `zlayer run --rm IMG true` while `zlayer daemon` runs
#                    (the CLI hands create/start/rm to it)
#     docker->zlayer the stock docker CLI: `docker run --rm IMG true` against
#                    zlayer's Docker socket
#     podman-bridge  `podman run --rm IMG true` (netavark bridge)
#
# Same image everywhere: the busybox fixture (examples/busybox_archive)
# loaded into zlayer; podman gets the same files by importing the unpacked
# rootfs (the fixture's hardlink entries carry mode 0644, which podman
# applies to /bin/busybox).
#
# Usage: bench/run.sh
#   RUNS=N        runs per command (default 50)
#   SKIP_BUILD=1  use built binaries from $CARGO_TARGET_DIR (or ./target)
#   APPEND_DOCS=1 append the table to docs/benchmarks.md
# Needs: root, cargo, hyperfine, jq, podman, runc, /usr/local/bin/docker.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-50}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
DOCKER=${DOCKER:-/usr/local/bin/docker}
[ "$(id -u)" = 0 ] || { echo "run.sh: run as root" >&2; exit 2; }
for tool in hyperfine jq podman runc "$DOCKER"; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool is required" >&2; exit 2; }
done
# shellcheck source=bench/zlayer-build.sh
. "$ROOT/bench/zlayer-build.sh"
zlayer_release_bins run.sh zlayer zlayer-shim examples/busybox_archive

WORK=$(mktemp -d /tmp/zl-bench-cli.XXXXXX)
# podman's default network is 10.88.0.0/16 too: zlayer's bridge gets a
# subnet and name of its own here so the two never share a route.
export ZLAYER_NET_BRIDGE=zlbench0 ZLAYER_NET_SUBNET=10.77.0.0/16
DAEMON_PID=
cleanup() {
    [ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null || true
    for id in $("$BIN/zlayer" --root "$WORK/zl" --embedded ps -aq 2>/dev/null); do
        "$BIN/zlayer" --root "$WORK/zl" --embedded rm -f "$id" >/dev/null 2>&1 || true
    done
    podman --root "$WORK/podman" --runroot "$WORK/podman-run" rm -af >/dev/null 2>&1 || true
    podman --root "$WORK/podman" --runroot "$WORK/podman-run" system reset -f >/dev/null 2>&1 || true
    ip link del zlbench0 >/dev/null 2>&1 || true
    nft delete table ip zln_zlbench0 >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

IMG=localhost/zlayer/busybox:latest
"$BIN/examples/busybox_archive" "$WORK/busybox.tar" "$IMG" >/dev/null
Z="$BIN/zlayer --root $WORK/zl --socket $WORK/zlayer.sock"
$Z --embedded load -i "$WORK/busybox.tar" >/dev/null
# Unpacks the layer snapshot (podman imports its files below).
$Z --embedded run --rm $IMG true

# shellcheck source=bench/podman.sh
. "$ROOT/bench/podman.sh"
podman_setup "$WORK" "$IMG"

$Z daemon --docker-socket "$WORK/docker.sock" >"$WORK/daemon.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 100); do [ -S "$WORK/docker.sock" ] && break; sleep 0.1; done
D="env DOCKER_HOST=unix://$WORK/docker.sock DOCKER_CONFIG=$WORK/dockercfg $DOCKER"

# Every command works (and warms the page cache).
$Z --embedded run --rm --network none $IMG true
$Z --embedded run --rm $IMG true
$Z run --rm $IMG true
$D run --rm $IMG true
$P run --rm --network none $IMG true
$P run --rm $IMG true

hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$WORK/result.json" \
    -n zlayer "$Z --embedded run --rm --network none $IMG true" \
    -n podman "$P run --rm --network none $IMG true" \
    -n zlayer-bridge "$Z --embedded run --rm $IMG true" \
    -n zlayer+daemon "$Z run --rm $IMG true" \
    -n "docker->zlayer" "$D run --rm $IMG true" \
    -n podman-bridge "$P run --rm $IMG true"

med() { jq -r --arg c "$1" '.results[] | select(.command==$c) | .median * 1000' "$WORK/result.json"; }
mean() { jq -r --arg c "$1" '.results[] | select(.command==$c) | "\(.mean * 1000) \(.stddev * 1000)"' "$WORK/result.json"; }
row() {
    local m peer; m=$(med "$1"); peer=$(med "$2")
    read -r mean sd < <(mean "$1")
    printf '| %s | %.1f | %.1f ± %.1f | %s (%s) |\n' "$1" "$m" "$mean" "$sd" \
        "$(awk -v a="$m" -v b="$peer" 'BEGIN { printf "%.2f", a / b }')" "$2"
}
SUMMARY=$(
    echo "Measured $(date -u +%Y-%m-%d), RUNS=$RUNS, \`run --rm busybox true\`, load $(cut -d' ' -f1-3 /proc/loadavg):"
    echo
    echo "| command | median (ms) | mean ± sd (ms) | median / podman's (same network mode) |"
    echo "| --- | --- | --- | --- |"
    row zlayer podman
    row podman podman
    for c in zlayer-bridge zlayer+daemon "docker->zlayer" podman-bridge; do row "$c" podman-bridge; done
)
echo
echo "$SUMMARY"
if [ -n "${APPEND_DOCS:-}" ]; then
    printf '\n%s\n' "$SUMMARY" >> "$ROOT/docs/benchmarks.md"
fi
