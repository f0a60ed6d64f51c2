//! `zlayer stop`, `kill`, `rm`, `wait`, `pause`, `unpause`.

// Changes go to the daemon when one runs (see backend.rs).
use super::backend::open_node as open_engine;
use crate::cli::{GlobalArgs, KillArgs, NamesArgs, RmArgs, StopArgs};
use crate::exit;
use std::process::ExitCode;
use std::time::Duration;
use zlayer_engine::{ContainerRecord, Engine};

/// Runs `op` on each named container, printing the name on success and the
/// error otherwise; exit 125 if any failed (docker's behaviour).
async fn for_each<F, Fut>(engine: &Engine, names: &[String], print: bool, op: F) -> ExitCode
where
    F: Fn(ContainerRecord) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<String>>>,
{
    let mut failed = false;
    for name in names {
        let result = match engine.resolve(name) {
            Ok(record) => op(record).await,
            Err(e) => Err(e.into()),
        };
        match result {
            Ok(Some(out)) => println!("{out}"),
            Ok(None) if print => println!("{name}"),
            Ok(None) => {}
            Err(e) => {
                eprintln!("zlayer: {e:#}");
                failed = true;
            }
        }
    }
    if failed {
        exit::ENGINE_ERROR.into()
    } else {
        ExitCode::SUCCESS
    }
}

/// `zlayer stop [-t N]`.
pub async fn stop(g: &GlobalArgs, args: StopArgs) -> anyhow::Result<ExitCode> {
    let engine = open_engine(g)?;
    let timeout = args.time.map(Duration::from_secs);
    Ok(for_each(&engine, &args.containers, true, |r| {
        let engine = &engine;
        async move {
            engine.stop(&r, timeout).await?;
            Ok(None)
        }
    })
    .await)
}

/// `zlayer kill [-s SIG]`.
pub async fn kill(g: &GlobalArgs, args: KillArgs) -> anyhow::Result<ExitCode> {
    zlayer_runtime::validate_signal(&args.signal)?;
    let engine = open_engine(g)?;
    let signal = args.signal.clone();
    Ok(for_each(&engine, &args.containers, true, |r| {
        let (engine, signal) = (&engine, signal.clone());
        async move {
            engine.kill(&r, Some(&signal)).await?;
            Ok(None)
        }
    })
    .await)
}

/// `zlayer rm [-f]`.
pub async fn rm(g: &GlobalArgs, args: RmArgs) -> anyhow::Result<ExitCode> {
    let engine = open_engine(g)?;
    Ok(for_each(&engine, &args.containers, true, |r| {
        let engine = &engine;
        async move {
            engine.remove(&r, args.force).await?;
            Ok(None)
        }
    })
    .await)
}

/// `zlayer wait`: prints each exit code.
pub async fn wait(g: &GlobalArgs, args: NamesArgs) -> anyhow::Result<ExitCode> {
    let engine = open_engine(g)?;
    Ok(for_each(&engine, &args.containers, false, |r| {
        let engine = &engine;
        async move { Ok(Some(engine.wait(&r).await?.to_string())) }
    })
    .await)
}

/// `zlayer pause` / `zlayer unpause`.
pub async fn pause(g: &GlobalArgs, args: NamesArgs, freeze: bool) -> anyhow::Result<ExitCode> {
    let engine = open_engine(g)?;
    Ok(for_each(&engine, &args.containers, true, |r| {
        let engine = &engine;
        async move {
            if freeze {
                engine.pause(&r).await?;
            } else {
                engine.unpause(&r).await?;
            }
            Ok(None)
        }
    })
    .await)
}
