//! `zlayer-shim`: the per-container monitor of the `container` runtime.
//! See `crate::shim`.

fn main() {
    let code = zlayer_container::shim::main(std::env::args_os().skip(1).collect());
    std::process::exit(code);
}
