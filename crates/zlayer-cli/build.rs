//! Link arguments of the `zlayer` binary (position-dependent: it starts
//! once per command): see `build/link_args.rs`.

include!("../../build/link_args.rs");

fn main() {
    link_args(&["zlayer"]);
}
