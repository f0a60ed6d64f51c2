//! The runtime-relevant part of an image config, stored next to each image.

use std::collections::BTreeMap;

use oci_spec::image::ImageConfiguration;
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};

/// What a runtime needs from an image config, readable without a network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// `Entrypoint`; `None` when the image sets none.
    pub entrypoint: Option<Vec<String>>,
    /// `Cmd`; `None` when the image sets none.
    pub cmd: Option<Vec<String>>,
    /// `Env` as `KEY=value` strings, in image order.
    pub env: Vec<String>,
    /// `WorkingDir`; `None` when unset or empty.
    pub working_dir: Option<String>,
    /// `User` (`name`, `uid`, `uid:gid`, ...); `None` when unset or empty.
    pub user: Option<String>,
    /// `ExposedPorts` keys such as `80/tcp`, sorted.
    pub exposed_ports: Vec<String>,
    /// `Volumes` keys, sorted.
    pub volumes: Vec<String>,
    /// Config `Labels`.
    pub labels: BTreeMap<String, String>,
    /// Manifest annotations.
    pub annotations: BTreeMap<String, String>,
    /// `StopSignal` (e.g. `SIGTERM`); `None` when unset.
    pub stop_signal: Option<String>,
    /// Image OS (`linux`).
    pub os: String,
    /// Image architecture (`amd64`, ...).
    pub architecture: String,
    /// Creation time as written in the config (RFC 3339), if any.
    pub created: Option<String>,
    /// Uncompressed layer digests, lowest first.
    pub diff_ids: Vec<Digest>,
}

impl ImageConfig {
    /// Parses a config blob (OCI or Docker format). `what` names it in errors.
    pub fn parse(bytes: &[u8], what: &str) -> Result<Self> {
        let bad = |reason: String| Error::InvalidManifest {
            kind: "config",
            digest: what.to_string(),
            reason,
        };
        let cfg: ImageConfiguration =
            serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        let diff_ids = cfg
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| d.parse::<Digest>())
            .collect::<Result<Vec<_>>>()
            .map_err(|e| bad(format!("rootfs.diff_ids: {e}")))?;
        let non_empty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        let mut out = ImageConfig {
            os: cfg.os().to_string(),
            architecture: cfg.architecture().to_string(),
            created: cfg.created().clone(),
            diff_ids,
            ..Default::default()
        };
        if let Some(c) = cfg.config() {
            out.entrypoint = c.entrypoint().clone();
            out.cmd = c.cmd().clone();
            out.env = c.env().clone().unwrap_or_default();
            out.working_dir = non_empty(c.working_dir());
            out.user = non_empty(c.user());
            out.exposed_ports = c.exposed_ports().clone().unwrap_or_default();
            out.exposed_ports.sort();
            out.volumes = c.volumes().clone().unwrap_or_default();
            out.volumes.sort();
            out.labels = c
                .labels()
                .clone()
                .map(|l| l.into_iter().collect())
                .unwrap_or_default();
            out.stop_signal = non_empty(c.stop_signal());
        }
        Ok(out)
    }

    /// The value of `key` in [`ImageConfig::env`], if set.
    pub fn env_var(&self, key: &str) -> Option<&str> {
        self.env.iter().rev().find_map(|kv| {
            kv.split_once('=')
                .filter(|(k, _)| *k == key)
                .map(|(_, v)| v)
        })
    }
}
