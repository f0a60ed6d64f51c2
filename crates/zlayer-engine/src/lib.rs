//! zlayer-engine: what the CLI and the daemon share above the runtimes —
//! the container catalog (unique names, 64-hex ids with prefix lookup, the
//! spec each container came from), deployments and supervision.
//!
//! Everything lives on disk under the data root, so an embedded CLI and a
//! daemon on the same root see the same containers.

pub mod catalog;
pub mod error;
pub mod fsutil;

pub use catalog::{Catalog, ContainerRecord};
pub use error::{EngineError, Result};
pub mod deploy;
pub mod engine;
pub mod health;
pub mod spec_hash;
pub mod supervise;

pub use engine::{ContainerView, CreateRequest, Engine, DEPLOYMENT_LABEL, SERVICE_LABEL};
