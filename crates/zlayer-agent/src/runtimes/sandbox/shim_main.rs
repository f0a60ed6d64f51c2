//! `zlayer-sandbox-shim`: the per-container monitor of the sandbox runtime
//! (see `zlayer_agent::runtimes::sandbox::shim`).

fn main() {
    std::process::exit(zlayer_agent::runtimes::sandbox::shim::main_with_args(
        std::env::args_os(),
    ));
}
