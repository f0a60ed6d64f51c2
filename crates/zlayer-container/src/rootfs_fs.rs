//! Reading and creating paths inside a container's rootfs from the host
//! without following symlinks out of it (`openat2` with `RESOLVE_IN_ROOT`).

use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Opens `path` (absolute inside the container) under `root` with `flags`,
/// resolving `..` and symlinks as if `root` were `/`.
pub fn open_in_root(root: &Path, path: &Path, flags: i32) -> std::io::Result<OwnedFd> {
    let root_fd = File::open(root)?;
    open_beneath(&root_fd, path, flags)
}

fn open_beneath(root: &File, path: &Path, flags: i32) -> std::io::Result<OwnedFd> {
    let rel: PathBuf = path
        .components()
        .filter(|c| !matches!(c, Component::RootDir))
        .collect();
    let rel = if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    };
    let c = CString::new(rel.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path contains NUL"))?;
    // SAFETY: open_how is plain old data; zeroed is a valid value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: `c` is a valid NUL-terminated string and `how` a valid
    // open_how of the size passed; the returned fd is owned by us.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: openat2 returned a fresh file descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Reads a file inside the rootfs; `Ok(None)` when it does not exist.
pub fn read_in_root(root: &Path, path: &Path) -> std::io::Result<Option<String>> {
    match open_in_root(root, path, libc::O_RDONLY) {
        Ok(fd) => {
            let mut s = String::new();
            File::from(fd).read_to_string(&mut s)?;
            Ok(Some(s))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Creates directory `path` (and its parents) inside the rootfs, like
/// `mkdir -p`, never leaving the rootfs.
pub fn mkdir_all_in_root(root: &Path, path: &Path) -> std::io::Result<()> {
    let root_fd = File::open(root)?;
    let mut prefix = PathBuf::from("/");
    for comp in path.components() {
        let Component::Normal(name) = comp else {
            continue;
        };
        let parent = open_beneath(&root_fd, &prefix, libc::O_PATH | libc::O_DIRECTORY)?;
        prefix.push(name);
        match open_beneath(&root_fd, &prefix, libc::O_PATH | libc::O_DIRECTORY) {
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let c = CString::new(name.as_bytes())
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in path"))?;
        // SAFETY: `parent` is an open directory fd and `c` a valid C string.
        let rc = unsafe { libc::mkdirat(parent.as_raw_fd(), c.as_ptr(), 0o755) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                return Err(e);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_stay_inside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), "inside\n").unwrap();
        std::fs::write(dir.path().join("outside"), "outside\n").unwrap();
        // An absolute symlink pointing at the host's file resolves in the root.
        std::os::unix::fs::symlink("/etc/passwd", root.join("link")).unwrap();
        std::os::unix::fs::symlink("../../outside", root.join("etc/up")).unwrap();
        assert_eq!(
            read_in_root(&root, Path::new("/link")).unwrap().unwrap(),
            "inside\n"
        );
        assert_eq!(read_in_root(&root, Path::new("/etc/up")).unwrap(), None);
        assert_eq!(read_in_root(&root, Path::new("/nope")).unwrap(), None);
        // mkdir -p through a symlinked dir stays inside too.
        std::os::unix::fs::symlink("/", root.join("escape")).unwrap();
        mkdir_all_in_root(&root, Path::new("/escape/a/b")).unwrap();
        assert!(root.join("a/b").is_dir());
        mkdir_all_in_root(&root, Path::new("/a/b")).unwrap();
    }
}
