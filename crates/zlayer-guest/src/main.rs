//! `zlayer-guest`: PID 1 of every zlayer microVM. See the library docs.

fn main() {
    if let Err(e) = zlayer_guest::boot::run() {
        eprintln!("zlayer-guest: fatal: {e}");
        let err = zlayer_guest::sys::power_off();
        eprintln!("zlayer-guest: {err}");
        std::process::exit(1);
    }
}
