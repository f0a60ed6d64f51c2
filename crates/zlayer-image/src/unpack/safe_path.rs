//! Confining every filesystem operation of an extraction to its root.
//!
//! Entry names are validated lexically (no absolute paths, no `..`), then
//! parent directories are opened with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_MAGICLINKS)`, so the kernel refuses any path that would leave
//! the root, including through a symlink planted by an earlier entry. The
//! final component is always created with `*at` calls that do not follow it.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{mkdirat, openat2, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Splits a raw tar path into validated components.
///
/// Leading `./` and `.` components are dropped. Absolute paths, `..`
/// components and NUL bytes are refused with a reason.
pub(crate) fn normalize(raw: &[u8]) -> Result<PathBuf, String> {
    if raw.contains(&0) {
        return Err("the name contains a NUL byte".into());
    }
    if raw.first() == Some(&b'/') {
        return Err("absolute paths are not allowed in layers".into());
    }
    let text = std::str::from_utf8(raw).map_err(|_| ()).ok();
    let path: PathBuf = match text {
        Some(t) => PathBuf::from(t),
        None => {
            use std::os::unix::ffi::OsStrExt;
            PathBuf::from(std::ffi::OsStr::from_bytes(raw))
        }
    };
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => return Err("`..` components are not allowed in layers".into()),
            Component::RootDir | Component::Prefix(_) => {
                return Err("absolute paths are not allowed in layers".into())
            }
        }
    }
    Ok(out)
}

/// A human reason for a resolution error.
pub(crate) fn describe(e: Errno) -> String {
    match e {
        Errno::XDEV => {
            "the path leaves the layer root (through a symlink or an absolute link)".into()
        }
        Errno::LOOP => "too many levels of symlinks in the path".into(),
        Errno::NOTDIR => "a component of the path is not a directory".into(),
        Errno::NOENT => "a component of the path does not exist".into(),
        e => format!("cannot resolve the path: {e}"),
    }
}

const RESOLVE: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_MAGICLINKS);

/// Opens directory `rel` beneath `root` (readable fd, usable for `*at` and `fsetxattr`).
///
/// With `create`, missing directories are created (mode 0755, like
/// `mkdir -p`). Refuses with `EXDEV` anything that would resolve outside `root`.
pub(crate) fn open_dir(root: BorrowedFd<'_>, rel: &Path, create: bool) -> Result<OwnedFd, Errno> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let target = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    match openat2(root, target, flags, Mode::empty(), RESOLVE) {
        Err(Errno::NOENT) if create => {}
        other => return other,
    }
    let mut prefix = PathBuf::new();
    let mut parent = openat2(root, ".", flags, Mode::empty(), RESOLVE)?;
    for c in rel.components() {
        prefix.push(c);
        let fd = match openat2(root, &prefix, flags, Mode::empty(), RESOLVE) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                match mkdirat(&parent, c.as_os_str(), Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e),
                }
                openat2(root, &prefix, flags, Mode::empty(), RESOLVE)?
            }
            Err(e) => return Err(e),
        };
        parent = fd;
    }
    Ok(parent)
}

/// A path that names `name` inside the directory `dir` via `/proc/self/fd`,
/// for the few calls that have no `*at` form (e.g. `lsetxattr`, recursive removal).
pub(crate) fn fd_path(dir: BorrowedFd<'_>, name: &std::ffi::OsStr) -> PathBuf {
    let mut p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    p.push(name);
    p
}
