//! Reading a spec from YAML text or a file: parse, collect, validate, locate.

use std::path::Path;

use serde_norway::Value;

use crate::collect::{self, Collected};
use crate::lines::LineMap;
use crate::path::YamlPath;
use crate::{validate, DeploymentSpec, Problem, SpecErrors};

/// Parses and validates a deployment spec from YAML text.
///
/// On failure every problem found is returned at once, each with its YAML
/// path and line: unknown fields, values of the wrong type or unknown words,
/// and everything [`DeploymentSpec::validate`] checks. A YAML syntax error is
/// reported alone, with its line.
pub fn parse_deployment(yaml: &str) -> Result<DeploymentSpec, SpecErrors> {
    let lines = LineMap::build(yaml);
    if !lines.duplicates.is_empty() {
        // The YAML reader stops at the first repeated key; report them all.
        return Err(SpecErrors::new(
            lines
                .duplicates
                .iter()
                .map(|(path, line)| Problem {
                    path: path.to_string(),
                    line: Some(*line),
                    message: "this key is written twice in the same mapping; keep one".into(),
                })
                .collect(),
        ));
    }
    let mut value: Value = serde_norway::from_str(yaml).map_err(|e| {
        SpecErrors::single(Problem {
            path: String::new(),
            line: e.location().map(|l| l.line()),
            message: format!("invalid YAML: {}", strip_location(&e.to_string())).replace(
                "is not supported",
                "is not supported; keep one document (one ---)",
            ),
        })
    })?;
    if value.is_null() {
        return Err(SpecErrors::single(Problem::new(
            "",
            "the spec is empty; it needs version, deployment and services, e.g. `version: v1`",
        )));
    }
    value.apply_merge().map_err(|e| {
        SpecErrors::single(Problem::new(
            "",
            format!("invalid YAML merge key (<<): {e}"),
        ))
    })?;
    let collected = collect::deserialize_all(value);
    let mut found: Vec<(YamlPath, String)> = collected
        .problems
        .iter()
        .map(|p| (p.path.clone(), p.message.clone()))
        .collect();
    if let Some(spec) = &collected.spec {
        found.extend(
            validate::check(spec)
                .items
                .into_iter()
                .filter(|(path, _)| !collected.is_patched(path)),
        );
    }
    finish(collected, found, &lines)
}

fn finish(
    collected: Collected,
    found: Vec<(YamlPath, String)>,
    lines: &LineMap,
) -> Result<DeploymentSpec, SpecErrors> {
    match collected.spec {
        Some(spec) if found.is_empty() => Ok(spec),
        _ => {
            let mut problems: Vec<Problem> = found
                .into_iter()
                .map(|(path, message)| Problem {
                    line: lines.line_of(&path),
                    path: path.to_string(),
                    message,
                })
                .collect();
            // By line; problems without a line last; stable for equal lines.
            problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
            Err(SpecErrors::new(problems))
        }
    }
}

/// Reads, parses and validates the spec file at `path` (see [`parse_deployment`]).
pub fn parse_deployment_file(path: &Path) -> Result<DeploymentSpec, SpecErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        SpecErrors::single(Problem::new(
            "",
            crate::SpecError::Io {
                path: path.display().to_string(),
                source: e,
            }
            .to_string(),
        ))
    })?;
    parse_deployment(&text)
}

/// serde_norway appends " at line L column C"; the line is reported separately.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}
