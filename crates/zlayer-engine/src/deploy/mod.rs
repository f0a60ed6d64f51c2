//! Deployments: `zlayer deploy -f spec.yaml` and `zlayer down NAME`.
//!
//! Split in two:
//! - [`plan()`] (pure): from the spec and the deployment's existing
//!   containers, what to keep, start, create, replace (spec hash changed) and
//!   remove (service gone or scaled down), services in `depends` order.
//! - [`apply`]: carries a plan out, waiting before each service for its
//!   dependencies' conditions (`started`, `healthy`, `ready` = healthy) with
//!   their `timeout` and `on_timeout`.
//!
//! Containers are named `<deployment>-<service>-<n>` (n from 1) and known to
//! runtimes as `ContainerId { service: "<deployment>-<service>", replica: n }`.

mod apply;
mod order;
mod plan;

pub use apply::{apply, down, DeployOptions, DeployReport, DEFAULT_DEPENDENCY_TIMEOUT};
pub use order::dependency_order;
pub use plan::{
    container_name, desired_spec, plan, runtime_key, Existing, Plan, ServicePlan, Step,
};
