//! One module per isolation technology.
pub mod common;
pub mod container;
pub mod sandbox;
pub mod vm;
