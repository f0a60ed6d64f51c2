//! Image references (`alpine`, `alpine:3.19`, `localhost:5000/a/b@sha256:...`).

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::{Error, Result};

/// The registry that unqualified names (`alpine`) refer to.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The tag implied when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";

/// A parsed image reference.
///
/// Follows the Docker reference grammar: an optional registry host (the first
/// path component when it contains `.` or `:` or is `localhost`), a repository
/// path of lowercase components, an optional `:tag` and an optional
/// `@sha256:<hex>` digest. Unqualified Docker Hub names get the `library/`
/// namespace, and a reference without tag or digest means `:latest`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses `input`; see the type docs for the grammar.
    pub fn parse(input: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidReference {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        if input.is_empty() {
            return Err(invalid("the reference is empty"));
        }
        if input.len() > 4096 {
            return Err(invalid("the reference is longer than 4096 characters"));
        }
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("it contains whitespace or control characters"));
        }

        let (rest, digest) = match input.split_once('@') {
            Some((rest, d)) => {
                let digest = d.parse::<Digest>().map_err(|e| Error::InvalidReference {
                    input: input.to_string(),
                    reason: e.to_string(),
                })?;
                (rest, Some(digest))
            }
            None => (input, None),
        };

        // A tag is a `:` after the last `/` (a `:` before it is a registry port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let i = last_slash + i;
                (&rest[..i], Some(rest[i + 1..].to_string()))
            }
            None => (rest, None),
        };
        if let Some(tag) = &tag {
            validate_tag(tag).map_err(|r| invalid(&r))?;
        }
        if name.is_empty() {
            return Err(invalid("the repository name is empty"));
        }

        let (registry, path) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                validate_registry(first).map_err(|r| invalid(&r))?;
                (first.to_string(), remainder)
            }
            _ => (DEFAULT_REGISTRY.to_string(), name),
        };
        let registry = match registry.as_str() {
            "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
                DEFAULT_REGISTRY.to_string()
            }
            _ => registry,
        };
        for component in path.split('/') {
            validate_component(component).map_err(|r| invalid(&r))?;
        }
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        if repository.len() > 255 {
            return Err(invalid("the repository path is longer than 255 characters"));
        }
        let tag = match (tag, &digest) {
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (tag, _) => tag,
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The registry host (with port), e.g. `docker.io` or `localhost:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path, e.g. `library/alpine`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag: the one written, `latest` when neither tag nor digest was
    /// written, `None` for a digest-only reference.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The pinned digest, if the reference has `@sha256:...`.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// Whether this reference names the same image as `other` (same canonical form).
    pub fn is_equivalent(&self, other: &Reference) -> bool {
        self == other
    }

    /// Every common way of writing this reference, canonical form first.
    ///
    /// For `alpine` this is `docker.io/library/alpine:latest`,
    /// `docker.io/library/alpine`, `docker.io/alpine:latest`, `docker.io/alpine`,
    /// `library/alpine:latest`, `library/alpine`, `alpine:latest`, `alpine`.
    pub fn equivalent_spellings(&self) -> Vec<String> {
        let mut names = vec![self.name()];
        if self.registry == DEFAULT_REGISTRY {
            names.push(self.repository.clone());
            if let Some(short) = self.repository.strip_prefix("library/") {
                names.insert(1, format!("{DEFAULT_REGISTRY}/{short}"));
                names.push(short.to_string());
            }
        }
        let mut suffixes = Vec::new();
        match (&self.tag, &self.digest) {
            (Some(t), Some(d)) => suffixes.push(format!(":{t}@{d}")),
            (Some(t), None) => {
                suffixes.push(format!(":{t}"));
                if t == DEFAULT_TAG {
                    suffixes.push(String::new());
                }
            }
            (None, Some(d)) => suffixes.push(format!("@{d}")),
            (None, None) => suffixes.push(String::new()),
        }
        let mut out = Vec::new();
        for n in &names {
            for s in &suffixes {
                out.push(format!("{n}{s}"));
            }
        }
        out
    }
}

fn validate_tag(tag: &str) -> std::result::Result<(), String> {
    if tag.is_empty() {
        return Err("the tag after `:` is empty".into());
    }
    if tag.len() > 128 {
        return Err("the tag is longer than 128 characters".into());
    }
    let mut chars = tag.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        return Err(format!(
            "tag {tag:?} may only contain letters, digits, `_`, `.` and `-` and must not start with `.` or `-`"
        ));
    }
    Ok(())
}

fn validate_registry(host: &str) -> std::result::Result<(), String> {
    let (h, port) = match host.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, Some(p)),
        _ => (host, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) || p.parse::<u16>().is_err() {
            return Err(format!(
                "registry port {p:?} is not a number between 0 and 65535"
            ));
        }
    }
    let ok = if h.starts_with('[') && h.ends_with(']') {
        h[1..h.len() - 1]
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
    } else {
        !h.is_empty()
            && h.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
    };
    if ok {
        Ok(())
    } else {
        Err(format!("registry host {h:?} is not a valid host name"))
    }
}

fn validate_component(c: &str) -> std::result::Result<(), String> {
    let bad = || {
        format!(
            "path component {c:?} must be lowercase letters and digits, optionally separated by `.`, `_`, `__` or dashes"
        )
    };
    if c.is_empty() {
        return Err("a path component is empty (double or trailing `/`)".into());
    }
    let bytes = c.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Err(bad());
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        // A separator run: `.`, `_`, `__` or one or more `-`.
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-');
        if !ok {
            return Err(bad());
        }
    }
    Ok(())
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Reference::parse(s)
    }
}

impl fmt::Display for Reference {
    /// The canonical form: `registry/repository[:tag][@digest]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}
