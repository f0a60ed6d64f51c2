//! Pieces shared by the runtimes that supervise host processes through a
//! per-container monitor (`sandbox`, `container`): atomic state files, exit
//! records, JSON-lines logs, `/proc` process-tree accounting and the
//! private tmpfs for runtime-only files.

pub mod atomic;
pub mod dir_watch;
pub mod exit;
pub mod logs;
pub mod procfs;
pub mod run_tmpfs;
