//! Helpers shared by the spec tests.

#![allow(dead_code)]

use std::path::PathBuf;

use zlayer_spec::{parse_deployment, Problem, SpecErrors};

/// The repository's `examples/` directory.
pub fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// Parses `yaml`, which must fail, and returns its problems.
pub fn errors(yaml: &str) -> SpecErrors {
    match parse_deployment(yaml) {
        Ok(spec) => panic!("expected problems, got a valid spec: {spec:#?}"),
        Err(e) => e,
    }
}

/// The problem at `path`; fails the test (printing all problems) when absent.
pub fn problem_at<'a>(errs: &'a SpecErrors, path: &str) -> &'a Problem {
    errs.iter()
        .find(|p| p.path == path)
        .unwrap_or_else(|| panic!("no problem at {path}; got:\n{errs}"))
}

/// Asserts exactly one problem, at `path` on `line`, whose message contains `text`.
pub fn assert_single(yaml: &str, path: &str, line: usize, text: &str) {
    let errs = errors(yaml);
    assert_eq!(errs.len(), 1, "expected one problem, got:\n{errs}");
    let p = problem_at(&errs, path);
    assert_eq!(p.line, Some(line), "wrong line for {path}:\n{errs}");
    assert!(
        p.message.contains(text),
        "message for {path} lacks {text:?}: {}",
        p.message
    );
}

/// A valid spec with one service `web` whose body lines follow (indented 4).
pub fn one_service(body: &str) -> String {
    let mut s = String::from(
        "version: v1\ndeployment: shop\nservices:\n  web:\n    image: { name: \"localhost:5000/web:1.2\" }\n",
    );
    for line in body.lines() {
        s.push_str("    ");
        s.push_str(line);
        s.push('\n');
    }
    s
}
