//! Container ids and names, docker style.

use crate::error::{EngineError, Result};

const ADJECTIVES: &[&str] = &[
    "brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry",
    "nimble", "proud", "quiet", "rapid", "sharp", "tidy", "vivid", "witty", "zen", "bold",
];
const NOUNS: &[&str] = &[
    "otter", "falcon", "badger", "heron", "lynx", "marten", "osprey", "panda", "raven", "stoat",
    "tapir", "walrus", "yak", "zebra", "koala", "gecko", "ibis", "jackal", "lemur", "newt",
];

/// A readable name derived from an id (`brave_otter_3fa2`), as docker does
/// when `--name` is not given.
pub fn generated_name(id: &str) -> String {
    let b = id.as_bytes();
    let pick = |i: usize, n: usize| b.get(i).map(|c| *c as usize % n).unwrap_or(0);
    format!(
        "{}_{}_{}",
        ADJECTIVES[pick(0, ADJECTIVES.len()) ^ (pick(5, 2) % ADJECTIVES.len())],
        NOUNS[pick(1, NOUNS.len())],
        id.get(..4).unwrap_or("0000")
    )
}

/// Checks a user-given name against docker's rule `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn validate_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok_first = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let ok_rest = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    // 63: the name is the state directory's (and a hostname's) stem.
    if ok_first && ok_rest && name.len() <= 63 {
        Ok(())
    } else {
        Err(EngineError::InvalidName(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_hex_and_differ() {
        let a = zlayer_runtime::new_container_id();
        let b = zlayer_runtime::new_container_id();
        assert_eq!(a.len(), 64);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }

    #[test]
    fn names_follow_docker_rules() {
        for good in ["web", "web-1", "a.b_c", "9lives"] {
            validate_name(good).unwrap();
        }
        for bad in ["", "-x", "_x", "a b", "a/b", "é"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        let id = zlayer_runtime::new_container_id();
        validate_name(&generated_name(&id)).unwrap();
    }
}
