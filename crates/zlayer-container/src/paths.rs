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

use std::path::{Path, PathBuf};
use zlayer_runtime::error::{Result, RuntimeError};
use zlayer_runtime::types::ContainerId;

/// Unix socket paths are limited to 108 bytes including the NUL.
const MAX_SOCKET_PATH: usize = 107;

/// Paths under one data root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Layout { root: root.into() }
    }

    /// The data root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Runtime files shared by the containers (`<root>/run`: the compiled
    /// seccomp programs).
    pub fn run_dir(&self) -> PathBuf {
        self.root.join("run")
    }

    /// The paths of container `id` (validating the id as a directory name
    /// and its sockets' path length).
    pub fn container(&self, id: &ContainerId) -> Result<ContainerPaths> {
        let dir = zlayer_hosting::Layout::new(&self.root).state_dir(id)?.dir;
        let paths = ContainerPaths::of_dir(dir).ok_or_else(|| {
            RuntimeError::InvalidSpec(format!("container name {id} is not a directory name"))
        })?;
        let notify = paths.lc_root.join(&paths.lc_id).join("notify.sock");
        if notify.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(RuntimeError::Configuration(format!(
                "the socket path {} is longer than the 107 bytes a unix socket allows; \
                 use a shorter data root or service name",
                notify.display()
            )));
        }
        Ok(paths)
    }

    /// The cgroup (relative to each hierarchy root) of container `id`.
    ///
    /// Under the default data root it is `/zlayer/<id>` (one `zlayer`
    /// parent, like docker's `/docker`). Other roots (tests, a second
    /// daemon) get a flat `/zlayer-<hash of root>-<id>`, so they never clash
    /// and leave no parent cgroup behind when their containers are removed.
    pub fn cgroup_path(&self, id: &ContainerId) -> String {
        self.cgroup_path_for(&id.to_string())
    }

    /// [`Layout::cgroup_path`] from the state dir name (`<service>-<replica>`).
    pub fn cgroup_path_for(&self, name: &str) -> String {
        if self.root == Path::new(zlayer_image::DEFAULT_ROOT) {
            format!("/zlayer/{name}")
        } else {
            format!(
                "/zlayer-{:08x}-{name}",
                zlayer_sys::hash::fnv1a(self.root.as_os_str().as_encoded_bytes()) as u32
            )
        }
    }
}

/// The files of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPaths {
    /// The state dir (also the OCI bundle).
    pub dir: PathBuf,
    /// libcontainer's state root.
    pub lc_root: PathBuf,
    /// The container's id for libcontainer (`<service>-<replica>`).
    pub lc_id: String,
}

impl ContainerPaths {
    /// The paths of state dir `dir`, libcontainer's state in its `run/`.
    pub fn of_dir(dir: PathBuf) -> Option<Self> {
        let lc_root = dir.join("run");
        Self::from_dir(dir, lc_root)
    }

    /// Paths of a state dir with libcontainer's state root given (the
    /// monitor gets both on its command line).
    pub fn from_dir(dir: PathBuf, lc_root: PathBuf) -> Option<Self> {
        let lc_id = dir.file_name()?.to_str()?.to_string();
        Some(ContainerPaths {
            dir,
            lc_root,
            lc_id,
        })
    }

    /// `launch.json`: the [`crate::plan::ContainerPlan`].
    pub fn plan(&self) -> PathBuf {
        self.dir.join("launch.json")
    }
    /// `config.json` (OCI runtime spec).
    pub fn oci_config(&self) -> PathBuf {
        self.dir.join("config.json")
    }
    /// `seccomp.json`: a custom seccomp profile (OCI format), if any.
    pub fn seccomp(&self) -> PathBuf {
        self.dir.join("seccomp.json")
    }
    /// Where compiled seccomp programs are cached (`<root>/run/seccomp`).
    pub fn seccomp_cache(&self) -> PathBuf {
        match self.data_root() {
            Some(root) => Layout::new(root).run_dir().join("seccomp"),
            None => self.dir.join("seccomp-cache"),
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
        self.dir.join("rootfs")
    }
    /// Directory of anonymous volumes.
    pub fn anon_volumes(&self) -> PathBuf {
        self.dir.join("volumes")
    }
    /// Directory of exec process specs.
    pub fn exec_dir(&self) -> PathBuf {
        self.dir.join("exec")
    }
    /// libcontainer's state dir of this container.
    pub fn lc_dir(&self) -> PathBuf {
        self.lc_root.join(&self.lc_id)
    }
    /// The data root (two levels above the state dir).
    pub fn data_root(&self) -> Option<&Path> {
        self.dir.parent().and_then(Path::parent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_cgroups() {
        let l = Layout::new("/var/lib/zlayer");
        let p = l.container(&ContainerId::new("web", 2)).unwrap();
        assert_eq!(p.dir, Path::new("/var/lib/zlayer/containers/web-2"));
        assert_eq!(
            p.lc_dir(),
            Path::new("/var/lib/zlayer/containers/web-2/run/web-2")
        );
        assert_eq!(p.seccomp_cache(), Path::new("/var/lib/zlayer/run/seccomp"));
        assert_eq!(l.cgroup_path(&ContainerId::new("web", 2)), "/zlayer/web-2");
        let other = Layout::new("/tmp/x").cgroup_path(&ContainerId::new("web", 2));
        assert!(
            other.starts_with("/zlayer-") && other.ends_with("-web-2"),
            "{other}"
        );
        assert_eq!(other.matches('/').count(), 1);
        assert_ne!(
            other,
            Layout::new("/tmp/y").cgroup_path(&ContainerId::new("web", 2))
        );
        for bad in ["", "../x", "a/b", ".hidden", "-x", "a b"] {
            assert!(l.container(&ContainerId::new(bad, 0)).is_err(), "{bad}");
        }
        let long = Layout::new(format!("/tmp/{}", "x".repeat(100)));
        let err = long.container(&ContainerId::new("web", 1)).unwrap_err();
        assert!(err.to_string().contains("107 bytes"), "{err}");
    }
}
