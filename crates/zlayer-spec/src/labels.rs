//! Every label and annotation zlayer reads or writes, in one place.
//!
//! Labels are how a user (spec file, `--label`, the Docker API) asks for
//! something the spec has no field for; zlayer also records a few of its
//! own. Code compares against these constants, never against literals.

/// Picks a service's isolation: `com.zlayer.isolation: sandbox` (see
/// [`crate::Isolation`]).
pub const ISOLATION_LABEL: &str = "com.zlayer.isolation";

/// The OCI image annotation (or config label) naming the isolation an image
/// wants when the service does not choose: `com.zlayer.runtime: vm`.
pub const RUNTIME_ANNOTATION: &str = "com.zlayer.runtime";

/// Asks for a terminal (`docker run -t`): `com.zlayer.tty: "true"`. The
/// workload's stdin, stdout and stderr are a pseudo-terminal; its output is
/// logged raw (CR LF line ends and prompts included).
pub const TTY_LABEL: &str = "com.zlayer.tty";

/// Keeps the workload's stdin open for writers (`docker run -i`, the Docker
/// API's `OpenStdin`).
pub const STDIN_LABEL: &str = "com.zlayer.stdin";

/// The deployment a container belongs to.
pub const DEPLOYMENT_LABEL: &str = "com.zlayer.deployment";

/// The service a container belongs to (set by deployments); the service
/// name becomes one of the container's network aliases.
pub const SERVICE_LABEL: &str = "com.zlayer.service";

/// Sandbox: the network, `full` (default), `localhost` or `none`;
/// `network_mode: none` in the spec also means `none`.
pub const SANDBOX_NETWORK_LABEL: &str = "com.zlayer.sandbox.network";

/// Sandbox: extra TCP ports (comma separated) a `localhost` sandbox may
/// connect to, besides its own endpoints.
pub const SANDBOX_CONNECT_PORTS_LABEL: &str = "com.zlayer.sandbox.connect-ports";

/// Sandbox: syscalls (comma separated, from the default deny list) the
/// workload may use after all, e.g. `ptrace` for a debugger.
pub const SANDBOX_ALLOW_SYSCALLS_LABEL: &str = "com.zlayer.sandbox.allow-syscalls";

/// Sandbox: `true` allows a start without Landlock (or with a Landlock too
/// old for the network rules), enforced by seccomp and capabilities only.
pub const SANDBOX_DEGRADED_LABEL: &str = "com.zlayer.sandbox.allow-degraded";

/// Sandbox: extra host paths (colon separated) the workload may read and
/// execute, e.g. `/usr/share/perl:/usr/bin`.
pub const SANDBOX_READ_PATHS_LABEL: &str = "com.zlayer.sandbox.read-paths";
