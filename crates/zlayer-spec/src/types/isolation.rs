//! [`Isolation`]: which runtime runs a service, picked by a label.

use crate::macros::string_enum;

/// The label that picks a service's isolation: `com.zlayer.isolation: sandbox`.
pub const ISOLATION_LABEL: &str = "com.zlayer.isolation";

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
