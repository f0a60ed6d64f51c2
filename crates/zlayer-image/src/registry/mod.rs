//! Talking to OCI / Docker v2 registries for pulls.
//!
//! - [`RegistryClient`]: manifests, and resumable verified blob downloads
//!   into the [`crate::ContentStore`], with retries and backoff.
//! - [`RegistryAuth`] / [`DockerConfig`]: credentials from the caller or
//!   from `docker login`'s `config.json`.
//! - [`endpoint`]: `docker.io` → `registry-1.docker.io`, plain HTTP for loopback.

pub mod auth;
pub mod client;
pub mod endpoint;
mod failure;
pub mod retry;

pub use auth::{DockerConfig, RegistryAuth};
pub use client::{BlobRef, ClientOptions, RegistryClient};
pub use retry::RetryPolicy;
