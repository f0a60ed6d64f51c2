//! Deserialization that reports every problem instead of only the first.
//!
//! serde stops at the first error. To report all of them, the document is
//! first read into a YAML value tree; then, in a loop, the spec is
//! deserialized from the tree, the error (with its path, tracked by
//! `serde_path_to_error`) is recorded, and the tree is patched so that
//! deserialization gets past that spot: an unknown field is removed, a bad
//! value is removed or replaced by a neutral placeholder, a missing required
//! field is filled in. Nodes that were replaced are remembered as "patched";
//! later errors under them (and validation problems about them) are side
//! effects of the placeholders and are not reported.

use serde_norway::{Mapping, Value};

use crate::path::{Seg, YamlPath};
use crate::DeploymentSpec;

/// Gives up after this many errors; a spec with more is hopeless anyway.
const MAX_ROUNDS: usize = 200;

/// A deserialization problem before line numbers are known.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawProblem {
    pub(crate) path: YamlPath,
    pub(crate) message: String,
}

/// What [`deserialize_all`] found.
pub(crate) struct Collected {
    /// The spec, when the tree could be patched into a deserializable shape.
    /// It is only meaningful for validation when `problems` is empty, or for
    /// paths outside `patched`.
    pub(crate) spec: Option<DeploymentSpec>,
    /// Every deserialization problem found.
    pub(crate) problems: Vec<RawProblem>,
    /// Nodes replaced by placeholders.
    pub(crate) patched: Vec<YamlPath>,
}

impl Collected {
    /// Whether `path` is, or lies under, a node replaced by a placeholder.
    pub(crate) fn is_patched(&self, path: &YamlPath) -> bool {
        self.patched.iter().any(|p| path.starts_with(p))
    }
}

struct Failure {
    path: YamlPath,
    message: String,
}

fn try_deserialize(value: &Value) -> Result<DeploymentSpec, Failure> {
    serde_path_to_error::deserialize::<_, DeploymentSpec>(value).map_err(|e| {
        let path = YamlPath(
            e.path()
                .iter()
                .filter_map(|seg| match seg {
                    serde_path_to_error::Segment::Seq { index } => Some(Seg::Index(*index)),
                    serde_path_to_error::Segment::Map { key } => Some(Seg::Key(key.clone())),
                    _ => None,
                })
                .collect(),
        );
        Failure {
            path,
            message: e.into_inner().to_string(),
        }
    })
}

/// Deserializes `value`, collecting every problem (see the module docs).
pub(crate) fn deserialize_all(mut value: Value) -> Collected {
    let mut out = Collected {
        spec: None,
        problems: Vec::new(),
        patched: Vec::new(),
    };
    if !matches!(value, Value::Mapping(_)) {
        out.problems.push(RawProblem {
            path: YamlPath::root(),
            message: "the spec must be a mapping with version, deployment and services; \
                      e.g. `version: v1`"
                .into(),
        });
        return out;
    }
    let mut seen: Vec<(YamlPath, String)> = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let failure = match try_deserialize(&value) {
            Ok(mut spec) => {
                spec.fill_names();
                out.spec = Some(spec);
                return out;
            }
            Err(f) => f,
        };
        let (path, message) = locate(&value, failure);
        if seen.contains(&(path.clone(), message.clone())) {
            // The repairs go round in circles: stop with what was found.
            return out;
        }
        seen.push((path.clone(), message.clone()));
        if !out.is_patched(&path) {
            out.problems.push(RawProblem {
                path: path.clone(),
                message: friendly(&path, &message),
            });
        }
        if !repair(&mut value, &path, &message, &mut out.patched) {
            return out;
        }
    }
    out
}

/// Points an error at the field it is about: serde reports an unknown or
/// missing field at the enclosing mapping.
fn locate(value: &Value, failure: Failure) -> (YamlPath, String) {
    let Failure { path, message } = failure;
    if let Some(field) = quoted_after(&message, "unknown field `") {
        if path.last() != Some(&Seg::Key(field.clone())) {
            // serde may already be inside the unknown field's value.
            let field_path = path.key(field.clone());
            if node(value, &field_path).is_some() {
                return (field_path, message);
            }
            let parent = path.parent();
            if node(value, &parent.key(field.clone())).is_some() {
                return (parent.key(field), message);
            }
        }
    }
    (path, message)
}

/// The tag fields of the spec's internally tagged enums (`type: bind`, `mode: fixed`).
const TAG_FIELDS: [&str; 2] = ["type", "mode"];

