//! [`Isolation`]: which runtime runs a service, picked by a label.

use crate::macros::string_enum;

pub use crate::labels::{ISOLATION_LABEL, RUNTIME_ANNOTATION, TTY_LABEL};

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
