//! The local side of `-t`: our terminal in raw mode while attached (so keys
//! like ^C and arrows reach the container's terminal, whose own line
//! discipline handles them), and its size passed on at start and on every
//! SIGWINCH.

use nix::sys::termios::{self, SetArg, Termios};
use std::io::IsTerminal;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};

/// Puts stdin's terminal in raw mode until dropped; does nothing when stdin
/// is not a terminal (e.g. `zlayer run -t ... < file`).
pub struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    /// Enters raw mode on stdin when it is a terminal.
    pub fn enter() -> RawMode {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return RawMode { saved: None };
        }
        let Ok(saved) = termios::tcgetattr(stdin.as_fd()) else {
            return RawMode { saved: None };
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        if termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).is_err() {
            return RawMode { saved: None };
        }
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSADRAIN, saved);
        }
    }
}

/// The size (rows, columns) of the terminal on stdout, else stdin.
pub fn window_size() -> Option<(u16, u16)> {
    let query = |fd: i32| {
        // SAFETY: TIOCGWINSZ writes a winsize into the struct we own.
        let mut ws: nix::libc::winsize = unsafe { std::mem::zeroed() };
        let ok = unsafe { nix::libc::ioctl(fd, nix::libc::TIOCGWINSZ, &mut ws) } == 0;
        (ok && ws.ws_row > 0 && ws.ws_col > 0).then_some((ws.ws_row, ws.ws_col))
    };
    query(std::io::stdout().as_raw_fd()).or_else(|| query(std::io::stdin().as_raw_fd()))
}

/// Passes our terminal's size to the container now and on every SIGWINCH,
/// until the returned task is aborted. Resize errors (the container just
/// ended, a runtime without terminals) are not worth a message.
pub fn spawn_resize_relay(
    engine: Arc<zlayer_engine::Engine>,
    record: zlayer_engine::ContainerRecord,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut winch = signal(SignalKind::window_change()).ok();
        loop {
            if let Some((rows, cols)) = window_size() {
                if let Err(e) = engine.resize(&record, rows, cols).await {
                    tracing::debug!("resizing the terminal of {}: {e}", record.name);
                }
            }
            match winch.as_mut() {
                Some(w) => {
                    if w.recv().await.is_none() {
                        return;
                    }
                }
                None => return,
            }
        }
    })
}
