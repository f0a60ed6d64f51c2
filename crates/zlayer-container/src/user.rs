//! Resolving `user`, `uid`, `uid:gid`, `name:group` against the image's
//! `/etc/passwd` and `/etc/group` (docker semantics).

use super::rootfs_fs::read_in_root;
use std::path::Path;
use zlayer_runtime::error::{Result, RuntimeError};

/// A user resolved to numbers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolvedUser {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups (from `/etc/group` membership).
    pub additional_gids: Vec<u32>,
    /// Home directory from `/etc/passwd`, if the user is listed.
    pub home: Option<String>,
}

/// One `/etc/passwd` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

/// One `/etc/group` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 6 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].to_string(),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 3 {
                return None;
            }
            Some(GroupEntry {
                name: f[0].to_string(),
                gid: f[2].parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Resolves `user` (None: root) with the files of the rootfs at `rootfs`.
pub fn resolve_user(rootfs: &Path, user: Option<&str>) -> Result<ResolvedUser> {
    let read = |p: &str| {
        read_in_root(rootfs, Path::new(p))
            .map(|t| t.unwrap_or_default())
            .map_err(|e| RuntimeError::Internal(format!("reading {p} of the image failed: {e}")))
    };
    let user = user.map(str::trim).filter(|u| !u.is_empty());
    let passwd = parse_passwd(&read("/etc/passwd")?);
    let groups = if user.is_some() || !passwd.is_empty() {
        parse_group(&read("/etc/group")?)
    } else {
        Vec::new()
    };
    resolve_with(user, &passwd, &groups)
}

fn resolve_with(
    user: Option<&str>,
    passwd: &[PasswdEntry],
    groups: &[GroupEntry],
) -> Result<ResolvedUser> {
    let spec = user.unwrap_or("0");
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if u.is_empty() || g.is_some_and(str::is_empty) {
        return Err(RuntimeError::InvalidSpec(format!(
            "user {spec:?} is malformed; use `name`, `uid`, `uid:gid` or `name:group`"
        )));
    }
    let entry = match u.parse::<u32>() {
        Ok(uid) => passwd
            .iter()
            .find(|p| p.uid == uid)
            .cloned()
            .or(Some(PasswdEntry {
                name: String::new(),
                uid,
                gid: 0,
                home: String::new(),
            })),
        Err(_) => passwd.iter().find(|p| p.name == u).cloned(),
    };
    let Some(entry) = entry else {
        return Err(RuntimeError::InvalidSpec(format!(
            "user {u:?} is not in the image's /etc/passwd; use a numeric uid or a user the image defines"
        )));
    };
    let gid = match g {
        None => entry.gid,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups.iter().find(|gr| gr.name == g).map(|gr| gr.gid).ok_or_else(|| {
                RuntimeError::InvalidSpec(format!(
                    "group {g:?} is not in the image's /etc/group; use a numeric gid or a group the image defines"
                ))
            })?,
        },
    };
    let mut additional_gids: Vec<u32> = if g.is_none() && !entry.name.is_empty() {
        groups
            .iter()
            .filter(|gr| gr.members.iter().any(|m| m == &entry.name))
            .map(|gr| gr.gid)
            .filter(|g| *g != gid)
            .collect()
    } else {
        Vec::new()
    };
    additional_gids.sort_unstable();
    additional_gids.dedup();
    Ok(ResolvedUser {
        uid: entry.uid,
        gid,
        additional_gids,
        home: (!entry.home.is_empty()).then_some(entry.home),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n# comment\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1001::/home/app:/bin/sh\nbroken\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:app,root\napp:x:1001:\nstaff:x:50:app\n";

    fn r(u: Option<&str>) -> Result<ResolvedUser> {
        resolve_with(u, &parse_passwd(PASSWD), &parse_group(GROUP))
    }

    #[test]
    fn forms() {
        assert_eq!(r(None).unwrap().uid, 0);
        assert_eq!(r(None).unwrap().home.as_deref(), Some("/root"));
        let app = r(Some("app")).unwrap();
        assert_eq!((app.uid, app.gid), (1000, 1001));
        assert_eq!(app.additional_gids, vec![10, 50]);
        assert_eq!(app.home.as_deref(), Some("/home/app"));
        let n = r(Some("1000")).unwrap();
        assert_eq!((n.uid, n.gid), (1000, 1001));
        let unknown_uid = r(Some("4242")).unwrap();
        assert_eq!(
            (unknown_uid.uid, unknown_uid.gid, unknown_uid.home),
            (4242, 0, None)
        );
        let ug = r(Some("4242:77")).unwrap();
        assert_eq!((ug.uid, ug.gid), (4242, 77));
        let named = r(Some("app:staff")).unwrap();
        assert_eq!((named.uid, named.gid), (1000, 50));
        assert!(named.additional_gids.is_empty());
        assert_eq!(r(Some("nobody")).unwrap().uid, 65534);
    }

    #[test]
    fn errors() {
        for (bad, needle) in [
            ("ghost", "/etc/passwd"),
            ("app:ghosts", "/etc/group"),
            (":1", "malformed"),
            ("1:", "malformed"),
        ] {
            let e = r(Some(bad)).unwrap_err().to_string();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn from_rootfs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), PASSWD).unwrap();
        std::fs::write(dir.path().join("etc/group"), GROUP).unwrap();
        assert_eq!(resolve_user(dir.path(), Some("app")).unwrap().uid, 1000);
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(resolve_user(empty.path(), Some("7")).unwrap().uid, 7);
        assert!(resolve_user(empty.path(), Some("app")).is_err());
    }
}
