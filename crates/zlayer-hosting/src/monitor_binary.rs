//! Where a launcher's monitor binary is: configured, named by an
//! environment variable, next to the running program, or on `PATH`; found
//! once per process.

use std::path::PathBuf;
use std::sync::OnceLock;
use zlayer_runtime::{Result, RuntimeError};

/// The monitor binary of one isolation.
#[derive(Debug)]
pub struct MonitorBinary {
    name: &'static str,
    package: &'static str,
    env: Option<&'static str>,
    configured: Option<PathBuf>,
    found: OnceLock<PathBuf>,
}

impl MonitorBinary {
    /// The binary `name`, built by the cargo package `package`; `env` is an
    /// environment variable that may name it, `configured` a path that
    /// wins over everything.
    pub fn new(
        name: &'static str,
        package: &'static str,
        env: Option<&'static str>,
        configured: Option<PathBuf>,
    ) -> Self {
        MonitorBinary {
            name,
            package,
            env,
            configured,
            found: OnceLock::new(),
        }
    }

    /// Its path; an error saying how to build it when it is nowhere.
    pub fn path(&self) -> Result<PathBuf> {
        if let Some(p) = self.configured.as_ref().or(self.found.get()) {
            return Ok(p.clone());
        }
        let from_env = self.env.and_then(std::env::var_os).map(PathBuf::from);
        let found = from_env
            .or_else(|| zlayer_sys::exe::find_helper(self.name))
            .ok_or_else(|| {
                let here = zlayer_sys::exe::dir()
                    .map_or_else(|| "this program".into(), |d| d.display().to_string());
                let or_env = self
                    .env
                    .map(|e| format!(" or set {e} to its path"))
                    .unwrap_or_default();
                RuntimeError::Configuration(format!(
                    "the monitor `{}` was not found next to {here} or on PATH; build it with \
                     `cargo build -p {} --bins`{or_env}",
                    self.name, self.package
                ))
            })?;
        Ok(self.found.get_or_init(|| found).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_wins_and_missing_says_how_to_build() {
        let m = MonitorBinary::new("zl-none", "zl-pkg", None, Some("/x/mon".into()));
        assert_eq!(m.path().unwrap(), PathBuf::from("/x/mon"));
        let m = MonitorBinary::new("zlayer-no-such-monitor", "zl-pkg", None, None);
        let e = m.path().unwrap_err().to_string();
        assert!(e.contains("cargo build -p zl-pkg --bins"), "{e}");
    }
}
