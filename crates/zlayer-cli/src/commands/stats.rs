//! `zlayer stats`.

use super::node::open_engine;
use crate::cli::{GlobalArgs, StatsArgs};
use crate::output::{human_size, print_json, print_table, Format};
use futures_util::StreamExt;
use std::process::ExitCode;
use zlayer_engine::ContainerRecord;
use zlayer_runtime::ContainerStats;

/// Prints resource usage, once (`--no-stream`) or every second.
pub async fn run(g: &GlobalArgs, args: StatsArgs) -> anyhow::Result<ExitCode> {
    let engine = open_engine(g)?;
    let records: Vec<ContainerRecord> = if args.containers.is_empty() {
        engine
            .list()
            .await?
            .into_iter()
            .filter(|v| v.state.is_alive())
            .map(|v| v.record)
            .collect()
    } else {
        args.containers
            .iter()
            .map(|n| engine.resolve(n))
            .collect::<Result<_, _>>()?
    };
    if args.no_stream || g.format == Format::Json {
        let mut samples = Vec::new();
        for r in &records {
            let s = engine.stats_once(r).await?;
            samples.push((r.clone(), s));
        }
        print_samples(g, &samples)?;
        return Ok(ExitCode::SUCCESS);
    }
    let [record] = records.as_slice() else {
        anyhow::bail!("streaming stats takes one container; use --no-stream for several");
    };
    let mut stream = engine.stats(record).await?;
    let mut prev: Option<ContainerStats> = None;
    while let Some(sample) = stream.next().await {
        let sample = sample?;
        print!("\x1b[2J\x1b[H");
        print_row(record, &sample, prev.as_ref());
        prev = Some(sample);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_samples(
    g: &GlobalArgs,
    samples: &[(ContainerRecord, ContainerStats)],
) -> anyhow::Result<()> {
    if g.format == Format::Json {
        let v: Vec<_> = samples
            .iter()
            .map(|(r, s)| serde_json::json!({"id": r.id, "name": r.name, "stats": s}))
            .collect();
        return print_json(&v);
    }
    let rows: Vec<Vec<String>> = samples.iter().map(|(r, s)| row(r, s, None)).collect();
    print_table(HEADER, &rows);
    Ok(())
}

const HEADER: &[&str] = &[
    "CONTAINER ID",
    "NAME",
    "CPU TIME",
    "CPU %",
    "MEM USAGE / LIMIT",
    "NET I/O",
    "BLOCK I/O",
    "PIDS",
];

fn print_row(r: &ContainerRecord, s: &ContainerStats, prev: Option<&ContainerStats>) {
    print_table(HEADER, &[row(r, s, prev)]);
}

fn row(r: &ContainerRecord, s: &ContainerStats, prev: Option<&ContainerStats>) -> Vec<String> {
    let cpu = prev
        .and_then(|p| {
            let dc = s.cpu_total_ns.checked_sub(p.cpu_total_ns)? as f64;
            let ds = s.cpu_system_ns.checked_sub(p.cpu_system_ns)? as f64;
            (ds > 0.0).then(|| format!("{:.2}%", dc / ds * f64::from(s.online_cpus.max(1)) * 100.0))
        })
        .unwrap_or_else(|| "--".into());
    vec![
        r.short_id().to_string(),
        r.name.clone(),
        format!("{:.3}s", s.cpu_total_ns as f64 / 1e9),
        cpu,
        format!(
            "{} / {}",
            human_size(s.memory_used_bytes),
            human_size(s.memory_limit_bytes)
        ),
        format!(
            "{} / {}",
            human_size(s.net_rx_bytes),
            human_size(s.net_tx_bytes)
        ),
        format!(
            "{} / {}",
            human_size(s.blkio_read_bytes),
            human_size(s.blkio_write_bytes)
        ),
        s.pids_current.to_string(),
    ]
}
