//! The public spec types, one concern per file.

mod depends;
mod deployment;
mod health;
mod image;
mod isolation;
mod network;
mod resources;
mod restart;
mod scale;
mod service;
mod storage;

pub use depends::{DependsCondition, DependsSpec, OnTimeout};
pub use deployment::DeploymentSpec;
pub use health::{HealthCheck, HealthSpec};
pub use image::{CommandSpec, ImageSpec, PullPolicy};
pub use isolation::{Isolation, ISOLATION_LABEL, RUNTIME_ANNOTATION, TTY_LABEL};
pub use network::{EndpointSpec, Expose, NetworkMode, PortMapping, PortProtocol, Protocol};
pub use resources::{GpuSpec, ResourcesSpec};
pub use restart::{RestartKind, RestartPolicy};
pub use scale::ScaleSpec;
pub use service::{LifecycleSpec, ResourceType, ServiceSpec};
pub use storage::StorageSpec;
