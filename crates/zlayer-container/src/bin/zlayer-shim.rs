//! `zlayer-shim`: the monitor of a container (the hosting layer's monitor
//! loop with the container launcher).

fn main() {
    std::process::exit(zlayer_hosting::monitor::main(
        |root| match zlayer_container::ContainerLauncher::new(
            zlayer_container::ContainerConfig::new(root),
        ) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("zlayer-shim: {e}");
                std::process::exit(125);
            }
        },
        std::env::args_os(),
    ));
}
