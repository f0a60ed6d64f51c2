//! The monitor: one process per running container, the same loop for
//! every isolation. Each isolation's monitor binary is a few lines calling
//! [`main`] with its [`Launcher`].
//!
//! Started by [`crate::runtime`] in its own process group (the CLI or
//! daemon that started it may be killed without losing anything), it:
//! - reads the container's files and has the launcher start the workload
//!   ([`Launcher::spawn`]), as its child: it is a child subreaper, and the
//!   workload dies with it;
//! - writes `monitor.json` and reports on its ready pipe;
//! - pumps the workload's output into the log, and stdin from clients into
//!   the workload;
//! - serves the control socket (wait, stdin, resize, exec, signal, stats);
//! - reaps the workload and the execs, records the exit in `exit.json`
//!   after the log is flushed, answers waiters, and removes the container
//!   when it was created with `--rm` (restart policies are the
//!   supervisor's: the monitor only records).
//!
//! A plain blocking `poll(2)` loop on one thread, no async runtime, so an
//! idle monitor costs about a megabyte.
//!
//! Invocation: `MONITOR [DIR] [--ready-fd N]`. Without `DIR` the monitor
//! was started ahead of its container (a standby, see
//! [`crate::standby`]): it reads the directory from stdin, and exits
//! quietly when stdin closes without one.

mod clients;
mod event_loop;
mod finish;
mod terminal;
pub mod trim;

pub use clients::write_report;
pub use terminal::{set_window_size, DEFAULT_COLS, DEFAULT_ROWS};

use crate::control::Ready;
use crate::launcher::Launcher;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Entry point of a monitor binary: `make` builds the isolation's launcher
/// for the data root of the container directory. Returns the process exit
/// code.
pub fn main<L: Launcher>(
    make: impl FnOnce(&Path) -> L,
    args: impl IntoIterator<Item = OsString>,
) -> i32 {
    let name = "zlayer";
    let args: Vec<OsString> = args.into_iter().skip(1).collect();
    let mut dir: Option<PathBuf> = None;
    let mut ready: Option<OwnedFd> = None;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if a == "--ready-fd" {
            let fd = it.next().and_then(|v| v.to_str()?.parse::<i32>().ok());
            match fd {
                Some(1) => match take_stdout() {
                    Ok(fd) => ready = Some(fd),
                    Err(e) => {
                        eprintln!("{name} monitor: moving the ready pipe off stdout: {e}");
                        return 2;
                    }
                },
                // SAFETY: the caller passed this fd for our exclusive use.
                Some(fd) if fd > 2 => ready = Some(unsafe { OwnedFd::from_raw_fd(fd) }),
                _ => {
                    eprintln!(
                        "{name} monitor: --ready-fd needs 1 (stdout) or a descriptor number above 2"
                    );
                    return 2;
                }
            }
        } else if dir.is_none() {
            dir = Some(PathBuf::from(a));
        } else {
            eprintln!("{name} monitor: unexpected argument {a:?}");
            return 2;
        }
    }
    let dir = match dir {
        Some(d) => d,
        None => match standby_job() {
            Ok(Some(d)) => d,
            Ok(None) => return 0,
            Err(e) => {
                eprintln!("usage: {name} monitor [<container-dir>] [--ready-fd N]: {e}");
                return 2;
            }
        },
    };
    let _ = DIAG_LOG.set(dir.join("monitor.log"));
    std::panic::set_hook(Box::new(|info| diag(&format!("panic: {info}"))));
    if let Some(fd) = &ready {
        // The workload must not inherit the ready pipe.
        let _ = nix::fcntl::fcntl(
            fd.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
    }
    let mut ready = ReadyPipe(ready);
    let root = state_dir(&dir)
        .data_root()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let launcher = make(&root);
    match event_loop::Monitor::start(&launcher, &dir) {
        Ok(mut m) => {
            ready.send(&Ready::Started { pid: m.main_pid() });
            m.run();
            m.finish();
            0
        }
        Err(e) => {
            diag(&e.message);
            ready.send(&Ready::Failed(e));
            1
        }
    }
}

/// Reads the container directory from stdin (the whole input, one line),
/// then puts `/dev/null` on stdin. `None` when the input is empty.
fn standby_job() -> std::io::Result<Option<PathBuf>> {
    use std::os::unix::ffi::OsStringExt;
    let mut job = Vec::new();
    std::io::stdin().lock().read_to_end(&mut job)?;
    // SAFETY: open and dup2 on descriptors of this process.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::close(null);
        }
    }
    while job.last().is_some_and(|b| *b == b'\n') {
        job.pop();
    }
    if job.is_empty() {
        return Ok(None);
    }
    Ok(Some(PathBuf::from(OsString::from_vec(job))))
}

/// `monitor.log` in the container directory, once known.
static DIAG_LOG: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Records a diagnostic of the monitor itself in `monitor.log`, created on
/// first use (a start without trouble writes no file), or on stderr.
pub(crate) fn diag(msg: &str) {
    let line = format!("monitor: {msg}\n");
    let written = DIAG_LOG.get().is_some_and(|path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .is_ok()
    });
    if !written {
        eprint!("{line}");
    }
}

/// Takes the ready pipe passed as stdout: a close-on-exec duplicate of
/// fd 1, with `/dev/null` on fd 1 from then on.
fn take_stdout() -> std::io::Result<OwnedFd> {
    // SAFETY: fcntl, open and dup2 on descriptors of this process; the
    // duplicate is owned by the returned OwnedFd alone.
    unsafe {
        let fd = libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let owned = OwnedFd::from_raw_fd(fd);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if null < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let r = libc::dup2(null, 1);
        libc::close(null);
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(owned)
    }
}

/// The pipe on which the monitor reports its start.
struct ReadyPipe(Option<OwnedFd>);

impl ReadyPipe {
    fn send(&mut self, msg: &Ready) {
        if let Some(fd) = self.0.take() {
            let mut f = std::fs::File::from(fd);
            if let Ok(mut line) = serde_json::to_vec(msg) {
                line.push(b'\n');
                let _ = f.write_all(&line);
            }
        }
    }
}

/// Whether `pid` descends from `ancestor`, started at `ancestor_start`
/// (clock ticks after boot), walking parent pids up. The walk stops at the
/// first process older than `ancestor`: none of its descendants is (an
/// orphan is re-parented to the monitor, a subreaper), so a front end is
/// told apart in one `/proc` read instead of a walk up to init.
pub(crate) fn descends_from(pid: i32, ancestor: i32, ancestor_start: u64) -> bool {
    let mut cur = pid;
    for _ in 0..64 {
        if cur == ancestor {
            return true;
        }
        match zlayer_sys::procfs::stat(cur) {
            Some(s) if s.starttime < ancestor_start => return false,
            Some(s) if s.ppid > 1 => cur = s.ppid,
            _ => return false,
        }
    }
    false
}

/// The directory a monitor was given, as a state dir.
pub(crate) fn state_dir(dir: &Path) -> crate::layout::StateDir {
    crate::layout::StateDir::new(dir)
}
