//! `zlayer-sandbox-shim`: the monitor of a sandbox container (the hosting
//! layer's monitor loop with the sandbox launcher).

fn main() {
    std::process::exit(zlayer_hosting::monitor::main(
        |root| zlayer_sandbox::SandboxLauncher::new(zlayer_sandbox::SandboxConfig::new(root)),
        std::env::args_os(),
    ));
}
