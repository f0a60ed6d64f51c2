//! Command-line definitions (clap derive).
//!
//! The subcommands are built lazily (`#[command(defer = true)]`), so the
//! argument structs of subcommands carry their rustdoc only under
//! `cfg(doc)`: clap would take a plain doc comment as the subcommand's
//! `about`, replacing the help text of its `Command` variant.

use crate::output::Format;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// zlayer: run OCI images as containers, sandboxes or microVMs.
#[derive(Debug, Parser)]
#[command(
    name = "zlayer",
    version,
    about,
    after_help = "Examples:\n  zlayer run --rm busybox echo hello\n  zlayer run -d --name web -p 127.0.0.1:8080:80 busybox httpd -f -p 80\n  zlayer ps -a\n  zlayer validate -f deploy.yaml"
)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

#[cfg_attr(doc, doc = "Options every command takes.")]
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Data root: images, containers, volumes.
    #[arg(
        long,
        global = true,
        env = "ZLAYER_ROOT",
        default_value = "/var/lib/zlayer"
    )]
    pub root: PathBuf,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Log level (error, warn, info, debug, trace) or a tracing filter.
    #[arg(long, global = true, default_value = "warn")]
    pub log_level: String,
    /// The zlayer daemon's socket: the CLI hands container changes to the
    /// daemon when it answers there (and serves the same --root); `zlayer
    /// daemon` listens on it.
    #[arg(long, global = true, env = "ZLAYER_SOCKET", default_value = zlayer_daemon::DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// Work without the daemon even when one runs (containers started this
    /// way are supervised only once a daemon notices them).
    #[arg(long, global = true, env = "ZLAYER_EMBEDDED")]
    pub embedded: bool,
}

/// The subcommands. Each one's arguments are built only when it is the one
/// being parsed (`defer`): building the whole tree (~600 arguments) cost
/// every invocation ~0.3 MiB of heap and ~0.3 ms.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Check a deployment spec and print every problem with its line.
    #[command(
        after_help = "Examples:\n  zlayer validate -f deploy.yaml\n  zlayer validate -f - < deploy.yaml"
    )]
    Validate(ValidateArgs),
    /// Create and start a container, streaming its output.
    #[command(
        after_help = "Examples:\n  zlayer run --rm busybox echo hello\n  zlayer run -d --name web busybox httpd -f -p 8080\n  zlayer run --rm -e MODE=dev -w /tmp busybox sh -c 'echo $MODE; pwd'\n  zlayer run --rm --isolation sandbox busybox true\n  zlayer run --rm -it busybox sh"
    )]
    Run(RunArgs),
    /// Create a container without starting it.
    #[command(
        after_help = "Examples:\n  zlayer create --name job busybox sh -c 'echo done'\n  zlayer start -a job"
    )]
    Create(CreateArgs),
    /// Start created or stopped containers.
    #[command(after_help = "Examples:\n  zlayer start web\n  zlayer start -a job")]
    Start(StartArgs),
    /// List containers.
    #[command(after_help = "Examples:\n  zlayer ps\n  zlayer ps -a --format json")]
    Ps(PsArgs),
    /// Print a container's logs.
    #[command(after_help = "Examples:\n  zlayer logs web\n  zlayer logs -f --tail 10 -t web")]
    Logs(LogsArgs),
    /// Stop containers gracefully (signal, wait, then kill).
    #[command(after_help = "Examples:\n  zlayer stop web\n  zlayer stop -t 2 web db")]
    Stop(StopArgs),
    /// Send a signal to containers.
    #[command(after_help = "Examples:\n  zlayer kill web\n  zlayer kill -s HUP web")]
    Kill(KillArgs),
    /// Remove containers.
    #[command(after_help = "Examples:\n  zlayer rm job\n  zlayer rm -f web")]
    Rm(RmArgs),
    /// Wait for containers to end and print their exit codes.
    #[command(after_help = "Examples:\n  zlayer wait job")]
    Wait(NamesArgs),
    /// Show everything about containers, as JSON.
    #[command(after_help = "Examples:\n  zlayer inspect web")]
    Inspect(NamesArgs),
    /// Run a command in a running container.
    #[command(
        after_help = "Examples:\n  zlayer exec web ls /\n  zlayer exec -e A=1 -u 1000 -w /tmp web sh -c 'id; pwd'\n  echo hi | zlayer exec -i web cat"
    )]
    Exec(ExecArgs),
    /// Show resource usage.
    #[command(after_help = "Examples:\n  zlayer stats --no-stream web")]
    Stats(StatsArgs),
    /// Freeze every process of containers.
    #[command(after_help = "Examples:\n  zlayer pause web")]
    Pause(NamesArgs),
    /// Thaw paused containers.
    #[command(after_help = "Examples:\n  zlayer unpause web")]
    Unpause(NamesArgs),
    /// List a container's published ports.
    #[command(after_help = "Examples:\n  zlayer port web")]
    Port(NameArgs),
    /// Pull an image from a registry.
    #[command(
        after_help = "Examples:\n  zlayer pull localhost:5000/busybox:latest\n  zlayer pull --policy newer registry.example.com/app:1.2"
    )]
    Pull(PullArgs),
    /// Import an image from an OCI layout, an oci-archive or a docker-archive.
    #[command(
        after_help = "Examples:\n  zlayer load -i busybox.tar\n  zlayer load -i ./oci-layout --tag busybox:latest"
    )]
    Load(LoadArgs),
    /// List images.
    #[command(after_help = "Examples:\n  zlayer images\n  zlayer images --format json")]
    Images,
    /// Remove images.
    #[command(after_help = "Examples:\n  zlayer rmi busybox:latest")]
    Rmi(RmiArgs),
    /// Image maintenance.
    #[command(subcommand)]
    Image(ImageCommand),
    /// The `vm` isolation's kernel bundle.
    #[command(subcommand)]
    Vm(VmCommand),
    /// What zlayer keeps on disk.
    #[command(subcommand)]
    System(SystemCommand),
    /// Bridge networks containers join with `--network NAME`.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Create or update a deployment: services with replicas, in dependency order.
    #[command(
        after_help = "Examples:\n  zlayer deploy -f shop.yaml\n  zlayer ps --deployment shop\n  zlayer down shop"
    )]
    Deploy(DeployArgs),
    /// Stop and remove every container of a deployment.
    #[command(after_help = "Examples:\n  zlayer down shop")]
    Down(DownArgs),
    /// Run the daemon: supervision, restart policies, health checks, and the
    /// zlayer and Docker Engine APIs on unix sockets.
    #[command(
        after_help = "Examples:\n  zlayer daemon\n  zlayer daemon --group docker\n  DOCKER_HOST=unix:///run/zlayer/docker.sock docker run --rm busybox echo hi"
    )]
    Daemon(DaemonArgs),
    /// Internal: supervise one container (restart policy, health checks)
    /// while no daemon runs; started by `zlayer` itself.
    #[command(hide = true)]
    Supervise(SuperviseArgs),
}

