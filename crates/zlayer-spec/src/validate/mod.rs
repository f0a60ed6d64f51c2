//! Semantic checks of a deserialized spec. Every check adds to one list so
//! that all problems are reported at once.

mod depends;
mod ports;
mod service;

use crate::path::YamlPath;
use crate::{DeploymentSpec, Problem, SpecErrors};

/// Problems found so far, each with its YAML path.
#[derive(Default)]
pub(crate) struct Findings {
    pub(crate) items: Vec<(YamlPath, String)>,
}

impl Findings {
    pub(crate) fn push(&mut self, path: YamlPath, message: impl Into<String>) {
        self.items.push((path, message.into()));
    }
}

/// Runs every check on `spec`.
pub(crate) fn check(spec: &DeploymentSpec) -> Findings {
    let mut f = Findings::default();
    let root = YamlPath::root();
    if spec.version != "v1" {
        f.push(
            root.key("version"),
            format!("unsupported version \"{}\"; use v1", spec.version),
        );
    }
    if let Err(why) = check_name(&spec.deployment) {
        f.push(root.key("deployment"), format!("deployment name {why}"));
    }
    if spec.services.is_empty() {
        f.push(
            root.key("services"),
            "no services; add at least one, e.g. `web: {image: {name: nginx:1.27}}`",
        );
    }
    for (name, svc) in &spec.services {
        let path = root.key("services").key(name.as_str());
        if let Err(why) = check_name(name) {
            f.push(path.clone(), format!("service name {why}"));
        }
        service::check(svc, &path, &mut f);
    }
    ports::check(spec, &mut f);
    depends::check(spec, &mut f);
    f
}

/// Names become container names, directory names and DNS labels.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty; use letters, digits, '-', '_' or '.', e.g. shop".into());
    }
    if name.len() > 63 {
        return Err(format!("\"{name}\" is longer than 63 characters"));
    }
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let all_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !first_ok || !all_ok {
        return Err(format!(
            "\"{name}\" is not allowed; start with a letter or digit and use only letters, digits, '-', '_' or '.'"
        ));
    }
    Ok(())
}

impl DeploymentSpec {
    /// Checks the spec's meaning (versions, sizes, durations, ports,
    /// dependencies, labels, signals, ...) and returns every problem found.
    ///
    /// Problems carry their YAML path but no line number; specs read with
    /// [`crate::parse_deployment`] get line numbers too.
    pub fn validate(&self) -> Result<(), SpecErrors> {
        let findings = check(self);
        if findings.items.is_empty() {
            return Ok(());
        }
        Err(SpecErrors::new(
            findings
                .items
                .into_iter()
                .map(|(path, message)| Problem::new(path.to_string(), message))
                .collect(),
        ))
    }
}
