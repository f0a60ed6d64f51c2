//! `zlayer inspect` and `zlayer port`.

use super::node::open_engine;
use super::ps::view_json;
use crate::cli::{GlobalArgs, NameArgs, NamesArgs};
use crate::exit;
use crate::output::{print_json, Format};
use std::process::ExitCode;
use zlayer_engine::ContainerView;

/// Prints everything known about containers as a JSON array.
pub async fn run(g: &GlobalArgs, args: NamesArgs) -> anyhow::Result<ExitCode> {
    let engine = open_engine(g)?;
    let mut out = Vec::new();
    let mut failed = false;
    for name in &args.containers {
        let record = match engine.resolve(name) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("zlayer: {e}");
                failed = true;
                continue;
            }
        };
        let state = engine.state(&record).await?;
        let pid = engine.pid(&record).await.ok().flatten();
        let ip = engine.ip(&record).await.ok().flatten();
        let ports = engine.ports(&record).await.unwrap_or_default();
        let mut v = view_json(&ContainerView {
            record: record.clone(),
            state,
            pid,
        });
        v["ip"] = serde_json::json!(ip);
        v["health"] = serde_json::json!(super::ps::health_of(engine.root(), &record));
        v["ports"] = serde_json::to_value(&ports)?;
        v["spec"] = serde_json::to_value(&record.spec)?;
        v["restart_count"] = serde_json::json!(record.restart_count);
        v["exit_code"] = match &v["state"]["code"] {
            serde_json::Value::Null => serde_json::Value::Null,
            c => c.clone(),
        };
        out.push(v);
    }
    print_json(&out)?;
    Ok(if failed {
        exit::ENGINE_ERROR.into()
    } else {
        ExitCode::SUCCESS
    })
}

/// Lists a container's published ports (`80/tcp -> 127.0.0.1:18080`).
pub async fn port(g: &GlobalArgs, args: NameArgs) -> anyhow::Result<ExitCode> {
    let engine = open_engine(g)?;
    let record = engine.resolve(&args.container)?;
    let ports = engine.ports(&record).await?;
    match g.format {
        Format::Json => print_json(&ports)?,
        Format::Table => {
            for p in ports {
                println!(
                    "{}/{} -> {}:{}",
                    p.container_port, p.protocol, p.host_ip, p.host_port
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
