//! [`ImageSpec`], [`PullPolicy`] and [`CommandSpec`].

use serde::{Deserialize, Serialize};

use crate::macros::string_enum;

/// Which image a service runs and when to pull it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    /// Image reference, e.g. `localhost:5000/web:1.2`.
    #[serde(deserialize_with = "crate::scalar::string::deserialize")]
    pub name: String,
    /// When to pull; defaults to `if_not_present`.
    #[serde(default)]
    pub pull_policy: PullPolicy,
}

impl ImageSpec {
    /// An image reference with the default pull policy.
    pub fn new(name: impl Into<String>) -> Self {
        ImageSpec {
            name: name.into(),
            pull_policy: PullPolicy::default(),
        }
    }
}

string_enum! {
    /// When to pull an image from its registry.
    pub enum PullPolicy ("pull policy") {
        /// Pull on every start.
        Always => "always",
        /// Pull only when the image is not stored locally (the default).
        #[default]
        IfNotPresent => "if_not_present",
        /// Never pull; the image must already be stored locally.
        Never => "never",
        /// Pull when the registry has a different digest than the local copy.
        Newer => "newer",
    }
}

/// Overrides of the image's entrypoint, arguments and working directory.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSpec {
    /// Replaces the image's `Entrypoint` when set.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::scalar::opt_vec_string::deserialize"
    )]
    pub entrypoint: Option<Vec<String>>,
    /// Replaces the image's `Cmd` when set.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::scalar::opt_vec_string::deserialize"
    )]
    pub args: Option<Vec<String>>,
    /// Replaces the image's `WorkingDir` when set.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::scalar::opt_string::deserialize"
    )]
    pub workdir: Option<String>,
}

impl CommandSpec {
    /// Whether nothing is overridden.
    pub fn is_empty(&self) -> bool {
        self == &CommandSpec::default()
    }
}
