//! Opens the node on the data root.

use crate::cli::GlobalArgs;
use zlayer_engine::{Engine, NodeConfig};

/// The engine for this invocation.
pub fn open_engine(global: &GlobalArgs) -> anyhow::Result<Engine> {
    Ok(Engine::open(&global.root, NodeConfig::default())?)
}
