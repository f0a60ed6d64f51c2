#!/usr/bin/env bash
# Load (issue 17): three container engines behind the Docker Engine API,
# driven by the same stock `docker` CLI, side by side in one run:
#
#   zlayer   `zlayer daemon` on its own --root and sockets (this build)
#   podman   `podman system service` on its own socket and temp root (runc,
#            cgroupfs, overlay; bench/podman.sh's setup)
#   docker   Debian's Docker engine (`dockerd` from docker.io, with the
#            containerd it starts itself) on its own socket, --data-root,
#            --exec-root and pidfile; `--bridge=none --iptables=false`, so
#            it leaves the host's network alone
#
# The same image everywhere: the busybox fixture (examples/busybox_archive)
# loaded into zlayer; podman and docker import the files of its unpacked
# layer (the fixture's hardlink entries carry mode 0644, which both would
# apply to /bin/busybox on a plain load). Every command runs with
# `--network none` (dockerd has no bridge here).
#
# Figures:
#   burst    N concurrent `docker run --rm --network none IMG true` (ROUNDS
#            rounds, the engines in turn): failures, containers/s (N over the
#            wall time from the first command's start to the last one's end),
#            p50 and p99 of the per-command latency (each command's own start
#            and end, $EPOCHREALTIME)
#   cycles   the daemon's RSS (VmRSS) and open fds before and after CYCLES
#            sequential `docker run --rm` (create, attach, start, wait, rm);
#            zlayer's must stay under a bound: fds +FD_SLACK, RSS +RSS_SLACK_MIB
#            (podman and docker with PEER_CYCLES, for comparison)
#   left     `docker ps -aq` on every engine afterwards; for zlayer also its
#            state directories, mounts and processes under its root
#
# Usage: bench/load.sh
#   N=200            commands per burst
#   ROUNDS=3         bursts per engine
#   CYCLES=1000      sequential cycles against zlayer
#   PEER_CYCLES=N    sequential cycles against podman and docker (default CYCLES)
#   SKIP_BUILD=1     use built binaries from $CARGO_TARGET_DIR (or ./target)
#   SKIP_PEERS=1     zlayer only
#   APPEND_DOCS=1    append the tables to docs/benchmarks.md
# Needs: root, bash 5, cargo, podman, runc, dockerd + containerd (Debian's
# docker.io), the docker CLI at /usr/local/bin/docker (or $DOCKER).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-200}
ROUNDS=${ROUNDS:-3}
CYCLES=${CYCLES:-1000}
PEER_CYCLES=${PEER_CYCLES:-$CYCLES}
FD_SLACK=${FD_SLACK:-16}
RSS_SLACK_MIB=${RSS_SLACK_MIB:-16}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
DOCKER=${DOCKER:-/usr/local/bin/docker}
[ "$(id -u)" = 0 ] || { echo "load.sh: run as root" >&2; exit 2; }
tools=(awk sort "$DOCKER")
[ -n "${SKIP_PEERS:-}" ] || tools+=(podman runc dockerd containerd)
for tool in "${tools[@]}"; do
    command -v "$tool" >/dev/null || { echo "load.sh: $tool is required (dockerd: apt-get install docker.io)" >&2; exit 2; }
done
# shellcheck source=bench/zlayer-build.sh
. "$ROOT/bench/zlayer-build.sh"
zlayer_release_bins load.sh zlayer zlayer-shim examples/busybox_archive