/// Makes the error at `path` go away. Returns false when that is not possible.
fn repair(value: &mut Value, path: &YamlPath, message: &str, patched: &mut Vec<YamlPath>) -> bool {
    let before = (path.clone(), message.to_string());
    if message.starts_with("unknown field `") {
        return remove(value, path);
    }
    if let Some(field) = quoted_after(message, "missing field `") {
        patched.push(path.clone());
        let target = path.key(field);
        return first_working(value, &target, &before, placeholders(), true);
    }
    // An unknown enum word: use the first accepted one instead.
    if let (Some(bad), Some(good)) = (
        quoted_after(message, "unknown variant `"),
        quoted_after(message, "expected one of `").or_else(|| quoted_after(message, "expected `")),
    ) {
        let target = match node(value, path) {
            // serde reported the enclosing mapping: find the field holding the word.
            Some(Value::Mapping(m)) => m
                .iter()
                .find(|(_, v)| v.as_str() == Some(bad.as_str()))
                .and_then(|(k, _)| k.as_str())
                .map(|k| path.key(k)),
            _ => Some(path.clone()),
        };
        if let Some(target) = target {
            // A new tag changes which fields the mapping needs: its other
            // problems are consequences of the placeholder.
            let is_tag =
                matches!(target.last(), Some(Seg::Key(k)) if TAG_FIELDS.contains(&k.as_str()));
            patched.push(if is_tag {
                target.parent()
            } else {
                target.clone()
            });
            if first_working(value, &target, &before, vec![Value::String(good)], false) {
                return true;
            }
        }
    }
    patched.push(path.clone());
    if first_working(value, path, &before, placeholders(), false) {
        return true;
    }
    // Removing an optional field lets its default apply.
    let mut trial = value.clone();
    if remove(&mut trial, path) && progressed(&trial, path, &before) {
        *value = trial;
        return true;
    }
    false
}

/// Neutral values tried in turn in place of a bad or missing node.
fn placeholders() -> Vec<Value> {
    vec![
        Value::Null,
        Value::String(String::new()),
        Value::Number(1.into()),
        Value::Bool(false),
        Value::Mapping(Mapping::new()),
        Value::Sequence(Vec::new()),
    ]
}

/// Sets `target` to the first candidate that moves deserialization past `before`.
fn first_working(
    value: &mut Value,
    target: &YamlPath,
    before: &(YamlPath, String),
    candidates: Vec<Value>,
    insert: bool,
) -> bool {
    for candidate in candidates {
        let mut trial = value.clone();
        if !set(&mut trial, target, candidate, insert) {
            return false;
        }
        if progressed(&trial, target, before) {
            *value = trial;
            return true;
        }
        // A placeholder word for an enum: use the first word the enum accepts.
        if let Err(f) = try_deserialize(&trial) {
            if let Some(good) = quoted_after(&f.message, "expected one of `")
                .or_else(|| quoted_after(&f.message, "expected `"))
            {
                if f.message.starts_with("unknown variant ``")
                    && set(&mut trial, target, Value::String(good), insert)
                    && progressed(&trial, target, before)
                {
                    *value = trial;
                    return true;
                }
            }
        }
    }
    false
}

/// Whether `trial`, where the node at `target` was changed to get past the
/// error `before`, deserializes or fails for a reason the change did not cause.
fn progressed(trial: &Value, target: &YamlPath, before: &(YamlPath, String)) -> bool {
    let Err(f) = try_deserialize(trial) else {
        return true;
    };
    let (path, message) = locate(trial, f);
    if (path.clone(), message.clone()) == *before {
        return false;
    }
    // The new value itself is wrong (a placeholder that is a mapping may
    // still lack fields: that is progress, the next round fills them in).
    if path == *target && !message.starts_with("missing field") {
        return false;
    }
    // Paths inside tagged enums stop at the enum: a type error at an
    // enclosing node may be the new value's fault too.
    if target.starts_with(&path) && is_type_error(&message) {
        return false;
    }
    // Removing the node made a required field go missing.
    if let (Some(Seg::Key(k)), Some(missing)) =
        (target.last(), quoted_after(&message, "missing field `"))
    {
        if *k == missing && path == target.parent() {
            return false;
        }
    }
    true
}

fn is_type_error(message: &str) -> bool {
    message.starts_with("invalid type")
        || message.starts_with("invalid value")
        || message.starts_with("unknown variant")
}

/// The text between `prefix` and the next backtick, e.g. a field name.
fn quoted_after(message: &str, prefix: &str) -> Option<String> {
    let start = message.find(prefix)? + prefix.len();
    let rest = &message[start..];
    let end = rest.find('`')?;
    Some(rest[..end].to_string())
}

