# Sourced by the benchmarks that compare with podman: podman on its own
# temp root, configured so it runs here, with the image zlayer runs.
#
# podman_setup WORK IMG: sets P (the podman command line) and
# CONTAINERS_CONF, and imports IMG from the unpacked layer snapshot in
# WORK/zl (the busybox fixture has one layer; its hardlink entries carry
# mode 0644, which podman would apply to /bin/busybox on a plain load).
# CAP_SYS_RESOURCE is absent here, so podman's default ulimits would fail;
# runc with cgroupfs, as the zlayer side uses cgroups directly.
podman_setup() {
    local work=$1 img=$2 rootfs
    export CONTAINERS_CONF=$work/containers.conf
    cat > "$CONTAINERS_CONF" <<'CONF'
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "none"
CONF
    P="podman --root $work/podman --runroot $work/podman-run --storage-driver overlay"
    rootfs=$(ls -d "$work"/zl/snapshots/sha256/*/fs | head -1)
    tar -C "$rootfs" -cf - . | $P import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["sh"]' - "$img" >/dev/null
}
