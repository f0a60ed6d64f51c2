#!/usr/bin/env bash
# Benchmark of bridge networking (issue 6): host -> container throughput and
# TCP connection setup rate through a port published on 127.0.0.1 (kernel
# DNAT, veth, bridge), against the same load on host loopback. Driven by
# crates/zlayer-network/examples/net_bench.rs, which makes its own network
# namespace and bridge (zlbench0, 10.213.200.0/24) and removes them.
#
# Usage: bench/net.sh            (RUNS=3 by default; the median run is kept)
#   RUNS=N          number of runs
#   NET_BENCH_SECS  seconds per throughput measurement (default 5)
#   ZLAYER_NET_MTU  MTU of the bridge and veth (default 65535; 1500 = Ethernet)
#   SKIP_BUILD=1    use the already built example from $CARGO_TARGET_DIR (or ./target)
#   APPEND_DOCS=1   append the figures to docs/benchmarks.md
# Needs: root, cargo, iproute2, nftables, util-linux (nsenter).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-3}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
if [ -z "${SKIP_BUILD:-}" ]; then
    (cd "$ROOT" && cargo build --release -p zlayer-network --example net_bench)
fi
BENCH=$TARGET/release/examples/net_bench
[ -x "$BENCH" ] || { echo "net.sh: build $BENCH first" >&2; exit 2; }

LOAD=$(cut -d" " -f1-3 /proc/loadavg)
OUT=$(mktemp -d /tmp/zl-bench-net.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
for i in $(seq 1 "$RUNS"); do
    "$BENCH" > "$OUT/run$i" 2>/dev/null
    echo "run $i: $(tr '\n' ' ' < "$OUT/run$i")"
done

# Median of one figure over the runs.
median() {
    grep -h "^$1 " "$OUT"/run* | awk '{print $2}' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
LOOP=$(median loopback_gbit); PUB=$(median published_gbit); RATIO=$(median ratio)
LCPS=$(median loopback_conn_per_s); PCPS=$(median published_conn_per_s)
ATT=$(median attach_ms); DET=$(median detach_ms)
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
SUMMARY=$(cat <<MD

## Networking (issue 6)

\`bench/net.sh\` ($(date -u +%Y-%m-%d), $(nproc) CPUs, ${CPU}, kernel $(uname -r), load average before the runs ${LOAD}, median of ${RUNS} runs,
${NET_BENCH_SECS:-5} s per throughput run, one TCP stream with 256 KiB writes, bridge/veth MTU ${ZLAYER_NET_MTU:-65535}):

| path | throughput | TCP connections/s |
|---|---|---|
| host -> host loopback | ${LOOP} Gbit/s | ${LCPS} |
| host -> container via \`-p 127.0.0.1:P:5201\` (DNAT, veth, bridge) | ${PUB} Gbit/s | ${PCPS} |

Throughput ratio published/loopback: **${RATIO}** (target >= 0.8). Attaching a namespace
(bridge, veth, address, nft rules, lease) took ${ATT} ms, detaching ${DET} ms.
MD
)
echo "$SUMMARY"
if [ -n "${APPEND_DOCS:-}" ]; then
    echo "$SUMMARY" >> "$ROOT/docs/benchmarks.md"
fi
