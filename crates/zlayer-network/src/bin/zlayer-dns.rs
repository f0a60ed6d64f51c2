//! `zlayer-dns STATE_DIR NETWORK [UPSTREAM...]`: the embedded DNS
//! responder of one bridge network, started by
//! `zlayer_network::NetworkManager::attach`.

use std::net::SocketAddr;
use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: zlayer-dns STATE_DIR NETWORK [UPSTREAM_IP:PORT...]");
        std::process::exit(2);
    }
    let mut upstreams: Vec<SocketAddr> = Vec::new();
    for a in &args[2..] {
        match a.parse() {
            Ok(u) => upstreams.push(u),
            Err(_) => {
                eprintln!("zlayer-dns: upstream {a:?} is not IP:PORT");
                std::process::exit(2);
            }
        }
    }
    let dir = PathBuf::from(&args[0]);
    if let Err(e) = zlayer_network::dns::serve(&dir, &args[1], &upstreams) {
        eprintln!("zlayer-dns: {e}");
        std::process::exit(1);
    }
}
