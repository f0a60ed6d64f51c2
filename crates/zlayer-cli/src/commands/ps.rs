//! `zlayer ps`.

use super::node::open_engine;
use crate::cli::{GlobalArgs, PsArgs};
use crate::output::{ago, print_json, print_table, Format};
use std::process::ExitCode;
use zlayer_engine::ContainerView;

/// Lists containers (running only unless `-a`).
pub async fn run(g: &GlobalArgs, args: PsArgs) -> anyhow::Result<ExitCode> {
    let engine = open_engine(g)?;
    let views: Vec<ContainerView> = engine
        .list()
        .await?
        .into_iter()
        .filter(|v| args.all || v.state.is_alive())
        .filter(|v| {
            args.deployment
                .as_ref()
                .is_none_or(|d| v.record.deployment.as_ref() == Some(d))
        })
        .collect();
    if args.quiet {
        for v in &views {
            println!("{}", v.record.short_id());
        }
        return Ok(ExitCode::SUCCESS);
    }
    match g.format {
        Format::Json => {
            let rows: Vec<_> = views
                .iter()
                .map(|v| {
                    let mut j = view_json(v);
                    j["health"] = serde_json::json!(health_of(engine.root(), &v.record));
                    j
                })
                .collect();
            print_json(&rows)?;
        }
        Format::Table => {
            let rows: Vec<Vec<String>> = views
                .iter()
                .map(|v| {
                    vec![
                        v.record.short_id().to_string(),
                        v.record.image.clone(),
                        command_line(v),
                        ago(v.record.created),
                        match health_of(engine.root(), &v.record) {
                            Some(h) if v.state.is_alive() => format!("{} ({h})", v.state),
                            _ => v.state.to_string(),
                        },
                        v.record.isolation.to_string(),
                        v.record.name.clone(),
                    ]
                })
                .collect();
            print_table(
                &[
                    "CONTAINER ID",
                    "IMAGE",
                    "COMMAND",
                    "CREATED",
                    "STATUS",
                    "ISOLATION",
                    "NAMES",
                ],
                &rows,
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn command_line(v: &ContainerView) -> String {
    let c = &v.record.spec.command;
    let argv: Vec<String> = c
        .entrypoint
        .iter()
        .flatten()
        .chain(c.args.iter().flatten())
        .cloned()
        .collect();
    let mut s = format!("\"{}\"", argv.join(" "));
    if s.chars().count() > 22 {
        s = s.chars().take(20).collect::<String>() + "…\"";
    }
    s
}

/// The JSON form of a container, shared with `inspect`.
pub fn view_json(v: &ContainerView) -> serde_json::Value {
    serde_json::json!({
        "id": v.record.id,
        "name": v.record.name,
        "image": v.record.image,
        "isolation": v.record.isolation,
        "state": v.state,
        "status": v.state.to_string(),
        "pid": v.pid,
        "created": crate::output::rfc3339(v.record.created),
        "deployment": v.record.deployment,
        "labels": v.record.labels,
    })
}

/// The health status persisted by health checks (`starting`, `healthy`,
/// `unhealthy`), for containers that have a health check.
pub fn health_of(
    root: &std::path::Path,
    record: &zlayer_engine::ContainerRecord,
) -> Option<String> {
    record.spec.health.as_ref()?;
    zlayer_engine::health::HealthStore::open(root)
        .load(&record.id)
        .ok()
        .flatten()
        .map(|h| h.status.to_string())
}
