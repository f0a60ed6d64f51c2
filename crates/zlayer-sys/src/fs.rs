//! Directory and tree helpers shared by the image store and the launchers.

use std::fs::File;
use std::io;
use std::path::Path;

/// Creates `dir` and its parents unless it is a directory already. The
/// common case at every start is that it exists: one `statx` then, where
/// `create_dir_all` spends a failing `mkdir` and a `statx`.
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    if std::fs::metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    std::fs::create_dir_all(dir)
}

/// Removes `path` whatever it is (file, symlink, directory tree); a missing
/// path is fine.
pub fn remove_any(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// `fsync`s a directory so a rename inside it is durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir).and_then(|f| f.sync_all())
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_dir_creates_keeps_and_refuses_files() {
        let tmp = tempfile::tempdir().unwrap();
        let nested = tmp.path().join("a/b/c");
        ensure_dir(&nested).unwrap();
        assert!(nested.is_dir());
        // Existing: fine, and nothing inside is touched.
        std::fs::write(nested.join("keep"), b"x").unwrap();
        ensure_dir(&nested).unwrap();
        assert!(nested.join("keep").is_file());
        // A file in the way is an error, not a silent success.
        let file = tmp.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(ensure_dir(&file).is_err());
    }

    #[test]
    fn remove_any_takes_files_links_trees_and_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let tree = tmp.path().join("t/u");
        std::fs::create_dir_all(&tree).unwrap();
        std::fs::write(tree.join("f"), b"x").unwrap();
        let link = tmp.path().join("l");
        std::os::unix::fs::symlink(&tree, &link).unwrap();
        remove_any(&link).unwrap();
        assert!(tree.join("f").exists(), "a link is removed, not followed");
        remove_any(&tmp.path().join("t")).unwrap();
        assert!(!tmp.path().join("t").exists());
        remove_any(&tmp.path().join("missing")).unwrap();
    }
}
