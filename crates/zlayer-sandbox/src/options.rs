//! Sandbox options read from a service's labels and fields.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use zlayer_runtime::error::{Result, RuntimeError};
use zlayer_spec::{NetworkMode, ServiceSpec};

use super::config::{
    ALLOW_SYSCALLS_LABEL, CONNECT_PORTS_LABEL, DEGRADED_LABEL, NETWORK_LABEL, READ_PATHS_LABEL,
};
use super::seccomp;

/// What the sandbox may do on the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkAccess {
    /// No restriction: outbound and inbound on every port (the default).
    Full,
    /// TCP bind only to the assigned ports, TCP connect only to the
    /// sandbox's own and explicitly allowed ports; no UDP or raw sockets.
    Localhost,
    /// No IP sockets at all (Unix sockets only).
    None,
}

/// The sandbox knobs of one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxOptions {
    /// Network access.
    pub network: NetworkAccess,
    /// Extra TCP ports a `localhost` sandbox may connect to.
    pub connect_ports: Vec<u16>,
    /// Syscalls taken off the default deny list.
    pub allow_syscalls: Vec<String>,
    /// Whether a start without (full) Landlock is acceptable.
    pub allow_degraded: bool,
    /// Extra host paths readable and executable.
    pub read_paths: Vec<PathBuf>,
}

impl SandboxOptions {
    /// Reads the options of `spec`, naming the bad label on error.
    pub fn from_spec(spec: &ServiceSpec) -> Result<Self> {
        let label = |k: &str| spec.labels.get(k).map(|v| v.trim());
        let network = match label(NETWORK_LABEL) {
            None | Some("") => {
                if spec.network_mode == NetworkMode::None {
                    NetworkAccess::None
                } else {
                    NetworkAccess::Full
                }
            }
            Some("full") => NetworkAccess::Full,
            Some("localhost") => NetworkAccess::Localhost,
            Some("none") => NetworkAccess::None,
            Some(other) => {
                return Err(RuntimeError::InvalidSpec(format!(
                    "label {NETWORK_LABEL}={other:?} is not a sandbox network; use full, localhost or none"
                )))
            }
        };
        let connect_ports = split_list(label(CONNECT_PORTS_LABEL), ',')
            .into_iter()
            .map(|p| {
                p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                    RuntimeError::InvalidSpec(format!(
                        "label {CONNECT_PORTS_LABEL}: {p:?} is not a port; list ports 1-65535 separated by commas"
                    ))
                })
            })
            .collect::<Result<Vec<u16>>>()?;
        let allow_syscalls = split_list(label(ALLOW_SYSCALLS_LABEL), ',');
        for name in &allow_syscalls {
            if !seccomp::is_deniable(name) {
                return Err(RuntimeError::InvalidSpec(format!(
                    "label {ALLOW_SYSCALLS_LABEL}: {name:?} is not on the sandbox's deny list ({})",
                    seccomp::deniable_names().join(", ")
                )));
            }
        }
        let allow_degraded = match label(DEGRADED_LABEL) {
            None | Some("") | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(RuntimeError::InvalidSpec(format!(
                    "label {DEGRADED_LABEL}={other:?} must be true or false"
                )))
            }
        };
        let read_paths = split_list(label(READ_PATHS_LABEL), ':')
            .into_iter()
            .map(|p| {
                let path = PathBuf::from(&p);
                if path.is_absolute() {
                    Ok(path)
                } else {
                    Err(RuntimeError::InvalidSpec(format!(
                        "label {READ_PATHS_LABEL}: {p:?} is not an absolute host path"
                    )))
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(SandboxOptions {
            network,
            connect_ports,
            allow_syscalls,
            allow_degraded,
            read_paths,
        })
    }
}

fn split_list(v: Option<&str>, sep: char) -> Vec<String> {
    v.map(|v| {
        v.split(sep)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    })
    .unwrap_or_default()
}

/// A numeric user and group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserIds {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// Resolves `user` (`uid`, `uid:gid`, `name` or `name:group`) against the
/// rootfs's `/etc/passwd` and `/etc/group`.
pub fn resolve_user(user: &str, rootfs: &Path) -> Result<UserIds> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap_or_default();
    let (uid, default_gid) = if let Ok(uid) = u.parse::<u32>() {
        let gid = passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 3 && f[2] == u)
            .and_then(|f| f[3].parse().ok());
        (uid, gid.unwrap_or(uid))
    } else {
        let f = passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 3 && f[0] == u)
            .ok_or_else(|| {
                RuntimeError::InvalidSpec(format!(
                    "user {u:?} is not in the image's /etc/passwd; use a numeric uid[:gid]"
                ))
            })?;
        let uid = f[2].parse().map_err(|_| bad_passwd(u))?;
        let gid = f[3].parse().map_err(|_| bad_passwd(u))?;
        (uid, gid)
    };
    let gid = match g {
        None => default_gid,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => std::fs::read_to_string(rootfs.join("etc/group"))
                .unwrap_or_default()
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() > 2 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    RuntimeError::InvalidSpec(format!(
                        "group {g:?} is not in the image's /etc/group; use a numeric gid"
                    ))
                })?,
        },
    };
    Ok(UserIds { uid, gid })
}

fn bad_passwd(u: &str) -> RuntimeError {
    RuntimeError::InvalidSpec(format!(
        "the image's /etc/passwd entry of {u:?} has no numeric ids; use a numeric uid[:gid]"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        let mut spec = ServiceSpec::minimal("s", "img");
        assert_eq!(
            SandboxOptions::from_spec(&spec).unwrap().network,
            NetworkAccess::Full
        );
        spec.network_mode = NetworkMode::None;
        assert_eq!(
            SandboxOptions::from_spec(&spec).unwrap().network,
            NetworkAccess::None
        );
        spec.labels.insert(NETWORK_LABEL.into(), "localhost".into());
        spec.labels
            .insert(CONNECT_PORTS_LABEL.into(), "80, 443".into());
        spec.labels
            .insert(ALLOW_SYSCALLS_LABEL.into(), "ptrace".into());
        let o = SandboxOptions::from_spec(&spec).unwrap();
        assert_eq!(o.network, NetworkAccess::Localhost);
        assert_eq!(o.connect_ports, [80, 443]);
        assert_eq!(o.allow_syscalls, ["ptrace"]);
        spec.labels.insert(NETWORK_LABEL.into(), "wifi".into());
        assert!(SandboxOptions::from_spec(&spec)
            .unwrap_err()
            .to_string()
            .contains("full, localhost or none"));
        spec.labels.remove(NETWORK_LABEL);
        spec.labels
            .insert(ALLOW_SYSCALLS_LABEL.into(), "read".into());
        assert!(SandboxOptions::from_spec(&spec)
            .unwrap_err()
            .to_string()
            .contains("deny list"));
    }

    #[test]
    fn users() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("etc/group"), "app:x:1001:\nstaff:x:50:\n").unwrap();
        assert_eq!(
            resolve_user("app", dir.path()).unwrap(),
            UserIds {
                uid: 1000,
                gid: 1001
            }
        );
        assert_eq!(
            resolve_user("1000", dir.path()).unwrap(),
            UserIds {
                uid: 1000,
                gid: 1001
            }
        );
        assert_eq!(
            resolve_user("7:8", dir.path()).unwrap(),
            UserIds { uid: 7, gid: 8 }
        );
        assert_eq!(
            resolve_user("app:staff", dir.path()).unwrap(),
            UserIds { uid: 1000, gid: 50 }
        );
        assert!(resolve_user("nobody", dir.path()).is_err());
    }
}
