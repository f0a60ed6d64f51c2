//! Networking: [`NetworkMode`], [`EndpointSpec`] and [`PortMapping`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::macros::string_enum;
use crate::SpecError;

/// Which network a service joins.
///
/// Written as `bridge` (the default bridge network), `host`, `none` or
/// `bridge:NAME` (a named bridge network).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum NetworkMode {
    /// The default bridge network.
    #[default]
    Bridge,
    /// The host's network namespace.
    Host,
    /// Only a loopback interface.
    None,
    /// A named bridge network (`bridge:NAME`).
    BridgeNamed(String),
}

impl FromStr for NetworkMode {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "bridge" => Ok(NetworkMode::Bridge),
            "host" => Ok(NetworkMode::Host),
            "none" => Ok(NetworkMode::None),
            _ => match s.strip_prefix("bridge:") {
                Some(name) if is_network_name(name) => Ok(NetworkMode::BridgeNamed(name.into())),
                _ => Err(SpecError::InvalidNetworkMode(s.to_string())),
            },
        }
    }
}

/// A bridge name: 1-15 characters (the Linux interface name limit) of
/// letters, digits, `-`, `_` and `.`.
fn is_network_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetworkMode::Bridge => f.write_str("bridge"),
            NetworkMode::Host => f.write_str("host"),
            NetworkMode::None => f.write_str("none"),
            NetworkMode::BridgeNamed(name) => write!(f, "bridge:{name}"),
        }
    }
}

impl TryFrom<String> for NetworkMode {
    type Error = SpecError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<NetworkMode> for String {
    fn from(mode: NetworkMode) -> Self {
        mode.to_string()
    }
}

string_enum! {
    /// A transport or application protocol of an endpoint or port mapping.
    pub enum Protocol ("protocol") {
        /// TCP (the default).
        #[default]
        Tcp => "tcp",
        /// UDP.
        Udp => "udp",
        /// HTTP over TCP.
        Http => "http",
        /// HTTPS over TCP.
        Https => "https",
    }
}

impl Protocol {
    /// The transport under this protocol: `udp` for UDP, `tcp` for the rest.
    pub fn transport(self) -> Protocol {
        match self {
            Protocol::Udp => Protocol::Udp,
            _ => Protocol::Tcp,
        }
    }
}

/// The name some runtimes use for the protocol of a port mapping.
pub type PortProtocol = Protocol;

string_enum! {
    /// Who may reach an endpoint.
    pub enum Expose ("expose") {
        /// Only other services of the deployment (the default).
        #[default]
        Internal => "internal",
        /// Anyone who can reach the host.
        Public => "public",
    }
}

/// A named port a service listens on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSpec {
    /// Endpoint name, unique within the service (e.g. `http`).
    #[serde(deserialize_with = "crate::scalar::string::deserialize")]
    pub name: String,
    /// Protocol spoken on the port; defaults to `tcp`.
    #[serde(default)]
    pub protocol: Protocol,
    /// Port inside the container, 1-65535.
    pub port: u16,
    /// Who may reach it; defaults to `internal`.
    #[serde(default)]
    pub expose: Expose,
}

/// A host port forwarded to a container port (`-p 127.0.0.1:18080:8080`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortMapping {
    /// Port on the host; `None` or 0 picks a free port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<u16>,
    /// Port inside the container, 1-65535.
    pub container_port: u16,
    /// Protocol; defaults to `tcp`.
    #[serde(default)]
    pub protocol: Protocol,
    /// Host address to bind; `None` binds all addresses.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::scalar::opt_string::deserialize"
    )]
    pub host_ip: Option<String>,
}

impl PortMapping {
    /// The host port to bind, `None` when a free port should be picked.
    pub fn fixed_host_port(&self) -> Option<u16> {
        self.host_port.filter(|p| *p != 0)
    }
}
