//! Dependency checks: unknown services and cycles.

use std::collections::HashMap;

use super::Findings;
use crate::path::YamlPath;
use crate::DeploymentSpec;

#[derive(Clone, Copy, PartialEq)]
enum Mark {
    New,
    Active,
    Done,
}

pub(super) fn check(spec: &DeploymentSpec, f: &mut Findings) {
    let known: Vec<&str> = spec.services.keys().map(String::as_str).collect();
    for (name, svc) in &spec.services {
        for (i, dep) in svc.depends.iter().enumerate() {
            if !spec.services.contains_key(&dep.service) {
                f.push(
                    dep_path(name, i),
                    format!(
                        "depends on unknown service \"{}\"; known services: {}",
                        dep.service,
                        known.join(", ")
                    ),
                );
            }
        }
    }
    let mut marks: HashMap<&str, Mark> = known.iter().map(|n| (*n, Mark::New)).collect();
    for name in &known {
        let mut stack = Vec::new();
        visit(spec, name, &mut marks, &mut stack, f);
    }
}

/// Depth-first walk; an edge to a service still on the stack closes a cycle,
/// reported once at the `depends` entry that closes it.
fn visit<'a>(
    spec: &'a DeploymentSpec,
    name: &'a str,
    marks: &mut HashMap<&'a str, Mark>,
    stack: &mut Vec<&'a str>,
    f: &mut Findings,
) {
    if marks.get(name) != Some(&Mark::New) {
        return;
    }
    marks.insert(name, Mark::Active);
    stack.push(name);
    if let Some(svc) = spec.services.get(name) {
        for (i, dep) in svc.depends.iter().enumerate() {
            let next = dep.service.as_str();
            match marks.get(next) {
                Some(Mark::Active) => {
                    let start = stack.iter().position(|s| *s == next).unwrap_or(0);
                    let mut cycle: Vec<&str> = stack[start..].to_vec();
                    cycle.push(next);
                    f.push(
                        dep_path(name, i),
                        format!(
                            "dependency cycle: {}; remove one of these depends entries",
                            cycle.join(" -> ")
                        ),
                    );
                }
                Some(Mark::New) => visit(spec, next, marks, stack, f),
                _ => {}
            }
        }
    }
    stack.pop();
    marks.insert(name, Mark::Done);
}

fn dep_path(service: &str, index: usize) -> YamlPath {
    YamlPath::root()
        .key("services")
        .key(service)
        .key("depends")
        .index(index)
        .key("service")
}