/// The node at `path`, if present.
pub(crate) fn node<'v>(value: &'v Value, path: &YamlPath) -> Option<&'v Value> {
    let mut cur = value;
    for seg in &path.0 {
        cur = match (seg, cur) {
            (Seg::Key(k), Value::Mapping(m)) => m.get(k.as_str())?,
            (Seg::Index(i), Value::Sequence(s)) => s.get(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn node_mut<'v>(value: &'v mut Value, path: &YamlPath) -> Option<&'v mut Value> {
    let mut cur = value;
    for seg in &path.0 {
        cur = match (seg, cur) {
            (Seg::Key(k), Value::Mapping(m)) => m.get_mut(k.as_str())?,
            (Seg::Index(i), Value::Sequence(s)) => s.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Removes the mapping entry at `path`.
fn remove(value: &mut Value, path: &YamlPath) -> bool {
    let Some(Seg::Key(key)) = path.last() else {
        return false;
    };
    match node_mut(value, &path.parent()) {
        Some(Value::Mapping(m)) => m.remove(key.as_str()).is_some(),
        _ => false,
    }
}

/// Replaces the node at `path` (or inserts it into its mapping when `insert`).
fn set(value: &mut Value, path: &YamlPath, new: Value, insert: bool) -> bool {
    if insert {
        let Some(Seg::Key(key)) = path.last() else {
            return false;
        };
        let parent = node_mut(value, &path.parent());
        if let Some(slot @ Value::Null) = parent {
            // A null placeholder read as an empty mapping: make it a real one.
            *slot = Value::Mapping(Mapping::new());
        }
        return match node_mut(value, &path.parent()) {
            Some(Value::Mapping(m)) => {
                m.insert(Value::String(key.clone()), new);
                true
            }
            _ => false,
        };
    }
    match node_mut(value, path) {
        Some(slot) => {
            *slot = new;
            true
        }
        None => false,
    }
}

/// Rewrites serde's wording where a clearer one is known.
fn friendly(path: &YamlPath, message: &str) -> String {
    let field = match path.last() {
        Some(Seg::Key(k)) => k.as_str(),
        _ => "",
    };
    if let Some(field_name) = quoted_after(message, "unknown field `") {
        let allowed: Vec<String> = message
            .split_once(", expected ")
            .map(|(_, e)| {
                e.trim_start_matches("one of ")
                    .replace(" or ", ", ")
                    .split(", ")
                    .map(|w| w.trim_matches('`').to_string())
                    .filter(|w| !w.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let hint = match closest(&field_name, &allowed) {
            Some(near) => format!("; did you mean \"{near}\"?"),
            None if allowed.is_empty() => "; remove it".to_string(),
            None => format!("; use one of: {}", allowed.join(", ")),
        };
        return format!("unknown field \"{field_name}\"{hint}");
    }
    if let (Some(bad), Some(expected)) = (
        quoted_after(message, "unknown variant `"),
        message.split_once("expected ").map(|(_, e)| e),
    ) {
        let words = expected
            .trim_start_matches("one of ")
            .replace(['`'], "")
            .replace(" or ", ", ");
        return format!("unknown value \"{bad}\"; use one of: {words}");
    }
    if message.contains("expected struct ImageSpec") {
        return "image must be a mapping such as { name: \"alpine:3.19\" }".into();
    }
    if let Some(missing) = quoted_after(message, "missing field `") {
        return format!("required field \"{missing}\" is missing");
    }
    if field.ends_with("port") && message.contains("expected u16") {
        let got = quoted_after(message, "integer `").unwrap_or_else(|| "the value".into());
        return format!("{got} is not a port number; use 1-65535");
    }
    for (ty, words) in [
        ("u16", "a whole number 0-65535"),
        ("u32", "a whole number 0-4294967295"),
        ("i64", "a whole number"),
        ("f64", "a number"),
    ] {
        if message.ends_with(&format!("expected {ty}")) {
            return format!("{}{words}", message.trim_end_matches(ty));
        }
    }
    message
        .replace("expected struct ", "expected a mapping: ")
        .replace(
            "expected internally tagged enum ",
            "expected a mapping with a tag field: ",
        )
        .replace("expected a map", "expected a mapping")
}

/// The allowed word nearest to `word`, when it is a likely typo (edit distance <= 2).
fn closest<'a>(word: &str, allowed: &'a [String]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|a| (edit_distance(word, a), a.as_str()))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

/// Levenshtein distance between two short strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typo_suggestions() {
        let allowed: Vec<String> = ["cpu", "memory", "pids_limit"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(closest("memroy", &allowed), Some("memory"));
        assert_eq!(closest("cpus", &allowed), Some("cpu"));
        assert_eq!(closest("volumes", &allowed), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
