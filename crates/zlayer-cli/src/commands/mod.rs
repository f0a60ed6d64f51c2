//! One module per subcommand (or family); `dispatch` picks it.

mod attach;
mod backend;
mod container_opts;
mod daemon;
mod deploy;
mod df;
mod exec;
mod images;
mod inspect;
mod lifecycle;
mod logs;
mod network;
mod node;
mod ps;
mod run;
mod stats;
mod supervise;
mod terminal;
mod validate;
mod vm;

use crate::cli::{Cli, Command, ImageCommand, NetworkCommand, SystemCommand, VmCommand};
use std::process::ExitCode;

/// Runs the command the user asked for.
pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Validate(args) = &cli.command {
        return validate::run(&cli.global, args);
    }
    // Servers get worker threads; every other command is a short exchange
    // with the engine and runs on this thread alone (no worker threads to
    // start, wake and tear down: measurably faster for `run --rm`).
    let rt = match cli.command {
        Command::Daemon(_) | Command::Supervise(_) | Command::Deploy(_) | Command::Down(_) => {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?
        }
        _ => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
    };
    let result = rt.block_on(dispatch_async(cli));
    // Do not wait for blocking reads that cannot end by themselves (the
    // stdin relay of `run -i` after the container exited).
    rt.shutdown_background();
    result
}

async fn dispatch_async(cli: Cli) -> anyhow::Result<ExitCode> {
    let g = &cli.global;
    match cli.command {
        Command::Validate(_) => unreachable_validate(),
        Command::Run(args) => run::run(g, args).await,
        Command::Deploy(args) => deploy::deploy(g, args).await,
        Command::Down(args) => deploy::down(g, args).await,
        Command::Daemon(args) => daemon::run(g, args).await,
        Command::Supervise(args) => supervise::run(g, args).await,
        Command::Create(args) => run::create(g, args).await,
        Command::Start(args) => run::start(g, args).await,
        Command::Ps(args) => ps::run(g, args).await,
        Command::Logs(args) => logs::run(g, args).await,
        Command::Stop(args) => lifecycle::stop(g, args).await,
        Command::Kill(args) => lifecycle::kill(g, args).await,
        Command::Rm(args) => lifecycle::rm(g, args).await,
        Command::Wait(args) => lifecycle::wait(g, args).await,
        Command::Pause(args) => lifecycle::pause(g, args, true).await,
        Command::Unpause(args) => lifecycle::pause(g, args, false).await,
        Command::Inspect(args) => inspect::run(g, args).await,
        Command::Port(args) => inspect::port(g, args).await,
        Command::Exec(args) => exec::run(g, args).await,
        Command::Stats(args) => stats::run(g, args).await,
        Command::Pull(args) => images::pull(g, args).await,
        Command::Load(args) => images::load(g, args).await,
        Command::Images | Command::Image(ImageCommand::Ls) => images::list(g).await,
        Command::Rmi(args) => images::rmi(g, args).await,
        Command::Image(ImageCommand::Prune) => images::prune(g).await,
        Command::Vm(VmCommand::BuildKernel(args)) => vm::build_kernel(g, args).await,
        Command::Vm(VmCommand::InstallKernel(args)) => vm::install_kernel(g, args).await,
        Command::Image(ImageCommand::Builtin(args)) => images::builtin(g, args).await,
        Command::Network(NetworkCommand::Create(args)) => network::create(g, args).await,
        Command::Network(NetworkCommand::Ls) => network::list(g).await,
        Command::Network(NetworkCommand::Rm(args)) => network::remove(g, args).await,
        Command::System(SystemCommand::Df) => df::run(g).await,
    }
}

fn unreachable_validate() -> anyhow::Result<ExitCode> {
    anyhow::bail!("internal error: validate is handled before the async runtime starts")
}
