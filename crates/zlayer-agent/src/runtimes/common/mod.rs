//! Pieces shared by the runtimes that supervise host processes through a
//! per-container monitor (`sandbox`, `container`): atomic state files, exit
//! records, JSON-lines logs and `/proc` process-tree accounting.

pub mod atomic;
pub mod dir_watch;
pub mod exit;
pub mod logs;
pub mod procfs;