#[cfg_attr(doc, doc = "`zlayer validate`.")]
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The spec file (`-` for standard input).
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
}

#[cfg_attr(doc, doc = "Options shared by `run` and `create`.")]
#[derive(Debug, Args, Clone)]
pub struct ContainerOptions {
    /// Name of the container (unique).
    #[arg(long)]
    pub name: Option<String>,
    /// Environment variable KEY=VALUE (repeatable).
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Publish a port: [IP:]HOST:CONTAINER[/udp] or CONTAINER (random host port).
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Mount a volume: SRC:DST[:ro] (SRC a host path or a volume name).
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    /// Mount a tmpfs at this path.
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// User: uid, uid:gid or a name from the image's /etc/passwd.
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Memory limit (e.g. 256m, 1g, 512Mi).
    #[arg(long)]
    pub memory: Option<String>,
    /// CPU limit (e.g. 0.5).
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Maximum number of processes.
    #[arg(long)]
    pub pids_limit: Option<i64>,
    /// Network: none, host, bridge (the default) or the NAME of a network
    /// made with `zlayer network create` (also written bridge:NAME).
    #[arg(long)]
    pub network: Option<String>,
    /// Isolation: container, sandbox or vm.
    #[arg(long)]
    pub isolation: Option<String>,
    /// Label KEY=VALUE (repeatable).
    #[arg(short = 'l', long = "label")]
    pub label: Vec<String>,
    /// Override the image's entrypoint.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Pull policy: always, if_not_present, never or newer (also `missing`).
    #[arg(long, default_value = "if_not_present")]
    pub pull: String,
    /// Keep standard input open.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give the workload a terminal (container and sandbox isolation); with
    /// -i, this terminal is put in raw mode and its size follows yours.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Stop signal (default SIGTERM or the image's).
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Restart policy: no, always, on-failure[:N] or unless-stopped
    /// (supervised by the daemon, or by a small per-container supervisor
    /// process when no daemon runs).
    #[arg(long)]
    pub restart: Option<String>,
    /// Image to run.
    pub image: String,
    /// Command and arguments (override the image's Cmd).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[cfg_attr(doc, doc = "`zlayer run`.")]
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Run in the background and print the container id.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Container options.
    #[command(flatten)]
    pub opts: ContainerOptions,
}

