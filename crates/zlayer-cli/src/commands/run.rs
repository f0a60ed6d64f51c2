//! `zlayer run`, `zlayer create`, `zlayer start`.

use super::attach::{attach_and_wait, start_error_exit_code};
use super::container_opts::service_spec;
use super::terminal::{spawn_resize_relay, RawMode};
// Changes go to the daemon when one runs (see backend.rs).
use super::backend::open_node as open_engine;
use crate::cli::{ContainerOptions, CreateArgs, GlobalArgs, RunArgs, StartArgs};
use crate::exit;
use crate::output::{print_json, Format};
use std::process::ExitCode;
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use zlayer_engine::{ContainerRecord, CreateRequest, Engine};
use zlayer_image::{ConsoleProgress, PullOptions};

fn create_request(
    opts: &ContainerOptions,
    auto_remove: bool,
    ephemeral: bool,
) -> anyhow::Result<CreateRequest> {
    let spec = service_spec(opts)?;
    if auto_remove && !spec.restart_policy.is_default() {
        anyhow::bail!("conflicting options: --restart and --rm cannot be used together");
    }
    let mut req = CreateRequest::new(spec);
    req.name = opts.name.clone();
    req.auto_remove = auto_remove;
    req.ephemeral = ephemeral;
    req.interactive = opts.interactive;
    req.tty = opts.tty;
    req.pull = PullOptions {
        progress: Some(Arc::new(ConsoleProgress::new())),
        ..Default::default()
    };
    Ok(req)
}

/// `zlayer create`: prints the new container's id.
pub async fn create(g: &GlobalArgs, args: CreateArgs) -> anyhow::Result<ExitCode> {
    let req = create_request(&args.opts, args.rm, false)?;
    let engine = open_engine(g)?;
    let record = engine.create(req).await?;
    print_record_id(g, &record)?;
    Ok(ExitCode::SUCCESS)
}

/// `zlayer run`: create + start; in the foreground, stream output and exit
/// with the container's code.
pub async fn run(g: &GlobalArgs, args: RunArgs) -> anyhow::Result<ExitCode> {
    // In the foreground this process removes the container after reading its
    // exit code; detached, the container's monitor removes it when it exits.
    let t0 = std::time::Instant::now();
    let req = create_request(&args.opts, args.rm && args.detach, args.rm && !args.detach)?;
    let engine = open_engine(g)?;
    tracing::debug!(elapsed = ?t0.elapsed(), "engine opened");
    let record = match engine.create(req).await {
        Ok(r) => r,
        // A command the image lacks is docker's 127 even when the
        // isolation finds out at create time (sandbox, vm).
        Err(e) if start_error_exit_code(&e) != crate::exit::ENGINE_ERROR => {
            eprintln!("zlayer: {e}");
            return Ok(start_error_exit_code(&e).into());
        }
        Err(e) => return Err(e.into()),
    };
    tracing::debug!(elapsed = ?t0.elapsed(), "created {}", record.name);
    if let Err(e) = engine.start(&record).await {
        eprintln!("zlayer: {e}");
        if args.rm {
            let _ = engine.remove(&record, true).await;
        }
        return Ok(start_error_exit_code(&e).into());
    }
    if args.detach {
        print_record_id(g, &record)?;
        return Ok(ExitCode::SUCCESS);
    }
    // With -t: our terminal's size follows the container's, and with -it
    // our keys go to its terminal raw (restored before we print anything).
    let resize = args
        .opts
        .tty
        .then(|| spawn_resize_relay(engine.shared(), record.clone()));
    let raw = (args.opts.tty && args.opts.interactive).then(RawMode::enter);
    if args.opts.interactive {
        spawn_stdin_relay(engine.shared(), &record);
    }
    tracing::debug!(elapsed = ?t0.elapsed(), "started");
    let code = attach_and_wait(&engine, &record).await;
    tracing::debug!(elapsed = ?t0.elapsed(), "exited");
    drop(raw);
    if let Some(task) = resize {
        task.abort();
    }
    let code = code?;
    if args.rm {
        if let Err(e) = engine.remove(&record, true).await {
            tracing::debug!("removing {} after exit: {e}", record.name);
        }
        tracing::debug!(elapsed = ?t0.elapsed(), "removed");
    }
    Ok(code.into())
}

/// `zlayer start [-a]`.
pub async fn start(g: &GlobalArgs, args: StartArgs) -> anyhow::Result<ExitCode> {
    let engine = open_engine(g)?;
    if args.attach && args.containers.len() > 1 {
        anyhow::bail!("start -a takes exactly one container");
    }
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
        if let Err(e) = engine.start(&record).await {
            eprintln!("zlayer: {e}");
            if args.attach {
                return Ok(start_error_exit_code(&e).into());
            }
            failed = true;
            continue;
        }
        if args.attach {
            let code = attach_and_wait(&engine, &record).await?;
            return Ok(code.into());
        }
        println!("{name}");
    }
    Ok(if failed {
        exit::ENGINE_ERROR.into()
    } else {
        ExitCode::SUCCESS
    })
}

fn print_record_id(g: &GlobalArgs, record: &ContainerRecord) -> anyhow::Result<()> {
    match g.format {
        Format::Json => print_json(&serde_json::json!({"id": record.id, "name": record.name})),
        Format::Table => {
            println!("{}", record.id);
            Ok(())
        }
    }
}

/// Copies our stdin to the container's until EOF, then closes it.
fn spawn_stdin_relay(engine: std::sync::Arc<Engine>, record: &ContainerRecord) {
    let record = record.clone();
    tokio::spawn(async move {
        let mut stdin = tokio::io::stdin();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stdin.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if engine.write_stdin(&record, &buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = engine.close_stdin(&record).await;
    });
}
