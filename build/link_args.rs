// Shared by the build scripts of the crates with binaries (`include!`d):
// the link arguments that make the binaries start fast (see
// `docs/architecture.md`, "Build and process start-up").
//
// - Packed relative relocations (DT_RELR): a position-independent
//   executable of this size has tens of thousands of relative relocations,
//   and processing them as RELA entries cost ~0.3 ms of every start. GNU ld
//   accepts the flag from binutils 2.38, lld from 15, and glibc loads it
//   from 2.36 (Debian bookworm has all three). `ZLAYER_NO_RELR=1` turns it
//   off for older toolchains.
// - `fixed_address_bins` are linked as position-dependent executables
//   (`-no-pie`): the dynamic loader then has no relocations to apply to
//   their 0.5 MiB of `.data.rel.ro` (vtables, the regex crate's Unicode
//   tables), each page of which was a copy-on-write fault on every start
//   (~140 faults, ~0.5 ms here). The price is that the executable's own
//   image is not randomised (its libraries, heap, stack and mappings
//   still are). `ZLAYER_PIE=1` keeps them position-independent.

fn link_args(fixed_address_bins: &[&str]) {
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let gnu = std::env::var("CARGO_CFG_TARGET_ENV").is_ok_and(|env| env == "gnu");
    if linux && gnu && std::env::var_os("ZLAYER_NO_RELR").is_none() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    if linux && gnu && std::env::var_os("ZLAYER_PIE").is_none() {
        for bin in fixed_address_bins {
            println!("cargo:rustc-link-arg-bin={bin}=-no-pie");
        }
    }
    println!("cargo:rerun-if-env-changed=ZLAYER_NO_RELR");
    println!("cargo:rerun-if-env-changed=ZLAYER_PIE");
}
