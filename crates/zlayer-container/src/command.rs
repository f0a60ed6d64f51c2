//! Finding a container's command in its root filesystem before it is
//! started, so a missing or non-executable command is a typed failure
//! (docker's 127/126) rather than a message to parse.

use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use zlayer_runtime::InvokeFailure;

/// `PATH` when the image sets none (docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a lookup of one candidate found.
enum Found {
    Executable,
    NotExecutable,
    Missing,
}

/// Looks `rel` up under the root `root` as the container will see it:
/// absolute symlinks and `..` resolve inside the root (`RESOLVE_IN_ROOT`).
fn look_up(root: &OwnedFd, rel: &Path) -> Found {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let Ok(fd) = openat2(root.as_raw_fd(), rel, how) else {
        return Found::Missing;
    };
    // SAFETY: openat2 returned a new descriptor that we now own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    match nix::sys::stat::fstat(fd.as_raw_fd()) {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFREG && st.st_mode & 0o111 != 0 => {
            Found::Executable
        }
        Ok(_) => Found::NotExecutable,
        Err(_) => Found::Missing,
    }
}

/// Whether `rel` is a directory under the root `root`, resolved as in
/// [`look_up`].
fn is_dir(root: &OwnedFd, rel: &Path) -> bool {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match openat2(root.as_raw_fd(), rel, how) {
        Ok(fd) => {
            // SAFETY: openat2 returned a new descriptor that we now own.
            drop(unsafe { OwnedFd::from_raw_fd(fd) });
            true
        }
        Err(_) => false,
    }
}

/// Checks that the working directory `cwd` exists in the container and
/// that `argv0` names an executable inside `rootfs`, resolved the
/// way `execvp` in the container will (a name through `path`, a relative
/// path from `cwd`). Where the kernel lacks `openat2` the check passes and
/// the start reports what the kernel says.
pub fn check(
    rootfs: &Path,
    cwd: &str,
    argv0: &str,
    path: &str,
) -> Result<(), (InvokeFailure, String)> {
    let Ok(root) = nix::fcntl::open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) else {
        return Ok(());
    };
    // SAFETY: open returned a new descriptor that we now own.
    let root = unsafe { OwnedFd::from_raw_fd(root) };
    // openat2 is there since 5.6; without it, trust the start.
    if let Err(nix::errno::Errno::ENOSYS) = openat2(
        root.as_raw_fd(),
        ".",
        OpenHow::new().flags(OFlag::O_PATH | OFlag::O_CLOEXEC),
    )
    .map(|fd| {
        // SAFETY: a new descriptor from openat2.
        drop(unsafe { OwnedFd::from_raw_fd(fd) })
    }) {
        return Ok(());
    }
    if !is_dir(&root, Path::new(cwd)) {
        return Err((
            InvokeFailure::BadWorkingDir,
            format!("the working directory {cwd} is not a directory in the container"),
        ));
    }
    if argv0.is_empty() {
        return Err((
            InvokeFailure::CommandNotFound,
            "the command is empty; give the program to run".into(),
        ));
    }
    if argv0.contains('/') {
        let full: PathBuf = if argv0.starts_with('/') {
            PathBuf::from(argv0)
        } else {
            Path::new(cwd).join(argv0)
        };
        return match look_up(&root, &full) {
            Found::Executable => Ok(()),
            Found::NotExecutable => Err((
                InvokeFailure::NotExecutable,
                format!("{argv0}: permission denied: it is not an executable file; `chmod +x` it or run it through /bin/sh"),
            )),
            Found::Missing => Err((
                InvokeFailure::CommandNotFound,
                format!("{argv0}: no such file or directory in the container"),
            )),
        };
    }
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let dir = if dir.starts_with('/') {
            PathBuf::from(dir)
        } else {
            Path::new(cwd).join(dir)
        };
        if let Found::Executable = look_up(&root, &dir.join(argv0)) {
            return Ok(());
        }
    }
    Err((
        InvokeFailure::CommandNotFound,
        format!("executable {argv0:?} not found in $PATH ({path}) in the container"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn finds_commands_like_execvp_in_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("bin")).unwrap();
        for (name, mode) in [("ok", 0o755), ("plain", 0o644)] {
            std::fs::write(root.join("bin").join(name), b"x").unwrap();
            std::fs::set_permissions(
                root.join("bin").join(name),
                std::fs::Permissions::from_mode(mode),
            )
            .unwrap();
        }
        // An absolute link resolves inside the root, as in the container.
        symlink("/bin/ok", root.join("bin/abs")).unwrap();
        let c = |argv0: &str| check(root, "/", argv0, "/usr/bin:/bin").map_err(|e| e.0);
        assert_eq!(c("ok"), Ok(()));
        assert_eq!(c("/bin/ok"), Ok(()));
        assert_eq!(c("abs"), Ok(()));
        assert_eq!(c("bin/ok"), Ok(()));
        assert_eq!(c("nope"), Err(InvokeFailure::CommandNotFound));
        assert_eq!(c("/bin/nope"), Err(InvokeFailure::CommandNotFound));
        assert_eq!(c("plain"), Err(InvokeFailure::CommandNotFound));
        assert_eq!(c("/bin/plain"), Err(InvokeFailure::NotExecutable));
        assert_eq!(c("/bin"), Err(InvokeFailure::NotExecutable));
        let at = |cwd: &str| check(root, cwd, "ok", "/bin").map_err(|e| e.0);
        assert_eq!(at("/bin"), Ok(()));
        assert_eq!(at("/no/such/dir"), Err(InvokeFailure::BadWorkingDir));
        assert_eq!(at("/bin/ok"), Err(InvokeFailure::BadWorkingDir));
    }
}
