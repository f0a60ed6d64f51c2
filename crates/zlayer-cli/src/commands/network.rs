//! `zlayer network create|ls|rm`: bridge networks, straight on the data
//! root's network state (shared with the daemon and every container
//! monitor through `<root>/network/`, under a file lock).

use crate::cli::{GlobalArgs, NetworkCreateArgs, NetworkRmArgs};
use crate::exit;
use crate::output::{print_json, print_table, Format};
use anyhow::Context;
use std::process::ExitCode;
use zlayer_network::{NetworkInfo, NetworkManager};

fn manager(g: &GlobalArgs) -> anyhow::Result<NetworkManager> {
    NetworkManager::open(&g.root)
        .with_context(|| format!("opening the network state under {}", g.root.display()))
}

fn json_of(n: &NetworkInfo) -> serde_json::Value {
    serde_json::json!({
        "name": n.name,
        "bridge": n.bridge,
        "subnet": n.subnet.to_string(),
        "gateway": n.gateway.to_string(),
        "containers": n.containers,
    })
}

/// `zlayer network create [--subnet CIDR] NAME`.
pub async fn create(g: &GlobalArgs, args: NetworkCreateArgs) -> anyhow::Result<ExitCode> {
    let subnet = args
        .subnet
        .as_deref()
        .map(|s| {
            s.parse::<ipnet::Ipv4Net>().map_err(|e| {
                anyhow::anyhow!("--subnet {s}: {e}; give an IPv4 CIDR such as 10.90.0.0/24")
            })
        })
        .transpose()?;
    let mgr = manager(g)?;
    let name = args.name.clone();
    let info = tokio::task::spawn_blocking(move || mgr.create_network(&name, subnet)).await??;
    match g.format {
        Format::Json => print_json(&json_of(&info))?,
        Format::Table => println!("{}", info.name),
    }
    Ok(ExitCode::SUCCESS)
}

/// `zlayer network ls`.
pub async fn list(g: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let mgr = manager(g)?;
    let nets = tokio::task::spawn_blocking(move || mgr.list_networks()).await??;
    match g.format {
        Format::Json => print_json(&nets.iter().map(json_of).collect::<Vec<_>>())?,
        Format::Table => {
            let rows: Vec<Vec<String>> = nets
                .iter()
                .map(|n| {
                    vec![
                        n.name.clone(),
                        n.bridge.clone(),
                        n.subnet.to_string(),
                        n.gateway.to_string(),
                        n.containers.len().to_string(),
                    ]
                })
                .collect();
            print_table(
                &["NAME", "BRIDGE", "SUBNET", "GATEWAY", "CONTAINERS"],
                &rows,
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `zlayer network rm NAME...`: every name is tried; the exit code says
/// whether one failed.
pub async fn remove(g: &GlobalArgs, args: NetworkRmArgs) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    for name in args.names {
        let mgr = manager(g)?;
        let n = name.clone();
        match tokio::task::spawn_blocking(move || mgr.remove_network(&n)).await? {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("zlayer: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        exit::ENGINE_ERROR.into()
    } else {
        ExitCode::SUCCESS
    })
}
