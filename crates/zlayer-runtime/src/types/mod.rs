//! Plain data types shared by every runtime.

mod container_id;
mod exec;
mod image;
mod invoke;
mod logs;
mod ports;
mod record;
mod state;
mod stats;

pub use container_id::ContainerId;
pub use exec::{ExecOptions, ExecOutput};
pub use image::ImageInfo;
pub use invoke::{InvokeFailure, EXIT_CANNOT_INVOKE, EXIT_ENGINE_ERROR, EXIT_NOT_FOUND};
pub use logs::{LogChunk, LogEntry, LogStream, LogsStreamOptions};
pub use ports::PortMappingEntry;
pub use record::{new_container_id, ContainerRecord, ContainerView, NewContainer, RECORD_VERSION};
pub use state::ContainerState;
pub use stats::{ContainerStats, StatsSample};
