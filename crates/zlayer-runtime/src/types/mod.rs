//! Plain data types shared by every runtime.

mod container_id;
mod exec;
mod image;
mod logs;
mod ports;
mod state;
mod stats;

pub use container_id::ContainerId;
pub use exec::{ExecOptions, ExecOutput};
pub use image::ImageInfo;
pub use logs::{LogChunk, LogEntry, LogStream, LogsStreamOptions};
pub use ports::PortMappingEntry;
pub use state::ContainerState;
pub use stats::{ContainerStats, StatsSample};
