//! Registry credentials: explicit ones and those saved by `docker login`.
//!
//! `docker login` stores credentials in `$DOCKER_CONFIG/config.json` (default
//! `~/.docker/config.json`) under `auths`, keyed by registry host (Docker Hub
//! uses the legacy key `https://index.docker.io/v1/`), with `auth` holding
//! `base64(username:password)`.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

use crate::Error;

/// A username and password (or access token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    /// The account name.
    pub username: String,
    /// The password or personal access token.
    pub password: String,
}

impl RegistryAuth {
    /// Builds credentials from a username and a password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the password.
        f.debug_struct("RegistryAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The parts of a Docker client `config.json` used to find credentials.
#[derive(Debug, Default, Deserialize)]
pub struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, DockerAuthEntry>,
    /// Where the file was read from (for error messages).
    #[serde(skip)]
    path: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
struct DockerAuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

impl DockerConfig {
    /// The directory holding `config.json`: `$DOCKER_CONFIG`, else `$HOME/.docker`.
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
            return Some(PathBuf::from(dir));
        }
        std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(".docker"))
    }

    /// Loads `config.json` from [`DockerConfig::default_dir`]; a missing file
    /// yields an empty configuration.
    pub fn load_default() -> Result<Self, Error> {
        match Self::default_dir() {
            Some(dir) => Self::load_dir(&dir),
            None => Ok(Self::default()),
        }
    }

    /// Loads `DIR/config.json`; a missing file yields an empty configuration.
    pub fn load_dir(dir: &Path) -> Result<Self, Error> {
        let path = dir.join("config.json");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => {
                return Err(Error::DockerConfig {
                    path,
                    reason: e.to_string(),
                })
            }
        };
        Self::parse(&bytes, Some(path))
    }

    /// Parses the JSON text of a `config.json`.
    pub fn parse(bytes: &[u8], path: Option<PathBuf>) -> Result<Self, Error> {
        let mut cfg: DockerConfig =
            serde_json::from_slice(bytes).map_err(|e| Error::DockerConfig {
                path: path.clone().unwrap_or_else(|| PathBuf::from("config.json")),
                reason: format!("invalid JSON: {e}"),
            })?;
        cfg.path = path;
        Ok(cfg)
    }

    /// The credentials saved for `registry` (as written in an image
    /// reference, e.g. `docker.io`, `ghcr.io` or `127.0.0.1:5000`), if any.
    pub fn credentials_for(&self, registry: &str) -> Result<Option<RegistryAuth>, Error> {
        let wanted = normalize_key(registry);
        for (key, entry) in &self.auths {
            if normalize_key(key) != wanted {
                continue;
            }
            return self.decode(key, entry).map(Some);
        }
        Ok(None)
    }

    fn decode(&self, key: &str, entry: &DockerAuthEntry) -> Result<RegistryAuth, Error> {
        let bad = |reason: String| Error::DockerConfig {
            path: self
                .path
                .clone()
                .unwrap_or_else(|| PathBuf::from("config.json")),
            reason: format!("auths[\"{key}\"]: {reason}; run `docker login` again"),
        };
        if let Some(encoded) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|e| bad(format!("`auth` is not valid base64 ({e})")))?;
            let text =
                String::from_utf8(raw).map_err(|_| bad("`auth` is not UTF-8 text".into()))?;
            let (user, pass) = text
                .split_once(':')
                .ok_or_else(|| bad("`auth` does not decode to `username:password`".into()))?;
            return Ok(RegistryAuth::new(user, pass));
        }
        match (&entry.username, &entry.password) {
            (Some(u), Some(p)) => Ok(RegistryAuth::new(u.clone(), p.clone())),
            _ => Err(bad("has neither `auth` nor `username`/`password`".into())),
        }
    }
}

/// Reduces a registry name or `auths` key to a comparable host[:port].
fn normalize_key(key: &str) -> String {
    let mut k = key.trim();
    for scheme in ["https://", "http://"] {
        if let Some(rest) = k.strip_prefix(scheme) {
            k = rest;
        }
    }
    let host = k.split('/').next().unwrap_or(k).to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_string()
        }
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(json: &str) -> DockerConfig {
        DockerConfig::parse(json.as_bytes(), None).unwrap()
    }

    #[test]
    fn base64_auth_is_decoded() {
        // "alice:s3cr:et" — the password itself may contain ':'.
        let c = cfg(r#"{"auths":{"127.0.0.1:5000":{"auth":"YWxpY2U6czNjcjpldA=="}}}"#);
        let a = c.credentials_for("127.0.0.1:5000").unwrap().unwrap();
        assert_eq!(a.username, "alice");
        assert_eq!(a.password, "s3cr:et");
        assert!(c.credentials_for("127.0.0.1:5001").unwrap().is_none());
    }

    #[test]
    fn docker_hub_legacy_key_matches_docker_io() {
        let c = cfg(r#"{"auths":{"https://index.docker.io/v1/":{"auth":"Ym9iOnB3"}}}"#);
        let a = c.credentials_for("docker.io").unwrap().unwrap();
        assert_eq!((a.username.as_str(), a.password.as_str()), ("bob", "pw"));
        assert!(c.credentials_for("registry-1.docker.io").unwrap().is_some());
    }

    #[test]
    fn username_password_fields_and_scheme_keys() {
        let c = cfg(r#"{"auths":{"https://ghcr.io":{"username":"u","password":"p"}}}"#);
        let a = c.credentials_for("ghcr.io").unwrap().unwrap();
        assert_eq!(a, RegistryAuth::new("u", "p"));
    }

    #[test]
    fn malformed_entries_are_reported() {
        let c = cfg(r#"{"auths":{"r.example":{"auth":"!!!"}}}"#);
        let err = c.credentials_for("r.example").unwrap_err().to_string();
        assert!(err.contains("base64"), "{err}");
        let c = cfg(r#"{"auths":{"r.example":{"auth":"bm9jb2xvbg=="}}}"#);
        let err = c.credentials_for("r.example").unwrap_err().to_string();
        assert!(err.contains("username:password"), "{err}");
        assert!(DockerConfig::parse(b"{not json", None).is_err());
    }

    #[test]
    fn missing_file_is_empty_and_debug_redacts() {
        let dir = tempfile::tempdir().unwrap();
        let c = DockerConfig::load_dir(dir.path()).unwrap();
        assert!(c.credentials_for("docker.io").unwrap().is_none());
        let dbg = format!("{:?}", RegistryAuth::new("u", "hunter2"));
        assert!(!dbg.contains("hunter2"));
    }
}
