//! The zlayer deployment spec: types, YAML parsing and validation.
//!
//! Entry points: [`parse_deployment_file`] / [`parse_deployment`] read a spec,
//! validate it and return either a [`DeploymentSpec`] or every problem found
//! ([`SpecErrors`], one line per problem with its YAML path and line number).
//!
//! How "every problem at once" works: sizes and durations are kept as raw
//! text when read ([`ByteSize`], [`DurationSpec`]) and checked by validation.
//! Closed words (pull policy, protocol, `type:` tags, network mode, ...) are
//! strict enums, so a bad word makes serde stop; the reader then records that
//! problem, replaces the word with a placeholder in its YAML tree and reads
//! again (likewise for unknown fields, which are removed, and for values of
//! the wrong type), so one mistake never hides the next. Problems that the
//! placeholders themselves would cause are not reported.
//!
//! YAML library: `serde_yaml` 0.9 is deprecated and unmaintained, so serde
//! (de)serialization uses `serde_norway`, a maintained fork with the same API
//! and error locations. Line numbers for validation problems come from
//! `saphyr-parser`, a maintained YAML 1.2 event parser that exposes marks.

mod collect;
mod duration;
mod error;
pub mod labels;
mod lines;
mod macros;
mod parse;
mod path;
mod scalar;
pub mod signal;
mod size;
mod types;
mod validate;

pub use duration::DurationSpec;
pub use error::{Problem, SpecError, SpecErrors};
pub use parse::{parse_deployment, parse_deployment_file};
pub use signal::{parse_signal, signal_name};
pub use size::ByteSize;
pub use types::*;
