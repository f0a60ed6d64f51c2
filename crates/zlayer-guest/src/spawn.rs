//! Starting a process: `fork` + `execve` done by hand so that the agent's
//! reaper is the only one calling `waitpid` (std's `Command` waits on its
//! own children, which races with a PID 1 reaper).

#![allow(unsafe_code)]

use crate::error::{GuestError, Result};
use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use zlayer_vm_proto::SpawnFailure;

/// The `PATH` used when the environment has none (docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What to start.
#[derive(Debug, Clone, Default)]
pub struct SpawnRequest {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// The complete environment.
    pub env: Vec<(String, String)>,
    /// Working directory (default `/`).
    pub cwd: Option<String>,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Give the process a stdin pipe (else `/dev/null`).
    pub stdin_pipe: bool,
}

/// A started process and the parent's ends of its pipes.
#[derive(Debug)]
pub struct Spawned {
    /// Its pid.
    pub pid: i32,
    /// Write end of its stdin (when requested).
    pub stdin: Option<File>,
    /// Read end of its stdout.
    pub stdout: File,
    /// Read end of its stderr.
    pub stderr: File,
}

/// Finds `program` in `path` like `execvp` does; a name with `/` is used as is.
pub fn resolve_program(program: &str, path: &str) -> Result<PathBuf> {
    if program.is_empty() {
        return Err(GuestError::Invalid("the command is empty".into()));
    }
    if program.contains('/') {
        return Ok(PathBuf::from(program));
    }
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(program);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
        }
    }
    Err(GuestError::Spawn {
        kind: SpawnFailure::NotFound,
        message: format!("exec: {program:?}: executable file not found in $PATH"),
    })
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: valid pointer to two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(GuestError::last_os("pipe2"));
    }
    // SAFETY: pipe2 returned two fresh descriptors that we now own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn cstring(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| GuestError::Invalid(format!("{what} {s:?} contains a NUL byte")))
}

/// Starts the process. The exit status must be collected by the reaper.
pub fn spawn(req: &SpawnRequest) -> Result<Spawned> {
    let argv0 = req.argv.first().map(String::as_str).unwrap_or("");
    let path_var = req
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or(DEFAULT_PATH);
    let program = resolve_program(argv0, path_var)?;
    let program_c = cstring(&program.to_string_lossy(), "program")?;
    let argv_c = req
        .argv
        .iter()
        .map(|a| cstring(a, "argument"))
        .collect::<Result<Vec<_>>>()?;
    let env_c = req
        .env
        .iter()
        .map(|(k, v)| cstring(&format!("{k}={v}"), "environment variable"))
        .collect::<Result<Vec<_>>>()?;
    let cwd_c = cstring(
        req.cwd.as_deref().filter(|c| !c.is_empty()).unwrap_or("/"),
        "working directory",
    )?;
    let mut argv_p: Vec<*const libc::c_char> = argv_c.iter().map(|c| c.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut env_p: Vec<*const libc::c_char> = env_c.iter().map(|c| c.as_ptr()).collect();
    env_p.push(std::ptr::null());
    let groups: Vec<libc::gid_t> = req.groups.clone();

    let (stdin_r, stdin_w) = if req.stdin_pipe {
        let (r, w) = pipe()?;
        (r, Some(w))
    } else {
        let null = File::open("/dev/null").map_err(|e| GuestError::io("open /dev/null", e))?;
        (OwnedFd::from(null), None)
    };
    let (stdout_r, stdout_w) = pipe()?;
    let (stderr_r, stderr_w) = pipe()?;
    let (err_r, err_w) = pipe()?;

    // SAFETY: after fork the child only calls async-signal-safe functions on
    // data prepared above, then execve or _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(GuestError::last_os("fork"));
    }
    if pid == 0 {
        // SAFETY: child side; see above.
        unsafe {
            child(&ChildSetup {
                program: program_c.as_ptr(),
                argv: argv_p.as_ptr(),
                envp: env_p.as_ptr(),
                cwd: cwd_c.as_ptr(),
                uid: req.uid,
                gid: req.gid,
                groups: &groups,
                fds: [
                    stdin_r.as_raw_fd(),
                    stdout_w.as_raw_fd(),
                    stderr_w.as_raw_fd(),
                ],
                err_fd: err_w.as_raw_fd(),
            })
        }
    }
    drop(err_w);
    drop(stdin_r);
    drop(stdout_w);
    drop(stderr_w);
    // The child reports a failure as (step, errno), 8 bytes; nothing when
    // the exec succeeded (the pipe closes on exec).
    let mut report = [0u8; 8];
    let mut err_file = File::from(err_r);
    let mut got = 0;
    while got < report.len() {
        match err_file.read(&mut report[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(GuestError::io("read exec status", e)),
        }
    }
    if got == report.len() {
        let step = i32::from_ne_bytes([report[0], report[1], report[2], report[3]]);
        let code = i32::from_ne_bytes([report[4], report[5], report[6], report[7]]);
        let error = std::io::Error::from_raw_os_error(code);
        let (kind, message) = match step {
            STEP_CHDIR => (
                SpawnFailure::BadWorkingDir,
                format!("working directory {}: {error}", cwd_c.to_string_lossy()),
            ),
            STEP_EXEC => (
                match code {
                    libc::ENOENT | libc::ENOTDIR => SpawnFailure::NotFound,
                    libc::EACCES | libc::EPERM | libc::ENOEXEC | libc::EISDIR | libc::ETXTBSY => {
                        SpawnFailure::NotExecutable
                    }
                    _ => SpawnFailure::Other,
                },
                format!("exec {}: {error}", program.display()),
            ),
            _ => (
                SpawnFailure::Other,
                format!("setting up {}: {error}", program.display()),
            ),
        };
        return Err(GuestError::Spawn { kind, message });
    }
    Ok(Spawned {
        pid,
        stdin: stdin_w.map(File::from),
        stdout: File::from(stdout_r),
        stderr: File::from(stderr_r),
    })
}

struct ChildSetup<'a> {
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: *const libc::c_char,
    uid: u32,
    gid: u32,
    groups: &'a [libc::gid_t],
    fds: [i32; 3],
    err_fd: i32,
}

