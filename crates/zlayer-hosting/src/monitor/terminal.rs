//! The terminal of a workload started with one.

use std::os::fd::{AsFd, AsRawFd};

/// Rows of a new terminal.
pub const DEFAULT_ROWS: u16 = 24;
/// Columns of a new terminal.
pub const DEFAULT_COLS: u16 = 80;

/// Sets the window size of the terminal `fd` (its foreground process
/// group gets SIGWINCH).
pub fn set_window_size(fd: impl AsFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads the winsize we pass.
    unsafe {
        libc::ioctl(fd.as_fd().as_raw_fd(), libc::TIOCSWINSZ, &ws);
    }
}
