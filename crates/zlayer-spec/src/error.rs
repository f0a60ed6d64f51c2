//! The crate's error type and the "all problems at once" report.

use std::fmt;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A size such as `memory: 12Qi` that is not a number of bytes.
    #[error("\"{raw}\" is not a size; use e.g. 512Mi or 2Gi (units: Ki, Mi, Gi, Ti, K, M, G, T, or plain bytes)")]
    InvalidSize {
        /// The text as written in the spec.
        raw: String,
    },
    /// A duration such as `interval: 10x` that cannot be read.
    #[error("\"{raw}\" is not a duration; use e.g. 500ms, 10s, 5m or 1h30m")]
    InvalidDuration {
        /// The text as written in the spec.
        raw: String,
    },
    /// A word that is not one of a closed set (pull policy, protocol, ...).
    #[error("unknown {what} \"{value}\"; use one of: {expected}")]
    UnknownValue {
        /// What kind of value was expected, e.g. `pull policy`.
        what: &'static str,
        /// The text as written in the spec.
        value: String,
        /// The accepted words, comma separated.
        expected: String,
    },
    /// A `network_mode` that is not `bridge`, `host`, `none` or `bridge:NAME`.
    #[error("unknown network mode \"{0}\"; use bridge, host, none or bridge:NAME")]
    InvalidNetworkMode(String),
    /// A signal name or number that Linux does not know.
    #[error("\"{0}\" is not a signal; use a name such as SIGTERM, TERM or a number 1-31")]
    InvalidSignal(String),
    /// The spec file could not be read.
    #[error("cannot read spec file {path}: {source}")]
    Io {
        /// The file that was being read.
        path: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The spec was read but has problems; see [`SpecErrors`].
    #[error("{0}")]
    Invalid(SpecErrors),
}

impl From<SpecErrors> for SpecError {
    fn from(errors: SpecErrors) -> Self {
        SpecError::Invalid(errors)
    }
}

/// One problem in a spec, located by its YAML path and (when known) line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted YAML path, e.g. `services.web.resources.memory` or
    /// `services.web.storage[1].target`; empty for the whole document.
    pub path: String,
    /// 1-based line in the YAML text, when known.
    pub line: Option<usize>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Problem {
    /// A problem at `path` with no line yet (lines are filled in by the parser).
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            path: path.into(),
            line: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in a spec. `Display` prints one problem per line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpecErrors {
    /// The problems, ordered by line (problems without a line come last).
    pub problems: Vec<Problem>,
}

impl SpecErrors {
    /// Wraps a list of problems.
    pub fn new(problems: Vec<Problem>) -> Self {
        SpecErrors { problems }
    }

    /// A report holding a single problem.
    pub fn single(problem: Problem) -> Self {
        SpecErrors {
            problems: vec![problem],
        }
    }

    /// Whether no problem was found.
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// How many problems were found.
    pub fn len(&self) -> usize {
        self.problems.len()
    }

    /// Iterates over the problems.
    pub fn iter(&self) -> std::slice::Iter<'_, Problem> {
        self.problems.iter()
    }
}

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}

impl<'a> IntoIterator for &'a SpecErrors {
    type Item = &'a Problem;
    type IntoIter = std::slice::Iter<'a, Problem>;

    fn into_iter(self) -> Self::IntoIter {
        self.problems.iter()
    }
}
