//! `zlayer-vm-shim`: the monitor of a microVM (the hosting layer's monitor
//! loop with the vm launcher): QEMU is its child, and the VM's published
//! ports, output and exit code live here.

fn main() {
    std::process::exit(zlayer_hosting::monitor::main(
        |root| zlayer_vm::VmLauncher::new(zlayer_vm::VmConfig::new(root.join("vm"))),
        std::env::args_os(),
    ));
}