WORK=$(mktemp -d /tmp/zl-bench-load.XXXXXX)
IMG=localhost/zlayer/busybox:latest
Z="$BIN/zlayer --root $WORK/zl --socket $WORK/zlayer.sock"
P="podman --root $WORK/podman --runroot $WORK/podman-run --storage-driver overlay"
ZL_PID='' PODMAN_PID='' DOCKERD_PID=''
# Client per engine: `docker` with DOCKER_HOST on that engine's socket.
client() { env DOCKER_HOST="unix://$WORK/$1.sock" DOCKER_CONFIG="$WORK/dockercfg" DOCKER_CLI_HINTS=false "$DOCKER" "${@:2}"; }
stop_pid() {
    local pid=$1
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
}
cleanup() {
    set +e
    if [ -n "$DOCKERD_PID" ]; then
        client docker ps -aq 2>/dev/null | xargs -r env DOCKER_HOST="unix://$WORK/docker.sock" DOCKER_CONFIG="$WORK/dockercfg" "$DOCKER" rm -f >/dev/null 2>&1
        stop_pid "$DOCKERD_PID"
    fi
    stop_pid "$PODMAN_PID"
    stop_pid "$ZL_PID"
    $Z --embedded ps -aq 2>/dev/null | xargs -r $Z --embedded rm -f >/dev/null 2>&1
    if [ -z "${SKIP_PEERS:-}" ]; then
        $P rm -af -t 0 >/dev/null 2>&1
        $P system reset -f >/dev/null 2>&1
    fi
    grep -F "$WORK" /proc/self/mountinfo | awk '{ print $5 }' | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

# --- the image in every engine -------------------------------------------
"$BIN/examples/busybox_archive" "$WORK/busybox.tar" "$IMG" >/dev/null
$Z --embedded load -i "$WORK/busybox.tar" >/dev/null
# Unpacks the layer snapshot (the peers import its files).
$Z --embedded run --rm --network none $IMG true
mkdir -p "$WORK/dockercfg"

wait_socket() {
    for _ in $(seq 300); do client "$1" version >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "load.sh: $1 does not answer on $WORK/$1.sock" >&2
    exit 1
}

$Z daemon --docker-socket "$WORK/zl.sock" >"$WORK/zlayer-daemon.log" 2>&1 &
ZL_PID=$!
wait_socket zl
ENGINES=(zl)

if [ -z "${SKIP_PEERS:-}" ]; then
    # shellcheck source=bench/podman.sh
    . "$ROOT/bench/podman.sh"
    podman_setup "$WORK" "$IMG"
    $P system service --time=0 "unix://$WORK/podman.sock" >"$WORK/podman-service.log" 2>&1 &
    PODMAN_PID=$!
    wait_socket podman

    dockerd --host "unix://$WORK/docker.sock" --data-root "$WORK/docker" \
        --exec-root "$WORK/dx" --pidfile "$WORK/dockerd.pid" \
        --bridge=none --iptables=false --ip-masq=false --ip-forward=false \
        --storage-driver overlay2 >"$WORK/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    wait_socket docker
    rootfs=$(ls -d "$WORK"/zl/snapshots/sha256/*/fs | head -1)
    tar -C "$rootfs" -cf - . | client docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["sh"]' - "$IMG" >/dev/null
    ENGINES+=(podman docker)
fi

label() { case $1 in zl) echo zlayer ;; podman) echo "podman service" ;; docker) echo "dockerd (docker.io)" ;; esac; }
pid_of() { case $1 in zl) echo "$ZL_PID" ;; podman) echo "$PODMAN_PID" ;; docker) echo "$DOCKERD_PID" ;; esac; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }

# Every engine runs the command (and warms its caches).
for e in "${ENGINES[@]}"; do
    for _ in 1 2 3; do client "$e" run --rm --network none $IMG true; done
done

# --- burst: N concurrent `docker run --rm` --------------------------------
# one ENGINE I: one command; prints "I START END RC" (seconds).
one() {
    local t0 t1 rc=0
    t0=$EPOCHREALTIME
    client "$1" run --rm --network none $IMG true >/dev/null 2>"$WORK/burst/$1.$2.err" || rc=$?
    t1=$EPOCHREALTIME
    echo "$2 $t0 $t1 $rc"
}
# burst ENGINE ROUND: N at once; sets F (failures), RATE, P50 and P99 (ms).
burst() {
    local e=$1 r=$2 out="$WORK/burst/$1.$2" jobs=() i
    mkdir -p "$WORK/burst"
    : >"$out"
    for i in $(seq "$N"); do
        one "$e" "$i" >>"$out" &
        jobs+=($!)
    done
    wait "${jobs[@]}"
    [ "$(wc -l <"$out")" = "$N" ] || { echo "load.sh: $(wc -l <"$out") of $N commands reported" >&2; exit 1; }
    read -r F RATE < <(awk '{ if ($4 != 0) f++; if (min == "" || $2 < min) min = $2; if ($3 > max) max = $3 }
         END { printf "%d %.1f\n", f, NR / (max - min) }' "$out")
    read -r P50 P99 < <(awk '{ print ($3 - $2) * 1000 }' "$out" | sort -g |
        awk '{ v[NR] = $1 } END { printf "%.0f %.0f\n", v[int(NR * 0.50 + 0.999)], v[int(NR * 0.99 + 0.999)] }')
}

declare -A FAIL RATES P50S P99S
for r in $(seq "$ROUNDS"); do
    for e in "${ENGINES[@]}"; do
        echo "burst $r/$ROUNDS: $(label "$e"), $N x docker run --rm ..." >&2
        burst "$e" "$r"
        echo "  $F failed, $RATE containers/s, p50 $P50 ms, p99 $P99 ms" >&2
        FAIL[$e]=$(( ${FAIL[$e]:-0} + F ))
        RATES[$e]="${RATES[$e]:-} $RATE" P50S[$e]="${P50S[$e]:-} $P50" P99S[$e]="${P99S[$e]:-} $P99"
        if [ "$F" != 0 ]; then
            echo "  first errors:" >&2
            cat "$WORK/burst/$e".*.err | sort | uniq -c | sort -rn | head -5 >&2
        fi
        rm -f "$WORK/burst/$e".*.err
    done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# --- cycles: RSS and fds across sequential runs ---------------------------
declare -A RSS0 RSS1 FD0 FD1 CYC
for e in "${ENGINES[@]}"; do
    n=$PEER_CYCLES
    [ "$e" = zl ] && n=$CYCLES
    CYC[$e]=$n
    pid=$(pid_of "$e")
    RSS0[$e]=$(rss_kib "$pid") FD0[$e]=$(fds "$pid")
    echo "cycles: $(label "$e"), $n x docker run --rm ..." >&2
    t0=$EPOCHREALTIME
    for _ in $(seq "$n"); do
        client "$e" run --rm --network none $IMG true >/dev/null || FAIL[$e.cyc]=$(( ${FAIL[$e.cyc]:-0} + 1 ))
    done
    CYC[$e.rate]=$(awk -v n="$n" -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", n / (b - a) }')
    sleep 1
    RSS1[$e]=$(rss_kib "$pid") FD1[$e]=$(fds "$pid")
done

# --- nothing left ---------------------------------------------------------
LEFT=''
for e in "${ENGINES[@]}"; do
    n=$(client "$e" ps -aq | wc -l)
    [ "$n" = 0 ] || LEFT="$LEFT $(label "$e"): $n containers in ps -a;"
done
dirs=$(find "$WORK/zl/containers" -mindepth 1 -maxdepth 1 ! -name '.*' | wc -l)
[ "$dirs" = 0 ] || LEFT="$LEFT zlayer: $dirs state dirs;"
mounts=$(grep -cF "$WORK/zl/containers" /proc/self/mountinfo || true)
[ "$mounts" = 0 ] || LEFT="$LEFT zlayer: $mounts mounts;"
monitors=$(pgrep -fc -- "^$BIN/zlayer-shim" || true)
[ "$monitors" = 0 ] || LEFT="$LEFT zlayer: $monitors monitors;"

# --- the tables -------------------------------------------------------------
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
FASTEST_PEER=''
for e in podman docker; do
    [ -n "${RATES[$e]:-}" ] || continue
    m=$(echo "${RATES[$e]}" | median)
    if [ -z "$FASTEST_PEER" ] || awk -v a="$m" -v b="$(echo "${RATES[$FASTEST_PEER]}" | median)" 'BEGIN { exit !(a > b) }'; then
        FASTEST_PEER=$e
    fi
done
SUMMARY=$(
    echo "Measured $(date -u +%Y-%m-%d), N=$N concurrent \`docker run --rm --network none busybox true\` × ROUNDS=$ROUNDS per engine (engines in turn), docker CLI $("$DOCKER" version -f '{{.Client.Version}}' 2>/dev/null), load $(cut -d' ' -f1-3 /proc/loadavg) at the end:"
    echo
    echo "| engine | failures | containers/s per round (median) | p50 latency per round (ms) | p99 latency per round (ms) | throughput / fastest peer's |"
    echo "| --- | --- | --- | --- | --- | --- |"
    for e in "${ENGINES[@]}"; do
        m=$(echo "${RATES[$e]}" | median)
        ratio=-
        [ -n "$FASTEST_PEER" ] && ratio=$(awk -v a="$m" -v b="$(echo "${RATES[$FASTEST_PEER]}" | median)" 'BEGIN { printf "%.2f", a / b }')
        echo "| $(label "$e") | ${FAIL[$e]} of $((N * ROUNDS)) |$(echo "${RATES[$e]}" | sed 's/ /, /g; s/^, / /') ($m) |$(echo "${P50S[$e]}" | sed 's/ /, /g; s/^, / /') |$(echo "${P99S[$e]}" | sed 's/ /, /g; s/^, / /') | $ratio |"
    done
    echo
    echo "Sequential \`docker run --rm\` cycles: the daemon process's RSS and open fds before and after (zlayer bound: fds +$FD_SLACK, RSS +$RSS_SLACK_MIB MiB):"
    echo
    echo "| engine | cycles | failures | cycles/s | RSS before → after (MiB) | fds before → after |"
    echo "| --- | --- | --- | --- | --- | --- |"
    for e in "${ENGINES[@]}"; do
        echo "| $(label "$e") | ${CYC[$e]} | ${FAIL[$e.cyc]:-0} | ${CYC[$e.rate]} | $(mib "${RSS0[$e]}") → $(mib "${RSS1[$e]}") | ${FD0[$e]} → ${FD1[$e]} |"
    done
    echo
    echo "Left behind:${LEFT:- nothing (ps -a empty everywhere; no zlayer state dir, mount or monitor)}"
)
echo
echo "$SUMMARY"
if [ -n "${APPEND_DOCS:-}" ]; then
    printf '\n%s\n' "$SUMMARY" >> "$ROOT/docs/benchmarks.md"
fi
status=0
[ -z "$LEFT" ] || status=1
[ "${FAIL[zl]}" = 0 ] && [ "${FAIL[zl.cyc]:-0}" = 0 ] || { echo "load.sh: zlayer had failures" >&2; status=1; }
[ $((FD1[zl] - FD0[zl])) -le "$FD_SLACK" ] || { echo "load.sh: zlayer's fds grew beyond +$FD_SLACK" >&2; status=1; }
[ $((RSS1[zl] - RSS0[zl])) -le $((RSS_SLACK_MIB * 1024)) ] || { echo "load.sh: zlayer's RSS grew beyond +$RSS_SLACK_MIB MiB" >&2; status=1; }
exit $status