#[cfg_attr(doc, doc = "`zlayer create`.")]
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Container options.
    #[command(flatten)]
    pub opts: ContainerOptions,
}

#[cfg_attr(doc, doc = "`zlayer start`.")]
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach: stream output and exit with the container's code.
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Containers (names or ids).
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[cfg_attr(doc, doc = "`zlayer ps`.")]
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default: running only).
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only ids.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Only containers of this deployment.
    #[arg(long)]
    pub deployment: Option<String>,
}

#[cfg_attr(doc, doc = "`zlayer logs`.")]
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep streaming until the container exits.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the last N lines.
    #[arg(long = "tail", short = 'n')]
    pub tail: Option<String>,
    /// Prefix lines with their timestamp.
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Only lines since this many seconds ago (e.g. 10s, 5m) or an RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Container (name or id).
    pub container: String,
}

#[cfg_attr(doc, doc = "`zlayer stop`.")]
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before killing.
    #[arg(short = 't', long = "time")]
    pub time: Option<u64>,
    /// Containers (names or ids).
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[cfg_attr(doc, doc = "`zlayer kill`.")]
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send (name or number).
    #[arg(short = 's', long, default_value = "KILL")]
    pub signal: String,
    /// Containers (names or ids).
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[cfg_attr(doc, doc = "`zlayer rm`.")]
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill and remove running containers.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Containers (names or ids).
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[cfg_attr(doc, doc = "Commands that take one or more containers.")]
#[derive(Debug, Args)]
pub struct NamesArgs {
    /// Containers (names or ids).
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[cfg_attr(doc, doc = "Commands that take one container.")]
#[derive(Debug, Args)]
pub struct NameArgs {
    /// Container (name or id).
    pub container: String,
}

#[cfg_attr(doc, doc = "`zlayer exec`.")]
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Pass standard input to the command.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Not supported: exec runs on pipes (refused with an explanation).
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Environment variable KEY=VALUE (repeatable).
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// User: uid, uid:gid or a name.
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Working directory.
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// Container (name or id).
    pub container: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

#[cfg_attr(doc, doc = "`zlayer stats`.")]
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Print one sample and exit.
    #[arg(long)]
    pub no_stream: bool,
    /// Containers (names or ids; default: all running).
    pub containers: Vec<String>,
}

#[cfg_attr(doc, doc = "`zlayer pull`.")]
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Pull policy: always, if_not_present, never or newer.
    #[arg(long, default_value = "always")]
    pub policy: String,
    /// Allow plain HTTP to a non-loopback registry.
    #[arg(long)]
    pub insecure: bool,
    /// Image reference.
    pub reference: String,
}

#[cfg_attr(doc, doc = "`zlayer load`.")]
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// OCI layout directory, oci-archive tar or docker-archive tar.
    #[arg(short = 'i', long = "input")]
    pub input: PathBuf,
    /// Reference to store the image under.
    #[arg(long)]
    pub tag: Option<String>,
}

#[cfg_attr(doc, doc = "`zlayer rmi`.")]
#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Image references.
    #[arg(required = true)]
    pub references: Vec<String>,
}

/// `zlayer image ...`.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum ImageCommand {
    /// Delete blobs and snapshots no image or container uses, and every
    /// partial download or import.
    #[command(after_help = "Examples:\n  zlayer image prune\n  zlayer image prune --format json")]
    Prune,
    /// List images (same as `zlayer images`).
    Ls,
    /// Build the bundled busybox image from the host's busybox-static
    /// (`localhost/zlayer/busybox:latest`), the default image for examples.
    #[command(
        after_help = "Examples:\n  zlayer image builtin\n  zlayer run --rm localhost/zlayer/busybox echo hello"
    )]
    Builtin(BuiltinArgs),
}

#[cfg_attr(doc, doc = "`zlayer image builtin`.")]
#[derive(Debug, Args)]
pub struct BuiltinArgs {
    /// Reference to store the image under.
    #[arg(long, default_value = zlayer_image::fixtures::BUSYBOX_REF)]
    pub tag: String,
}

