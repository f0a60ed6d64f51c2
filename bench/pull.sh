#!/usr/bin/env bash
# Image pull + unpack benchmark (issue 3).
#
# Builds a ~200 MiB, 5-layer image (busybox base + 4 random-data gzip layers),
# serves it from a loopback docker-registry, then times, with a fresh store
# for every run:
#   zlayer:         examples/pull (ImageStore::pull + ensure_unpacked)
#   skopeo+umoci:   skopeo copy docker://... oci:DIR  &&  umoci unpack
#   podman:         podman pull (own --root, if podman works here)
# and prints zlayer's time as a ratio of skopeo+umoci's (target <= 0.70).
#
# Env: RUNS (default 5), MIB (default 200), LAYERS (random layers, default 4),
#      CARGO_TARGET_DIR, KEEP=1 to keep the work directory.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-5}
MIB=${MIB:-200}
LAYERS=${LAYERS:-4}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

for tool in docker-registry skopeo umoci hyperfine jq; do
    command -v "$tool" >/dev/null || { echo "pull.sh: $tool is missing (see scripts/deps)" >&2; exit 1; }
done

echo "== building examples (release)" >&2
(cd "$ROOT" && cargo build --release -q -p zlayer-image --example pull --example mkfixture)
BIN="$CARGO_TARGET_DIR/release/examples"

WORK=$(mktemp -d /var/tmp/zlayer-pull-bench.XXXXXX)
REG_PID=""
cleanup() {
    if [ -n "$REG_PID" ]; then kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; fi
    if [ "${KEEP:-0}" != 1 ]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}
trap cleanup EXIT

echo "== building a ${MIB} MiB image with $((LAYERS + 1)) layers" >&2
"$BIN/mkfixture" "$WORK/layout" --layers "$LAYERS" --mib "$MIB" --tag bench >/dev/null

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$WORK/registry.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: 127.0.0.1:$PORT
EOF
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.05
done
REF="127.0.0.1:$PORT/bench/random:latest"
skopeo --insecure-policy copy -q --preserve-digests --dest-tls-verify=false \
    "oci:$WORK/layout:bench" "docker://$REF"
SIZE=$(du -sm "$WORK/layout/blobs" | cut -f1)
echo "== pushed $REF (${SIZE} MiB of blobs)" >&2

HF=(hyperfine --style basic --runs "$RUNS" --warmup 1)

"${HF[@]}" --export-json "$WORK/zlayer.json" \
    --prepare "rm -rf $WORK/zl" \
    -n zlayer "$BIN/pull $WORK/zl $REF --quiet"

"${HF[@]}" --export-json "$WORK/skopeo.json" \
    --prepare "rm -rf $WORK/sk" \
    -n skopeo+umoci \
    "mkdir -p $WORK/sk && skopeo --insecure-policy copy -q --src-tls-verify=false docker://$REF oci:$WORK/sk/oci:bench && umoci unpack --image $WORK/sk/oci:bench $WORK/sk/bundle >/dev/null"

PODMAN_MEAN=""
PODMAN=(podman --root "$WORK/podman/root" --runroot "$WORK/podman/run" --storage-driver overlay)
if command -v podman >/dev/null && "${PODMAN[@]}" pull -q --tls-verify=false "$REF" >/dev/null 2>"$WORK/podman.err"; then
    "${HF[@]}" --export-json "$WORK/podman.json" \
        --prepare "${PODMAN[*]} system reset -f >/dev/null 2>&1 || true; rm -rf $WORK/podman" \
        -n podman "${PODMAN[*]} pull -q --tls-verify=false $REF"
    PODMAN_MEAN=$(jq '.results[0].mean' "$WORK/podman.json")
    "${PODMAN[@]}" system reset -f >/dev/null 2>&1 || true
else
    echo "== podman pull does not work here, skipped: $(tail -n1 "$WORK/podman.err" 2>/dev/null)" >&2
fi

ZL=$(jq '.results[0].mean' "$WORK/zlayer.json")
ZL_SD=$(jq '.results[0].stddev' "$WORK/zlayer.json")
SK=$(jq '.results[0].mean' "$WORK/skopeo.json")
SK_SD=$(jq '.results[0].stddev' "$WORK/skopeo.json")
echo
printf 'image: %s MiB, %s layers, loopback registry, %s runs each, fresh store per run\n' "$SIZE" "$((LAYERS + 1))" "$RUNS"
printf 'zlayer pull+unpack:   %.3f s ± %.3f\n' "$ZL" "$ZL_SD"
printf 'skopeo copy + umoci:  %.3f s ± %.3f\n' "$SK" "$SK_SD"
if [ -n "$PODMAN_MEAN" ]; then printf 'podman pull:          %.3f s\n' "$PODMAN_MEAN"; fi
RATIO=$(python3 -c "print(f'{$ZL/$SK:.2f}')")
echo "ratio zlayer / (skopeo+umoci) = $RATIO (target <= 0.70)"
