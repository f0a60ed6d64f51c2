//! Link arguments of this crate's binaries (the monitors stay
//! position-independent): see `build/link_args.rs`.

include!("../../build/link_args.rs");

fn main() {
    link_args(&[]);
}
