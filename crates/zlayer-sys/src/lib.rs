//! zlayer-sys: the small Linux helpers every zlayer layer shares, each in
//! one place: crash-safe state files ([`atomic`]), `/proc` process
//! accounting ([`procfs`]), the stable hash names derive from ([`hash`]),
//! where helper binaries live ([`exe`]), file locks ([`lock`]) and small
//! directory helpers ([`fs`]).

pub mod atomic;
pub mod exe;
pub mod fs;
pub mod hash;
pub mod lock;
pub mod pidfd;
pub mod procfs;
