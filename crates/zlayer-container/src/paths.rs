//! The container launcher's files under a data root and in a state dir
//! (the hosting layer's files are `zlayer_hosting::layout`'s).
//!
//! ```text
//! <root>/containers/<service>-<replica>/   one container (its "state dir")
//!     launch.json      ContainerPlan (the hosting layer writes it)
//!     config.json      the OCI runtime spec (the dir is the OCI bundle)
//!     seccomp.json     a custom seccomp profile, if any (the default one is
//!                      named in the plan); compiled once per host into
//!                      <root>/run/seccomp/<hash>.bpf
//!     run/             the hosting layer's tmpfs, also holding:
//!         <id>/            libcontainer's own state (state.json, notify.sock)
//!         console.sock     receives a terminal's master side (tty containers)
//!         hosts, hostname, resolv.conf   bind-mounted into the container
//!     rootfs/ upper/ work/           overlay of the image (zlayer-image)
//!     volumes/anon-<n>/              anonymous volumes
//!     exec/                          process specs of running execs
//! <root>/run/seccomp/<hash>.bpf       compiled seccomp programs
//! ```

use std::ops::Deref;
use std::path::PathBuf;
use zlayer_hosting::layout::MAX_SOCKET_PATH;
use zlayer_hosting::StateDir;
use zlayer_runtime::error::{Result, RuntimeError};

pub use zlayer_hosting::layout::cgroup_path;

/// The files of one container: the hosting layer's [`StateDir`] (reached
/// through `Deref`) and the launcher's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPaths {
    /// The state dir (also the OCI bundle).
    pub state: StateDir,
    /// libcontainer's state root.
    pub lc_root: PathBuf,
    /// The container's id for libcontainer (`<service>-<replica>`).
    pub lc_id: String,
}

impl Deref for ContainerPaths {
    type Target = StateDir;
    fn deref(&self) -> &StateDir {
        &self.state
    }
}

impl ContainerPaths {
    /// The paths of `state`, libcontainer's state in its `run/`; an error
    /// when a socket of libcontainer's there would be too long to bind.
    pub fn of(state: StateDir) -> Result<Self> {
        let lc_root = state.run();
        let paths = Self::from_dir(state.dir.clone(), lc_root).ok_or_else(|| {
            RuntimeError::Internal(format!("{} is not a state directory", state.dir.display()))
        })?;
        let notify = paths.lc_dir().join("notify.sock");
        if notify.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(RuntimeError::Configuration(format!(
                "the socket path {} is longer than the 107 bytes a unix socket allows; \
                 use a shorter data root or service name",
                notify.display()
            )));
        }
        Ok(paths)
    }

    /// Paths of a state dir with libcontainer's state root given (the
    /// monitor gets both on its command line).
    pub fn from_dir(dir: PathBuf, lc_root: PathBuf) -> Option<Self> {
        let lc_id = dir.file_name()?.to_str()?.to_string();
        Some(ContainerPaths {
            state: StateDir::new(dir),
            lc_root,
            lc_id,
        })
    }

    /// The cgroup of this container (see [`cgroup_path`]).
    pub fn cgroup_path(&self) -> Option<String> {
        Some(cgroup_path(self.data_root()?, &self.lc_id))
    }
    /// `config.json` (OCI runtime spec).
    pub fn oci_config(&self) -> PathBuf {
        self.file("config.json")
    }
    /// `seccomp.json`: a custom seccomp profile (OCI format), if any.
    pub fn seccomp(&self) -> PathBuf {
        self.file("seccomp.json")
    }
    /// Where compiled seccomp programs are cached (`<root>/run/seccomp`).
    pub fn seccomp_cache(&self) -> PathBuf {
        match self.data_root() {
            Some(root) => root.join("run").join("seccomp"),
            None => self.file("seccomp-cache"),
        }
    }
    /// The console socket libcontainer sends a terminal's master side to.
    pub fn console_socket(&self) -> PathBuf {
        self.lc_root.join("console.sock")
    }
    /// The container's `/etc/hosts`, `/etc/hostname` or `/etc/resolv.conf`
    /// (`name` is the file name), bind-mounted into it.
    pub fn etc_file(&self, name: &str) -> PathBuf {
        self.lc_root.join(name)
    }
    /// The rootfs mountpoint.
    pub fn rootfs(&self) -> PathBuf {
        self.file("rootfs")
    }
    /// Directory of anonymous volumes.
    pub fn anon_volumes(&self) -> PathBuf {
        self.file("volumes")
    }
    /// Directory of exec process specs.
    pub fn exec_dir(&self) -> PathBuf {
        self.file("exec")
    }
    /// libcontainer's state dir of this container.
    pub fn lc_dir(&self) -> PathBuf {
        self.lc_root.join(&self.lc_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use zlayer_runtime::types::ContainerId;

    fn paths(root: &str, id: &ContainerId) -> Result<ContainerPaths> {
        ContainerPaths::of(zlayer_hosting::Layout::new(root).state_dir(id)?)
    }

    #[test]
    fn names_and_cgroups() {
        let p = paths("/var/lib/zlayer", &ContainerId::new("web", 2)).unwrap();
        assert_eq!(p.dir, Path::new("/var/lib/zlayer/containers/web-2"));
        assert_eq!(
            p.lc_dir(),
            Path::new("/var/lib/zlayer/containers/web-2/run/web-2")
        );
        assert_eq!(p.seccomp_cache(), Path::new("/var/lib/zlayer/run/seccomp"));
        assert_eq!(p.cgroup_path().as_deref(), Some("/zlayer/web-2"));
        let other = cgroup_path(Path::new("/tmp/x"), "web-2");
        assert!(
            other.starts_with("/zlayer-") && other.ends_with("-web-2"),
            "{other}"
        );
        assert_eq!(other.matches('/').count(), 1);
        assert_ne!(other, cgroup_path(Path::new("/tmp/y"), "web-2"));
        let long = format!("/tmp/{}", "x".repeat(100));
        let err = paths(&long, &ContainerId::new("web", 1)).unwrap_err();
        assert!(err.to_string().contains("107 bytes"), "{err}");
    }
}
