//! Wake-ups on changes in a state directory (inotify), so a log follower
//! sees new output and the exit record at once instead of on its next poll.
//!
//! The watch is on the directory, not the log file: the monitor appends to
//! the log (`IN_MODIFY` of a child) and records the exit by renaming a temp
//! file into place (`IN_MOVED_TO`); both show up as events of the directory.
//! Callers still poll at a slow pace as a fallback (a directory that was
//! renamed away by `remove`, or a kernel without inotify).

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::Path;
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// An inotify watch on one directory.
pub struct DirWatch {
    fd: AsyncFd<InotifyFd>,
}

/// [`Inotify`] behind an fd type that [`AsyncFd`] accepts.
struct InotifyFd(Inotify);

impl AsRawFd for InotifyFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

impl DirWatch {
    /// Watches `dir` for writes, renames into it and new files. `None` when
    /// inotify is unavailable (the caller falls back to polling).
    pub fn new(dir: &Path) -> Option<DirWatch> {
        DirWatch::new_many(&[dir])
    }

    /// [`DirWatch::new`] over several directories (e.g. a log directory and
    /// the state directory where the exit is recorded); a directory that
    /// cannot be watched is skipped, `None` when none can.
    pub fn new_many(dirs: &[&Path]) -> Option<DirWatch> {
        let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).ok()?;
        let mask = AddWatchFlags::IN_MODIFY
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_DELETE_SELF;
        let watched = dirs
            .iter()
            .filter(|d| ino.add_watch(**d, mask).is_ok())
            .count();
        if watched == 0 {
            return None;
        }
        // Registering needs a reactor; without one the caller polls.
        tokio::runtime::Handle::try_current().ok()?;
        // SAFETY: the `Inotify` owns its fd, which stays open and the same
        // for as long as the `AsyncFd` (which owns the `Inotify`) lives.
        let fd =
            unsafe { AsyncFd::register_with_interest(InotifyFd(ino), Interest::READABLE) }.ok()?;
        Some(DirWatch { fd })
    }

    /// Waits until something changed in the directory or `fallback`
    /// elapsed, whichever comes first; drains the pending events.
    pub async fn changed(&self, fallback: Duration) {
        let wait = async {
            loop {
                let Ok(mut guard) = self.fd.readable().await else {
                    // The fd broke: behave like a plain sleep.
                    tokio::time::sleep(fallback).await;
                    return;
                };
                match guard.get_inner().0.read_events() {
                    Ok(events) if !events.is_empty() => return,
                    Ok(_) => guard.clear_ready(),
                    Err(nix::errno::Errno::EAGAIN) => guard.clear_ready(),
                    Err(_) => {
                        tokio::time::sleep(fallback).await;
                        return;
                    }
                }
            }
        };
        let _ = tokio::time::timeout(fallback, wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn a_write_wakes_the_watcher_before_the_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let w = DirWatch::new(dir.path()).expect("inotify works here");
        let p = dir.path().join("log");
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            std::fs::write(p, b"x").unwrap();
        });
        let t = Instant::now();
        w.changed(Duration::from_secs(5)).await;
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        writer.await.unwrap();
        // Without changes it returns after the fallback.
        let t = Instant::now();
        w.changed(Duration::from_millis(50)).await;
        assert!(t.elapsed() >= Duration::from_millis(45));
    }
}
