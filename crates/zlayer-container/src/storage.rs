//! The service's `storage` entries as OCI mounts: bind mounts, named
//! volumes under the data root (they outlive containers), anonymous volumes
//! in the state dir (removed with the container), and sized tmpfs.

use super::oci_spec_builder::{bind_mount, tmpfs_mount};
use super::paths::ContainerPaths;
use oci_spec::runtime::Mount;
use std::collections::HashSet;
use std::path::{Component, Path};
use zlayer_hosting::VolumeStore;
use zlayer_runtime::error::{Result, RuntimeError};
use zlayer_spec::StorageSpec;

fn check_target(target: &str, seen: &mut HashSet<String>) -> Result<()> {
    let p = Path::new(target);
    let ok = p.is_absolute()
        && p.components().all(|c| !matches!(c, Component::ParentDir))
        && p.components().count() > 1;
    if !ok {
        return Err(RuntimeError::InvalidSpec(format!(
            "storage target {target:?} must be an absolute path below / without '..'"
        )));
    }
    let norm: std::path::PathBuf = p.components().collect();
    if !seen.insert(norm.to_string_lossy().into_owned()) {
        return Err(RuntimeError::InvalidSpec(format!(
            "storage target {target:?} is mounted twice; give each mount its own target"
        )));
    }
    Ok(())
}

fn mkdir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| RuntimeError::Internal(format!("creating {} failed: {e}", dir.display())))
}

/// Resolves `storage` to mounts, creating volume directories as needed.
pub fn storage_mounts(
    volumes: &VolumeStore,
    paths: &ContainerPaths,
    storage: &[StorageSpec],
) -> Result<Vec<Mount>> {
    let mut seen = HashSet::new();
    let mut mounts = Vec::new();
    for (i, s) in storage.iter().enumerate() {
        check_target(s.target(), &mut seen)?;
        let m = match s {
            StorageSpec::Bind {
                source,
                target,
                readonly,
            } => {
                let src = Path::new(source);
                if !src.is_absolute() {
                    return Err(RuntimeError::InvalidSpec(format!(
                        "bind source {source:?} must be an absolute host path"
                    )));
                }
                if !src.exists() {
                    return Err(RuntimeError::InvalidSpec(format!(
                        "bind source {source} does not exist on the host; create it first"
                    )));
                }
                bind_mount(src, target, *readonly)
            }
            StorageSpec::Named {
                name,
                target,
                readonly,
            } => {
                let dir = volumes.ensure(name)?;
                bind_mount(&dir, target, *readonly)
            }
            StorageSpec::Anonymous { target } => {
                let dir = paths.anon_volumes().join(format!("anon-{i}"));
                mkdir(&dir)?;
                bind_mount(&dir, target, false)
            }
            StorageSpec::Tmpfs { target, size } => {
                let bytes = size
                    .as_ref()
                    .map(|s| {
                        s.bytes().map_err(|e| {
                            RuntimeError::InvalidSpec(format!("tmpfs size for {target}: {e}"))
                        })
                    })
                    .transpose()?;
                tmpfs_mount(target, bytes)
            }
        };
        mounts.push(m);
    }
    Ok(mounts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zlayer_runtime::types::ContainerId;
    use zlayer_spec::ByteSize;

    #[test]
    fn resolves_and_validates() {
        let dir = tempfile::tempdir().unwrap();
        let state = zlayer_hosting::Layout::new(dir.path())
            .state_dir(&ContainerId::new("s", 1))
            .unwrap();
        let paths = crate::ContainerPaths::of(state).unwrap();
        let volumes = VolumeStore::new(dir.path().join("volumes"));
        let storage = vec![
            StorageSpec::Named {
                name: "data".into(),
                target: "/data".into(),
                readonly: false,
            },
            StorageSpec::Anonymous {
                target: "/cache".into(),
            },
            StorageSpec::Tmpfs {
                target: "/tmp".into(),
                size: Some(ByteSize::parse("1Mi").unwrap()),
            },
            StorageSpec::Bind {
                source: "/etc".into(),
                target: "/host-etc".into(),
                readonly: true,
            },
        ];
        let m = storage_mounts(&volumes, &paths, &storage).unwrap();
        assert_eq!(m.len(), 4);
        assert!(dir.path().join("volumes/data/_data").is_dir());
        assert!(paths.anon_volumes().join("anon-1").is_dir());
        assert!(m[3].options().as_ref().unwrap().contains(&"ro".to_string()));

        for bad in [
            vec![StorageSpec::Anonymous {
                target: "rel".into(),
            }],
            vec![StorageSpec::Anonymous { target: "/".into() }],
            vec![StorageSpec::Anonymous {
                target: "/a/../b".into(),
            }],
            vec![
                StorageSpec::Anonymous {
                    target: "/a".into(),
                },
                StorageSpec::Anonymous {
                    target: "/a/".into(),
                },
            ],
            vec![StorageSpec::Bind {
                source: "/no/such/dir".into(),
                target: "/x".into(),
                readonly: false,
            }],
            vec![StorageSpec::Named {
                name: "../x".into(),
                target: "/x".into(),
                readonly: false,
            }],
        ] {
            assert!(storage_mounts(&volumes, &paths, &bad).is_err(), "{bad:?}");
        }
    }
}