/// The steps of the child a failure report names.
const STEP_SETUP: i32 = 0;
const STEP_CHDIR: i32 = 1;
const STEP_EXEC: i32 = 2;

/// The child half of [`spawn`]: never returns.
///
/// # Safety
/// Must only be called in a freshly forked child; uses only
/// async-signal-safe calls.
unsafe fn child(s: &ChildSetup<'_>) -> ! {
    let fail = |fd: i32, step: i32| -> ! {
        let errno = *libc::__errno_location();
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&step.to_ne_bytes());
        bytes[4..].copy_from_slice(&errno.to_ne_bytes());
        libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(127)
    };
    // Undo what the agent changed for itself: ignored SIGPIPE, blocked signals.
    libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    let mut set: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut set);
    libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    libc::setsid();
    for (target, &fd) in s.fds.iter().enumerate() {
        if libc::dup2(fd, target as i32) < 0 {
            fail(s.err_fd, STEP_SETUP);
        }
    }
    if libc::setgroups(s.groups.len(), s.groups.as_ptr()) != 0
        || libc::setgid(s.gid) != 0
        || libc::setuid(s.uid) != 0
    {
        fail(s.err_fd, STEP_SETUP);
    }
    if libc::chdir(s.cwd) != 0 {
        fail(s.err_fd, STEP_CHDIR);
    }
    libc::execve(s.program, s.argv, s.envp);
    fail(s.err_fd, STEP_EXEC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_through_path_and_reports_missing_programs() {
        assert_eq!(
            resolve_program("sh", "/nonexistent:/bin").unwrap(),
            PathBuf::from("/bin/sh")
        );
        assert_eq!(resolve_program("/x/y", "").unwrap(), PathBuf::from("/x/y"));
        let err = resolve_program("no-such-program-zl", DEFAULT_PATH).unwrap_err();
        assert!(
            err.to_string().contains("executable file not found"),
            "{err}"
        );
        assert!(resolve_program("", DEFAULT_PATH).is_err());
    }

    #[test]
    fn spawns_with_pipes_env_and_cwd() {
        let child = spawn(&SpawnRequest {
            argv: vec![
                "sh".into(),
                "-c".into(),
                "echo $FOO; pwd; echo err >&2; exit 3".into(),
            ],
            env: vec![
                ("FOO".into(), "bar".into()),
                ("PATH".into(), DEFAULT_PATH.into()),
            ],
            cwd: Some("/tmp".into()),
            uid: unsafe { libc::getuid() },
            gid: unsafe { libc::getgid() },
            groups: vec![],
            stdin_pipe: true,
        });
        // setgroups needs CAP_SETGID; the tests run as root here.
        let mut child = child.unwrap();
        drop(child.stdin.take());
        let mut out = String::new();
        child.stdout.read_to_string(&mut out).unwrap();
        let mut err = String::new();
        child.stderr.read_to_string(&mut err).unwrap();
        let mut status = 0;
        let pid = unsafe { libc::waitpid(child.pid, &mut status, 0) };
        assert_eq!(pid, child.pid);
        assert_eq!(crate::sys::exit_code(status), 3);
        assert_eq!(out, "bar\n/tmp\n");
        assert_eq!(err, "err\n");
    }

    #[test]
    fn exec_failures_are_reported_not_hidden() {
        let file = std::env::temp_dir().join(format!("zl-guest-noexec-{}", std::process::id()));
        std::fs::write(&file, "not a program").unwrap();
        let err = spawn(&SpawnRequest {
            argv: vec![file.to_string_lossy().into_owned()],
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("Permission denied"), "{err}");
        std::fs::remove_file(file).unwrap();
    }
}
