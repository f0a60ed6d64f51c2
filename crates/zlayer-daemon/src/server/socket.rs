//! Creating the API sockets with the right owner and mode from the start.

use crate::error::{DaemonError, Result};
use nix::unistd::{chown, Gid, Group};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use tokio::net::UnixListener;

/// The gid of group `name`.
pub fn socket_gid(name: &str) -> Result<Gid> {
    match Group::from_name(name) {
        Ok(Some(g)) => Ok(g.gid),
        Ok(None) => Err(DaemonError::NoSuchGroup(name.to_string())),
        Err(e) => Err(DaemonError::io(
            format!("looking up group {name}"),
            std::io::Error::from(e),
        )),
    }
}

/// Binds a unix socket at `path`: mode 0600 (root only), or 0660 owned by
/// `group`. The socket is created in a private directory, given its mode and
/// owner, then renamed into place, so it is never reachable with looser
/// permissions. A stale socket (nobody listening) is replaced; a live one is
/// an error.
pub fn bind_socket(path: &Path, group: Option<Gid>) -> Result<UnixListener> {
    let err = |reason: String| DaemonError::Socket {
        path: path.display().to_string(),
        reason,
    };
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .map_err(|e| err(format!("creating {}: {e}", parent.display())))?;
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(err(
                "another process is listening there; stop it or pass another socket path".into(),
            ));
        }
        std::fs::remove_file(path).map_err(|e| err(format!("removing the stale socket: {e}")))?;
    }
    let private = tempfile::Builder::new()
        .prefix(".zlayer-sock-")
        .tempdir_in(parent)
        .map_err(|e| {
            err(format!(
                "creating a private directory in {}: {e}",
                parent.display()
            ))
        })?;
    let tmp = private.path().join("s");
    let listener =
        std::os::unix::net::UnixListener::bind(&tmp).map_err(|e| err(format!("bind: {e}")))?;
    let mode = match group {
        Some(gid) => {
            chown(&tmp, None, Some(gid)).map_err(|e| err(format!("chown to group {gid}: {e}")))?;
            0o660
        }
        None => 0o600,
    };
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
        .map_err(|e| err(format!("chmod {mode:o}: {e}")))?;
    std::fs::rename(&tmp, path).map_err(|e| err(format!("moving the socket into place: {e}")))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| err(format!("set_nonblocking: {e}")))?;
    UnixListener::from_std(listener).map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[tokio::test]
    async fn modes_groups_and_stale_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("run/z.sock");
        let l = bind_socket(&p, None).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        // A live socket is not taken over.
        assert!(bind_socket(&p, None).is_err());
        drop(l);
        // A stale one is.
        let gid = Gid::from_raw(0);
        let _l = bind_socket(&p, Some(gid)).unwrap();
        let meta = std::fs::metadata(&p).unwrap();
        assert_eq!((meta.mode() & 0o777, meta.gid()), (0o660, 0));
        assert!(matches!(
            socket_gid("no-such-group-zl"),
            Err(DaemonError::NoSuchGroup(_))
        ));
        assert_eq!(socket_gid("root").unwrap(), Gid::from_raw(0));
        // No private directories are left behind.
        let left: Vec<_> = std::fs::read_dir(dir.path().join("run")).unwrap().collect();
        assert_eq!(left.len(), 1);
    }
}
