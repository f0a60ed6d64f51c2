# Sourced by the benchmarks: the release binaries they run, built once.
#   zlayer_release_bins SCRIPT BINARY...
# builds zlayer's binaries and the busybox_archive example (unless
# SKIP_BUILD is set), sets BIN to their directory, and stops SCRIPT with a
# clear message when one of BINARY (relative to BIN) is missing. Needs ROOT
# and TARGET.
zlayer_release_bins() {
    local script=$1 b
    shift
    if [ -z "${SKIP_BUILD:-}" ]; then
        (cd "$ROOT" && cargo build --release -p zlayer-cli -p zlayer-container -p zlayer-sandbox \
            -p zlayer-network --bins -p zlayer-daemon --example busybox_archive)
    fi
    BIN=$TARGET/release
    for b in "$@"; do
        [ -x "$BIN/$b" ] || { echo "$script: build $BIN/$b first" >&2; exit 2; }
    done
}