#[cfg_attr(doc, doc = "`zlayer deploy`.")]
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The spec file (`-` for standard input).
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
    /// How long a dependency may take to reach its condition when the spec
    /// gives no `timeout` (e.g. 30s; default 60s).
    #[arg(long)]
    pub timeout: Option<String>,
}

#[cfg_attr(doc, doc = "`zlayer down`.")]
#[derive(Debug, Args)]
pub struct DownArgs {
    /// The deployment's name.
    pub deployment: String,
}

#[cfg_attr(doc, doc = "`zlayer supervise ID` (internal).")]
#[derive(Debug, Args)]
pub struct SuperviseArgs {
    /// The container's id.
    pub container: String,
}

#[cfg_attr(doc, doc = "`zlayer daemon` (it listens on the global `--socket`).")]
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Also serve the Docker Engine API here.
    #[arg(long, default_value = zlayer_daemon::DEFAULT_DOCKER_SOCKET)]
    pub docker_socket: PathBuf,
    /// Do not open the Docker socket.
    #[arg(long)]
    pub no_docker_socket: bool,
    /// Let this group use the sockets (mode 0660); default: root only (0600).
    #[arg(long)]
    pub group: Option<String>,
}

/// `zlayer network ...`.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum NetworkCommand {
    /// Create a bridge network; its containers reach each other by name and
    /// no container of another network.
    #[command(
        after_help = "Examples:\n  zlayer network create backend\n  zlayer network create --subnet 10.90.0.0/24 db\n  zlayer run -d --network backend --name api busybox httpd -f -p 80"
    )]
    Create(NetworkCreateArgs),
    /// List networks (the default `bridge` first).
    #[command(
        visible_alias = "list",
        after_help = "Examples:\n  zlayer network ls\n  zlayer network ls --format json"
    )]
    Ls,
    /// Remove networks no container uses.
    #[command(
        visible_alias = "remove",
        after_help = "Examples:\n  zlayer network rm backend"
    )]
    Rm(NetworkRmArgs),
}

#[cfg_attr(doc, doc = "`zlayer network create`.")]
#[derive(Debug, Args)]
pub struct NetworkCreateArgs {
    /// Subnet in CIDR form (default: a free /24 of 10.89.0.0/16).
    #[arg(long)]
    pub subnet: Option<String>,
    /// The network's name (1-15 letters, digits, `-`, `_`, `.`).
    pub name: String,
}

#[cfg_attr(doc, doc = "`zlayer network rm`.")]
#[derive(Debug, Args)]
pub struct NetworkRmArgs {
    /// Networks to remove.
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// `zlayer system ...`.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum SystemCommand {
    /// Show the disk space images, containers, volumes and partial
    /// downloads take under the data root.
    #[command(after_help = "Examples:\n  zlayer system df\n  zlayer system df --format json")]
    Df,
}

/// `zlayer vm ...`.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum VmCommand {
    /// Build the VM kernel + initramfs from Debian's linux-image-amd64 and the
    /// static guest agent.
    #[command(
        after_help = "Examples:\n  zlayer vm build-kernel\n  zlayer vm build-kernel --guest ./zlayer-guest /tmp/kernel"
    )]
    BuildKernel(BuildKernelArgs),
    /// Install a kernel bundle published as an OCI artifact in a registry.
    #[command(
        after_help = "Examples:\n  zlayer vm install-kernel localhost:5000/zlayer/kernel:6.1"
    )]
    InstallKernel(InstallKernelArgs),
}

#[cfg_attr(doc, doc = "`zlayer vm build-kernel`.")]
#[derive(Debug, Args)]
pub struct BuildKernelArgs {
    /// The static guest agent (default: `zlayer-guest` next to this binary).
    #[arg(long)]
    pub guest: Option<PathBuf>,
    /// Use this kernel .deb instead of `apt-get download linux-image-amd64`.
    #[arg(long)]
    pub deb: Option<PathBuf>,
    /// Where to write the bundle (default: `<root>/vm/kernel`, where the vm runtime looks).
    pub out: Option<PathBuf>,
}

#[cfg_attr(doc, doc = "`zlayer vm install-kernel`.")]
#[derive(Debug, Args)]
pub struct InstallKernelArgs {
    /// Reference of the kernel bundle artifact.
    pub reference: String,
    /// Allow plain HTTP to a non-loopback registry.
    #[arg(long)]
    pub insecure: bool,
}
