//! Restart policies and health checks without a daemon: after an embedded
//! `start` (or `deploy`), `zlayer` launches `zlayer supervise ID`, a small
//! detached process that supervises that one container with the engine's
//! [`Supervisor`] (the daemon's code) and exits when there is nothing left
//! to do: the container was removed, stopped by the user, or its policy
//! gave up. When a daemon answers on `--socket` (checked while the
//! container runs, so no pending restart is dropped), it releases its claim
//! and asks the daemon to adopt the container. A claim per container (see
//! [`zlayer_engine::supervise::SupervisionStore::claim`]) keeps the two from
//! acting at once.

use super::node::open_engine;
use crate::cli::{GlobalArgs, SuperviseArgs};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;
use zlayer_daemon::DaemonClient;
use zlayer_engine::supervise::{EventHub, Supervisor};
use zlayer_engine::ContainerRecord;
use zlayer_spec::RestartKind;

/// How often the supervisor checks that it still has work and no daemon.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How often it looks for a running moment to hand over to a daemon.
const HANDOVER_POLL: Duration = Duration::from_millis(20);

/// Whether `record` needs someone to watch it after it started.
pub fn needs_supervisor(record: &ContainerRecord) -> bool {
    record.spec.restart_policy.kind != RestartKind::No || record.spec.health.is_some()
}

/// Launches `zlayer supervise` for `record` when it needs one, detached in
/// its own session (it outlives this command); its messages go to
/// `<root>/engine/supervise/<id>.log`.
pub fn spawn_if_needed(root: &Path, socket: &Path, record: &ContainerRecord) {
    if !needs_supervisor(record) {
        return;
    }
    if let Err(e) = spawn(root, socket, record) {
        eprintln!(
            "zlayer: warning: {}: restart policy and health checks are not supervised ({e}); run `zlayer daemon` to supervise containers",
            record.name
        );
    }
}

fn spawn(root: &Path, socket: &Path, record: &ContainerRecord) -> std::io::Result<()> {
    let exe = std::env::current_exe()?;
    let dir = root.join("engine").join("supervise");
    std::fs::create_dir_all(&dir)?;
    let log = std::fs::File::options()
        .create(true)
        .append(true)
        .open(dir.join(format!("{}.log", record.id)))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--root")
        .arg(root)
        .arg("--socket")
        .arg(socket)
        .arg("--log-level")
        .arg("info")
        .arg("supervise")
        .arg(&record.id)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe; nothing else runs between fork
    // and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::libc::setsid();
            Ok(())
        });
    }
    // Not waited for: it lives on after this command (it is reparented).
    cmd.spawn().map(drop)
}

/// `zlayer supervise ID`: supervises one container until there is nothing
/// left to do or a daemon takes over.
pub async fn run(g: &GlobalArgs, args: SuperviseArgs) -> anyhow::Result<ExitCode> {
    let engine = Arc::new(open_engine(g)?);
    let record = engine.resolve(&args.container)?;
    let supervisor = Supervisor::new(engine.clone(), EventHub::new());
    supervisor.watch(&record);
    loop {
        tokio::time::sleep(CHECK_INTERVAL).await;
        if !supervisor.is_watched(&record.id) {
            break;
        }
        let Some(daemon) = DaemonClient::connect(&g.socket, &g.root).await else {
            continue;
        };
        // Hand over only while it runs: the daemon adopts running
        // containers, and a restart this supervisor has pending (the
        // container exited, the backoff delay runs) is finished first. A
        // container that runs only briefly between restarts is caught by
        // looking often once a daemon answers.
        while supervisor.is_watched(&record.id) {
            if engine.state(&record).await.is_ok_and(|s| s.is_alive()) {
                supervisor.release().await;
                match daemon.adopt(&record.id).await {
                    Ok(()) => tracing::info!("{}: the daemon supervises it now", record.name),
                    Err(e) => tracing::warn!("{}: handing over to the daemon: {e}", record.name),
                }
                return Ok(ExitCode::SUCCESS);
            }
            tokio::time::sleep(HANDOVER_POLL).await;
        }
    }
    supervisor.shutdown();
    Ok(ExitCode::SUCCESS)
}
