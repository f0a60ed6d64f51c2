//! `zlayer-sandbox-shim`: the per-container monitor of the sandbox runtime
//! (see `crate::shim`).

fn main() {
    std::process::exit(zlayer_sandbox::shim::main_with_args(std::env::args_os()));
}
