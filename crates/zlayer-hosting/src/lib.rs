//! zlayer-hosting: the hosting layer every isolation shares.

pub mod dir_watch;
pub mod exit;
pub mod logs;
pub mod mounts;
pub mod run_tmpfs;
