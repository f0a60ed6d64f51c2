//! Images a sandbox can run: host directories registered under a name
//! (`images/<name>/rootfs`), and images of an external store (layers merged
//! at create) through [`ImageResolver`].

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use zlayer_hosting::exit::now_ms;
use zlayer_runtime::error::{Result, RuntimeError};
use zlayer_runtime::types::ImageInfo;
use zlayer_sys::atomic::{read_json, write_json_atomic};

use super::clone;
use super::overlay;

/// An image's defaults from its OCI config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageDefaults {
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `Env` (`KEY=value`).
    pub env: Vec<String>,
    /// `WorkingDir`.
    pub workdir: Option<String>,
    /// `User`.
    pub user: Option<String>,
    /// `StopSignal`.
    pub stop_signal: Option<String>,
}

/// Where an image's root filesystem comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRootfs {
    /// A ready directory (registered local image), cloned as is.
    Dir(PathBuf),
    /// Unpacked layer directories, lowest first, merged into the clone.
    Layers(Vec<PathBuf>),
}

/// A resolved image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    /// Its root filesystem.
    pub rootfs: ImageRootfs,
    /// Its config defaults.
    pub defaults: ImageDefaults,
}

/// A source of images besides registered directories (the node's image
/// store). Implementations must not touch the network in `resolve`.
pub trait ImageResolver: Send + Sync {
    /// The image named `name`, unpacked, or `Ok(None)` when not stored.
    fn resolve(&self, name: &str) -> Result<Option<ResolvedImage>>;
    /// Every stored image.
    fn list(&self) -> Result<Vec<ImageInfo>>;
    /// Records that the container in `holder` uses image `name` (so the
    /// store keeps its layers); called after a successful create.
    fn acquire(&self, _name: &str, _holder: &Path) -> Result<()> {
        Ok(())
    }
    /// Drops what [`ImageResolver::acquire`] recorded; called at remove.
    fn release(&self, _holder: &Path) -> Result<()> {
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LocalImageMeta {
    name: String,
    source: PathBuf,
    registered_at_ms: u64,
    size_bytes: u64,
    /// The directory holding the current rootfs, when not `rootfs` (a
    /// replacement while overlay rootfs of containers still use the old one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rootfs_dir: Option<String>,
}

impl LocalImageMeta {
    fn rootfs(&self, image_dir: &Path) -> PathBuf {
        image_dir.join(self.rootfs_dir.as_deref().unwrap_or("rootfs"))
    }
}

/// The registered host directories under `images/`.
#[derive(Debug, Clone)]
pub struct LocalImages {
    dir: PathBuf,
}

/// A directory name for an image reference (readable, collision-free).
pub fn safe_name(name: &str) -> String {
    let readable: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    // FNV-1a keeps `a/b` and `a_b` apart.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{readable}-{:08x}", h as u32)
}

/// Other spellings of the same reference (`x` and `x:latest`).
fn aliases(name: &str) -> Vec<String> {
    let last = name.rsplit('/').next().unwrap_or(name);
    let mut out = vec![name.to_string()];
    if let Some(base) = name.strip_suffix(":latest") {
        out.push(base.to_string());
    } else if !last.contains(':') && !last.contains('@') {
        out.push(format!("{name}:latest"));
    }
    out
}

impl LocalImages {
    /// The registry in `dir` (`data_dir/images`).
    pub fn new(dir: PathBuf) -> Self {
        LocalImages { dir }
    }

    /// Registers the host directory `source` as image `name` by cloning it.
    /// Registering the same directory again is a no-op; another directory
    /// replaces the image.
    pub fn register(&self, name: &str, source: &Path) -> Result<PathBuf> {
        if name.trim().is_empty() {
            return Err(RuntimeError::InvalidSpec(
                "an image name is required to register a rootfs".into(),
            ));
        }
        let source = source.canonicalize().map_err(|e| {
            RuntimeError::InvalidSpec(format!(
                "rootfs {} cannot be registered: {e}",
                source.display()
            ))
        })?;
        if !source.is_dir() {
            return Err(RuntimeError::InvalidSpec(format!(
                "rootfs {} is not a directory; give the directory holding bin/, lib/, ...",
                source.display()
            )));
        }
        let target = self.dir.join(safe_name(name));
        let meta_path = target.join("image.json");
        let old_meta = read_json::<LocalImageMeta>(&meta_path)?;
        if let Some(meta) = &old_meta {
            if meta.source == source && meta.name == name && meta.rootfs(&target).is_dir() {
                if meta.rootfs_dir.is_some() {
                    // Earlier trees may have lost their last user.
                    remove_unused_versions(&target, &meta.rootfs(&target));
                }
                return Ok(meta.rootfs(&target));
            }
        }
        let staging = self.dir.join(format!(
            ".staging-{}-{}-{}",
            safe_name(name),
            std::process::id(),
            now_ms()
        ));
        let result = (|| -> Result<()> {
            std::fs::create_dir_all(&staging).map_err(|e| io_err(&staging, e))?;
            clone::clone_tree(&source, &staging.join("rootfs")).map_err(|e| {
                RuntimeError::Internal(format!("copying rootfs {} failed: {e}", source.display()))
            })?;
            let mut meta = LocalImageMeta {
                name: name.to_string(),
                source: source.clone(),
                registered_at_ms: now_ms(),
                size_bytes: dir_size(&staging.join("rootfs")),
                rootfs_dir: None,
            };
            let in_use = old_meta.is_some() && versions(&target).any(|v| overlay::lower_in_use(&v));
            if in_use {
                // Containers run on the old tree (their overlay's lower
                // layer): it stays where it is, the new one goes beside it.
                let dir_name = format!("rootfs-{}", now_ms());
                std::fs::rename(staging.join("rootfs"), target.join(&dir_name))
                    .map_err(|e| io_err(&target, e))?;
                meta.rootfs_dir = Some(dir_name);
                write_json_atomic(&meta_path, &meta)?;
                remove_unused_versions(&target, &meta.rootfs(&target));
                return Ok(());
            }
            write_json_atomic(&staging.join("image.json"), &meta)?;
            if target.exists() {
                let old = self
                    .dir
                    .join(format!(".old-{}-{}", safe_name(name), now_ms()));
                std::fs::rename(&target, &old).map_err(|e| io_err(&target, e))?;
                let _ = std::fs::remove_dir_all(&old);
            }
            match std::fs::rename(&staging, &target) {
                Ok(()) => Ok(()),
                // A concurrent registration won the race: same result.
                Err(_) if target.join("image.json").exists() => Ok(()),
                Err(e) => Err(io_err(&target, e)),
            }
        })();
        let _ = std::fs::remove_dir_all(&staging);
        result?;
        self.rootfs_of(&target).ok_or_else(|| {
            RuntimeError::Internal(format!(
                "image {name} was registered but {} has no rootfs; register it again",
                target.display()
            ))
        })
    }

    /// The rootfs of image `name`, if registered.
    pub fn rootfs(&self, name: &str) -> Option<PathBuf> {
        aliases(name)
            .into_iter()
            .find_map(|n| self.rootfs_of(&self.dir.join(safe_name(&n))))
    }

    fn rootfs_of(&self, image_dir: &Path) -> Option<PathBuf> {
        let meta = read_json::<LocalImageMeta>(&image_dir.join("image.json"))
            .ok()
            .flatten()?;
        Some(meta.rootfs(image_dir)).filter(|r| r.is_dir())
    }

    /// Every registered image.
    pub fn list(&self) -> Vec<ImageInfo> {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out: Vec<ImageInfo> = dir
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                read_json::<LocalImageMeta>(&e.path().join("image.json"))
                    .ok()
                    .flatten()
            })
            .map(|m| ImageInfo {
                reference: m.name,
                digest: None,
                size_bytes: Some(m.size_bytes),
                created: None,
            })
            .collect();
        out.sort_by(|a, b| a.reference.cmp(&b.reference));
        out
    }
}

