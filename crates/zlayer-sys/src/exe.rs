//! Where the running executable lives: the helper binaries (`zlayer-shim`,
//! `zlayer-sandbox-shim`, `zlayer-dns`) are looked up next to it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The directory of the running executable, resolved once per process
/// (each `/proc/self/exe` lookup is a syscall through procfs); `None` when
/// it cannot be resolved.
pub fn dir() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf))
    })
    .as_deref()
}

/// `name` in [`dir`], or `name` itself when the directory is unknown.
pub fn sibling(name: &str) -> PathBuf {
    dir().map_or_else(|| PathBuf::from(name), |d| d.join(name))
}

/// The program `name` as `execvp` would find it: `name` itself when it
/// holds a `/`, else the first regular file of that name on `PATH`.
pub fn find_on_path(name: &Path) -> Option<PathBuf> {
    if name.components().count() > 1 || name.is_absolute() {
        return name.is_file().then(|| name.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Finds the helper binary `name`: next to the running executable, one
/// directory up (test and example binaries live in `target/*/deps` and
/// `target/*/examples`), or on `PATH`.
pub fn find_helper(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(d) = dir() {
        dirs.push(d.to_path_buf());
        if let Some(up) = d.parent() {
            dirs.push(up.to_path_buf());
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}
