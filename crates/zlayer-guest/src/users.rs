//! Resolving `user[:group]` against the container's `/etc/passwd` and
//! `/etc/group` (no NSS: the agent is static and the image's files rule).

use crate::error::{GuestError, Result};

/// A resolved identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups (from `/etc/group` membership).
    pub groups: Vec<u32>,
    /// Home directory, when known.
    pub home: Option<String>,
}

/// One `/etc/passwd` entry: (name, uid, gid, home).
fn passwd_entries(passwd: &str) -> impl Iterator<Item = (&str, u32, u32, &str)> {
    passwd.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 {
            return None;
        }
        Some((f[0], f[2].parse().ok()?, f[3].parse().ok()?, f[5]))
    })
}

/// One `/etc/group` entry: (name, gid, members).
fn group_entries(group: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    group.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 {
            return None;
        }
        let members = f[3].split(',').filter(|m| !m.is_empty()).collect();
        Some((f[0], f[2].parse().ok()?, members))
    })
}

/// Resolves `spec` (`name`, `uid`, `name:group`, `uid:gid`, ...) with the
/// text of `/etc/passwd` and `/etc/group`. A numeric uid absent from passwd
/// is allowed (gid defaults to the uid's group, else the uid itself); an
/// unknown name is an error.
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<Identity> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let entry = if let Ok(uid) = user.parse::<u32>() {
        passwd_entries(passwd)
            .find(|e| e.1 == uid)
            .map(|(n, u, g, h)| (Some(n), u, g, Some(h)))
            .unwrap_or((None, uid, uid, None))
    } else {
        passwd_entries(passwd)
            .find(|e| e.0 == user)
            .map(|(n, u, g, h)| (Some(n), u, g, Some(h)))
            .ok_or_else(|| GuestError::Spawn {
                kind: zlayer_vm_proto::SpawnFailure::UnknownUser,
                message: format!(
                    "unable to find user {user}: no matching entries in the container's /etc/passwd"
                    ),
            })?
    };
    let (name, uid, mut gid, home) = entry;
    if let Some(g) = grp.filter(|g| !g.is_empty()) {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group_entries(group)
                .find(|e| e.0 == g)
                .map(|e| e.1)
                .ok_or_else(|| {
                    GuestError::Spawn {
                    kind: zlayer_vm_proto::SpawnFailure::UnknownUser,
                    message: format!(
                        "unable to find group {g}: no matching entries in the container's /etc/group"
                    ),
                    }
                })?,
        };
    }
    let mut groups: Vec<u32> = match name {
        Some(n) => group_entries(group)
            .filter(|e| e.2.contains(&n))
            .map(|e| e.1)
            .collect(),
        None => Vec::new(),
    };
    if !groups.contains(&gid) {
        groups.insert(0, gid);
    }
    Ok(Identity {
        uid,
        gid,
        groups,
        home: home.map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www:/var/www:/bin/false\nbroken\n";
    const GROUP: &str = "root:x:0:\nwww-data:x:33:\nstaff:x:50:www-data,other\n";

    #[test]
    fn resolves_names_numbers_and_groups() {
        let id = resolve("www-data", PASSWD, GROUP).unwrap();
        assert_eq!((id.uid, id.gid), (33, 33));
        assert_eq!(id.groups, vec![33, 50]);
        assert_eq!(id.home.as_deref(), Some("/var/www"));
        let id = resolve("1000", PASSWD, GROUP).unwrap();
        assert_eq!((id.uid, id.gid, id.home), (1000, 1000, None));
        let id = resolve("33:staff", PASSWD, GROUP).unwrap();
        assert_eq!((id.uid, id.gid), (33, 50));
        let id = resolve("0:7", PASSWD, GROUP).unwrap();
        assert_eq!((id.uid, id.gid), (0, 7));
    }

    #[test]
    fn unknown_names_are_errors() {
        assert!(resolve("nobody-here", PASSWD, GROUP)
            .unwrap_err()
            .to_string()
            .contains("unable to find user nobody-here"));
        assert!(resolve("root:nogroup", PASSWD, GROUP)
            .unwrap_err()
            .to_string()
            .contains("unable to find group nogroup"));
    }
}
