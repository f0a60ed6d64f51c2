//! One module per isolation technology.
pub mod vm;
pub mod common;
pub mod sandbox;
pub mod container;
