//! [`Isolation`]: which runtime runs a service, picked by a label.

use crate::macros::string_enum;

/// The label that picks a service's isolation: `com.zlayer.isolation: sandbox`.
pub const ISOLATION_LABEL: &str = "com.zlayer.isolation";

/// The label asking for a terminal (`docker run -t`): `com.zlayer.tty: "true"`.
/// The workload's stdin, stdout and stderr are a pseudo-terminal; its
/// output is logged raw (CR LF line ends and prompts included).
pub const TTY_LABEL: &str = "com.zlayer.tty";

/// The OCI annotation recording which runtime created a container.
pub const RUNTIME_ANNOTATION: &str = "com.zlayer.runtime";

string_enum! {
    /// How strongly a service is isolated from the host.
    pub enum Isolation ("isolation") {
        /// An OCI container (namespaces + cgroups); the default.
        #[default]
        Container => "container",
        /// A sandboxed process (no image root filesystem of its own).
        Sandbox => "sandbox",
        /// A microVM with its own kernel.
        Vm => "vm",
    }
}
