//! The daemon's limit on open files.
//!
//! Every request in flight holds a connection, and every container the
//! daemon follows holds its log and a connection to its monitor: 200
//! concurrent `docker run --rm` peak at ~950 descriptors, right at the
//! usual soft limit of 1024 (a login shell's). Past it, `accept` and file
//! opens fail with EMFILE. Like dockerd and containerd (Go raises the soft
//! limit at start-up), the daemon raises its soft limit to the hard one,
//! which needs no privilege.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// The soft limit on open files before and after [`raise_open_files_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFilesLimit {
    /// The soft limit the process started with.
    pub before: u64,
    /// The soft limit now (the hard limit, unless raising it failed).
    pub now: u64,
}

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit. The
/// monitors it starts, and so the containers, inherit it, as dockerd's do.
pub fn raise_open_files_limit() -> nix::Result<OpenFilesLimit> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(OpenFilesLimit {
        before: soft,
        now: soft.max(hard),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_reaches_the_hard_one() {
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        // Lowering is always allowed: start below the hard limit.
        setrlimit(Resource::RLIMIT_NOFILE, hard.min(512), hard).unwrap();
        let l = raise_open_files_limit().unwrap();
        assert_eq!((l.before, l.now), (hard.min(512), hard));
        assert_eq!(getrlimit(Resource::RLIMIT_NOFILE).unwrap(), (hard, hard));
        // Already there: nothing changes.
        assert_eq!(raise_open_files_limit().unwrap().before, hard);
    }
}
