//! [`ServiceSpec`]: one service of a deployment.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    CommandSpec, DependsSpec, EndpointSpec, HealthSpec, ImageSpec, NetworkMode, PortMapping,
    ResourcesSpec, RestartPolicy, ScaleSpec, StorageSpec, ISOLATION_LABEL,
};
use crate::macros::string_enum;
use crate::DurationSpec;

string_enum! {
    /// Whether a service runs until stopped or to completion.
    pub enum ResourceType ("rtype") {
        /// A long-running service (the default).
        #[default]
        Service => "service",
        /// A job that runs to completion.
        Job => "job",
    }
}

/// What happens to a service's container when its process exits.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleSpec {
    /// Remove the container (and its anonymous volumes) once it exits.
    #[serde(default)]
    pub delete_on_exit: bool,
}

/// One service. Every field but `image` is optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// The service's name: its key under `services` (not written in the map).
    #[serde(skip)]
    pub name: String,
    /// `service` (default) or `job`.
    #[serde(default)]
    pub rtype: ResourceType,
    /// The image to run.
    pub image: ImageSpec,
    /// Entrypoint/args/workdir overrides.
    #[serde(default, skip_serializing_if = "CommandSpec::is_empty")]
    pub command: CommandSpec,
    /// Extra environment variables.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "crate::scalar::map_string::deserialize"
    )]
    pub env: BTreeMap<String, String>,
    /// Labels; [`ISOLATION_LABEL`] picks the runtime.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "crate::scalar::map_string::deserialize"
    )]
    pub labels: BTreeMap<String, String>,
    /// Network to join; defaults to `bridge`.
    #[serde(default)]
    pub network_mode: NetworkMode,
    /// Ports the service listens on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<EndpointSpec>,
    /// Host ports forwarded into the service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<PortMapping>,
    /// CPU, memory, pids and GPU limits.
    #[serde(default, skip_serializing_if = "ResourcesSpec::is_empty")]
    pub resources: ResourcesSpec,
    /// Mounts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub storage: Vec<StorageSpec>,
    /// Replicas; defaults to one fixed replica.
    #[serde(default)]
    pub scale: ScaleSpec,
    /// Health check; absent means "healthy once started".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthSpec>,
    /// Services to wait for before starting.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends: Vec<DependsSpec>,
    /// Restart behaviour; defaults to never.
    #[serde(default, skip_serializing_if = "RestartPolicy::is_default")]
    pub restart_policy: RestartPolicy,
    /// Exit behaviour.
    #[serde(default)]
    pub lifecycle: LifecycleSpec,
    /// Signal sent to stop the service (`SIGTERM`, `TERM`, `15`); defaults to
    /// the image's `StopSignal`, else SIGTERM.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::scalar::opt_string::deserialize"
    )]
    pub stop_signal: Option<String>,
    /// Time between the stop signal and SIGKILL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<DurationSpec>,
    /// `user`, `uid` or `uid:gid` to run as; defaults to the image's `User`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::scalar::opt_string::deserialize"
    )]
    pub user: Option<String>,
}

impl ServiceSpec {
    /// A service named `name` running `image` with every other field at its default.
    pub fn minimal(name: impl Into<String>, image: impl Into<String>) -> Self {
        ServiceSpec {
            name: name.into(),
            rtype: ResourceType::default(),
            image: ImageSpec::new(image),
            command: CommandSpec::default(),
            env: BTreeMap::new(),
            labels: BTreeMap::new(),
            network_mode: NetworkMode::default(),
            endpoints: Vec::new(),
            port_mappings: Vec::new(),
            resources: ResourcesSpec::default(),
            storage: Vec::new(),
            scale: ScaleSpec::default(),
            health: None,
            depends: Vec::new(),
            restart_policy: RestartPolicy::default(),
            lifecycle: LifecycleSpec::default(),
            stop_signal: None,
            stop_grace_period: None,
            user: None,
        }
    }

    /// How many instances to start on deploy: `replicas` for `fixed`, 1 for `manual`.
    pub fn replicas(&self) -> u32 {
        match self.scale {
            ScaleSpec::Fixed { replicas } => replicas,
            ScaleSpec::Manual => 1,
        }
    }

    /// The raw value of the [`ISOLATION_LABEL`] label, if set.
    pub fn isolation_label(&self) -> Option<&str> {
        self.labels.get(ISOLATION_LABEL).map(String::as_str)
    }

    /// The isolation the label asks for: `Ok(None)` when unset, an error when
    /// the value is not `container`, `sandbox` or `vm`.
    pub fn isolation(&self) -> Result<Option<super::Isolation>, crate::SpecError> {
        self.isolation_label().map(str::parse).transpose()
    }
}
