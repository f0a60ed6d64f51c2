//! [`DeploymentSpec`]: the whole spec file.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::ServiceSpec;

/// A deployment: a named set of services (`version: v1`, `deployment: shop`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentSpec {
    /// Spec format version; only `v1` exists.
    pub version: String,
    /// The deployment's name.
    pub deployment: String,
    /// The services, in file order, keyed by service name.
    #[serde(default)]
    pub services: IndexMap<String, ServiceSpec>,
}

impl DeploymentSpec {
    /// Copies each map key into its service's [`ServiceSpec::name`].
    pub fn fill_names(&mut self) {
        for (name, service) in &mut self.services {
            service.name.clone_from(name);
        }
    }
}
