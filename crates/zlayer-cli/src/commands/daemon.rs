//! `zlayer daemon`: supervise containers and serve the zlayer and Docker APIs.

use crate::cli::{DaemonArgs, GlobalArgs};
use std::process::ExitCode;
use zlayer_daemon::DaemonConfig;

/// Runs the daemon until SIGTERM/SIGINT; containers keep running after.
pub async fn run(g: &GlobalArgs, args: DaemonArgs) -> anyhow::Result<ExitCode> {
    let engine = std::sync::Arc::new(super::node::open_engine(g)?);
    let config = DaemonConfig {
        socket: g.socket.clone(),
        docker_socket: (!args.no_docker_socket).then(|| args.docker_socket.clone()),
        group: args.group.clone(),
    };
    zlayer_daemon::run(engine, config).await?;
    Ok(ExitCode::SUCCESS)
}
