#!/usr/bin/env bash
# VM isolation benchmark: wall time of `true` from create to exit (boot
# included), and idle host memory (QEMU RSS) per VM, with the accelerator
# used. Usage: bench/vm.sh [RUNS]   (root required; builds what it needs)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
bundle="${CARGO_TARGET_DIR:-target}"/vm-cache/bundle
if [ ! -f "$bundle/vmlinux" ] || [ ! -f "$bundle/initramfs.cpio" ]; then
  ./scripts/build-vm-kernel "$bundle"
fi
# The example drives the hosting layer, which starts zlayer-vm-shim (the
# VM's monitor, QEMU's parent) found next to the example's directory.
cargo build --quiet --release --locked -p zlayer-vm --example vm_bench --bins
bin="${CARGO_TARGET_DIR:-target}"/release/examples/vm_bench
root=$(mktemp -d /tmp/zlvm-bench.XXXX)
trap 'rm -rf "$root"' EXIT
echo "== host: $(nproc) cores, $(qemu-system-x86_64 --version | head -1)"
"$bin" run --runs "$runs" --root "$root" --bundle "$bundle" | tee "$root/run.txt"
"$bin" idle --root "$root" --bundle "$bundle" | tee "$root/idle.txt"
