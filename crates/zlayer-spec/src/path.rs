//! YAML paths such as `services.web.storage[1].target`.

use std::fmt;

/// One step of a YAML path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Seg {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// A path from the document root to a node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct YamlPath(pub(crate) Vec<Seg>);

impl YamlPath {
    /// The root path.
    pub(crate) fn root() -> Self {
        YamlPath(Vec::new())
    }

    /// This path extended by a key.
    pub(crate) fn key(&self, key: impl Into<String>) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.into()));
        YamlPath(segs)
    }

    /// This path extended by an index.
    pub(crate) fn index(&self, index: usize) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        YamlPath(segs)
    }

    /// Whether `self` is `prefix` or lies under it.
    pub(crate) fn starts_with(&self, prefix: &YamlPath) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// The path without its last step (the root stays the root).
    pub(crate) fn parent(&self) -> YamlPath {
        let mut segs = self.0.clone();
        segs.pop();
        YamlPath(segs)
    }

    /// The last step, if any.
    pub(crate) fn last(&self) -> Option<&Seg> {
        self.0.last()
    }
}

impl fmt::Display for YamlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(n) => write!(f, "[{n}]")?,
                Seg::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    let plain = !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
                    if plain {
                        f.write_str(k)?;
                    } else {
                        write!(f, "{k:?}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display() {
        let p = YamlPath::root()
            .key("services")
            .key("web")
            .key("storage")
            .index(1)
            .key("target");
        assert_eq!(p.to_string(), "services.web.storage[1].target");
        let l = YamlPath::root().key("labels").key("com.zlayer.isolation");
        assert_eq!(l.to_string(), "labels.\"com.zlayer.isolation\"");
        assert!(p.starts_with(&YamlPath::root().key("services")));
        assert_eq!(p.parent().parent().to_string(), "services.web.storage");
    }
}
