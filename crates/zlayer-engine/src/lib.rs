//! zlayer-engine: the node, assembled ([`Engine::open`]), and what the CLI
//! and the daemon share above the hosting layer: containers by name or id,
//! deployments, health checks and restart supervision.
//!
//! Everything lives on disk under the data root, so an embedded CLI and a
//! daemon on the same root see the same containers.

pub mod deploy;
pub mod engine;
pub mod error;
pub mod health;
pub mod names;
pub mod node;
pub mod spec_hash;
pub mod supervise;

pub use engine::{CreateRequest, Engine, DEPLOYMENT_LABEL, SERVICE_LABEL};
pub use error::{EngineError, Result};
pub use node::NodeConfig;
pub use zlayer_runtime::{ContainerRecord, ContainerView};
