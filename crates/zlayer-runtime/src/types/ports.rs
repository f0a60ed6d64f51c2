//! Published ports of a container.

use serde::{Deserialize, Serialize};
use zlayer_spec::Protocol;

/// One published port: host address and port → container port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMappingEntry {
    /// Host address the port is bound to (`0.0.0.0`, `127.0.0.1`, ...).
    pub host_ip: String,
    /// The host port actually bound (never 0).
    pub host_port: u16,
    /// The port inside the container.
    pub container_port: u16,
    /// tcp or udp.
    pub protocol: Protocol,
}