/// Deletes the rootfs versions in `image_dir` other than `current` that no
/// overlay uses any more.
fn remove_unused_versions(image_dir: &Path, current: &Path) {
    for path in versions(image_dir) {
        if path != current && !overlay::lower_in_use(&path) {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// The rootfs directories (`rootfs`, `rootfs-<ms>`) in `image_dir`.
fn versions(image_dir: &Path) -> impl Iterator<Item = PathBuf> {
    std::fs::read_dir(image_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("rootfs"))
        .map(|e| e.path())
        .filter(|p| p.is_dir())
}

fn io_err(path: &Path, e: std::io::Error) -> RuntimeError {
    RuntimeError::Internal(format!("{}: {e}", path.display()))
}

fn dir_size(path: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(path) else {
        return 0;
    };
    rd.filter_map(|e| e.ok())
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) if m.is_file() => m.len(),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_is_idempotent_and_replaceable() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        std::fs::create_dir_all(src.join("bin")).unwrap();
        std::fs::write(src.join("bin/x"), b"1").unwrap();
        let imgs = LocalImages::new(d.path().join("images"));
        let r1 = imgs.register("local/x", &src).unwrap();
        let r2 = imgs.register("local/x", &src).unwrap();
        assert_eq!(r1, r2);
        assert_eq!(imgs.rootfs("local/x:latest"), Some(r1.clone()));
        assert_eq!(imgs.list().len(), 1);
        let src2 = d.path().join("src2");
        std::fs::create_dir_all(&src2).unwrap();
        std::fs::write(src2.join("y"), b"2").unwrap();
        imgs.register("local/x", &src2).unwrap();
        assert!(imgs.rootfs("local/x").unwrap().join("y").exists());
        assert!(imgs.register("bad", &d.path().join("missing")).is_err());
        assert_ne!(safe_name("a/b"), safe_name("a_b"));
    }
}
