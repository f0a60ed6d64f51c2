//! `zlayer deploy -f spec.yaml` and `zlayer down NAME`.

use super::backend::{open_node, Backend};
use crate::cli::{DeployArgs, DownArgs, GlobalArgs};
use crate::exit;
use crate::output::{print_json, Format};
use std::io::Read;
use std::process::ExitCode;
use zlayer_engine::deploy::{apply, down as engine_down, DeployOptions, DeployReport};
use zlayer_spec::DurationSpec;

fn print_report(g: &GlobalArgs, r: &DeployReport, verb: &str) -> anyhow::Result<()> {
    if g.format == Format::Json {
        return print_json(r);
    }
    for (what, names) in [
        ("removed", &r.removed),
        ("created", &r.created),
        ("replaced", &r.replaced),
        ("started", &r.started),
    ] {
        for n in names {
            println!("{what} {n}");
        }
    }
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    if r.unchanged() {
        println!(
            "deployment {}: {verb} (nothing to change, {} container(s) kept)",
            r.deployment,
            r.kept.len()
        );
    } else {
        println!(
            "deployment {}: {verb} ({} created, {} replaced, {} started, {} removed, {} kept)",
            r.deployment,
            r.created.len(),
            r.replaced.len(),
            r.started.len(),
            r.removed.len(),
            r.kept.len()
        );
    }
    Ok(())
}

/// Reads and validates the spec; problems are printed like `validate`.
fn read_spec(
    args: &DeployArgs,
) -> anyhow::Result<Result<zlayer_spec::DeploymentSpec, zlayer_spec::SpecErrors>> {
    if args.file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        return Ok(zlayer_spec::parse_deployment(&text));
    }
    if !args.file.exists() {
        anyhow::bail!(
            "cannot read spec file {}: it does not exist; check the path given to -f",
            args.file.display()
        );
    }
    Ok(zlayer_spec::parse_deployment_file(&args.file))
}

/// `zlayer deploy -f FILE`.
pub async fn deploy(g: &GlobalArgs, args: DeployArgs) -> anyhow::Result<ExitCode> {
    let mut spec = match read_spec(&args)? {
        Ok(s) => s,
        Err(errors) => {
            eprintln!("{}: {} problem(s):", args.file.display(), errors.len());
            for p in &errors {
                eprintln!("{p}");
            }
            return Ok(exit::PROBLEMS_FOUND.into());
        }
    };
    spec.fill_names();
    let timeout = args
        .timeout
        .as_deref()
        .map(|t| {
            DurationSpec::parse(t)
                .and_then(|d| d.duration())
                .map_err(|e| anyhow::anyhow!("--timeout {t:?}: {e}"))
        })
        .transpose()?;
    let node = open_node(g)?;
    let report = match node.backend().await {
        Backend::Daemon(c) => c.deploy(&spec, timeout).await?,
        Backend::Embedded => {
            let opts = DeployOptions {
                dependency_timeout: timeout,
                ..Default::default()
            };
            let report = apply(&node, &spec, &opts).await?;
            // No daemon: restart policies and health checks get a
            // supervisor process per container that needs one.
            for name in report
                .created
                .iter()
                .chain(&report.replaced)
                .chain(&report.started)
            {
                if let Ok(record) = node.resolve(name) {
                    super::supervise::spawn_if_needed(node.root(), &g.socket, &record);
                }
            }
            report
        }
    };
    print_report(g, &report, "deployed")?;
    Ok(ExitCode::SUCCESS)
}

/// `zlayer down NAME`.
pub async fn down(g: &GlobalArgs, args: DownArgs) -> anyhow::Result<ExitCode> {
    let node = open_node(g)?;
    let report = match node.backend().await {
        Backend::Daemon(c) => c.down(&args.deployment).await?,
        Backend::Embedded => {
            engine_down(&node, &args.deployment, &DeployOptions::default()).await?
        }
    };
    if g.format == Format::Json {
        print_json(&report)?;
    } else if report.removed.is_empty() {
        println!("deployment {}: no containers", args.deployment);
    } else {
        for n in &report.removed {
            println!("removed {n}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
