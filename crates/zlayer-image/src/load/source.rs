//! Uniform access to the files of a layout directory or archive.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::content::ContentStore;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::unpack::Compression;

/// Archive members up to this size that are not blobs are kept in memory.
const SMALL: u64 = 8 * 1024 * 1024;

pub(super) enum Member {
    Small(Vec<u8>),
    Blob(Digest, u64),
    Link(String),
}

/// Files of a layout directory or of a scanned archive.
pub(super) enum Source {
    Dir(PathBuf),
    Tar {
        path: PathBuf,
        members: HashMap<String, Member>,
    },
}

fn load_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Load {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Strips `./` and leading slashes; `None` for names with `..`.
fn clean(name: &str) -> Option<String> {
    let mut parts = Vec::new();
    for p in name.split('/') {
        match p {
            "" | "." => {}
            ".." => return None,
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// Resolves `target` of a symlink at `at` to a member name.
fn join_link(at: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return clean(target);
    }
    let mut parts: Vec<&str> = at.split('/').collect();
    parts.pop();
    for p in target.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

fn blob_name(name: &str) -> Option<Digest> {
    name.strip_prefix("blobs/sha256/")
        .and_then(|h| Digest::from_hex(h).ok())
}

impl Source {
    pub(super) fn dir(path: &Path) -> Self {
        Source::Dir(path.to_path_buf())
    }

    /// Reads the whole archive once: blobs go straight into the content
    /// store (verified), small files into memory.
    pub(super) fn scan_tar(content: &ContentStore, path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| load_err(path, format!("cannot open: {e}")))?;
        let (_kind, reader) =
            Compression::decoder(file).map_err(|e| load_err(path, e.to_string()))?;
        let mut archive = tar::Archive::new(reader);
        let mut members = HashMap::new();
        let entries = archive
            .entries()
            .map_err(|e| load_err(path, format!("not a tar archive: {e}")))?;
        for entry in entries {
            let mut entry =
                entry.map_err(|e| load_err(path, format!("corrupt tar archive: {e}")))?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let Some(name) = clean(&raw) else {
                return Err(load_err(
                    path,
                    format!("archive member {raw:?} has a `..` component"),
                ));
            };
            let kind = entry.header().entry_type();
            if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                let resolved = if kind.is_symlink() {
                    join_link(&name, &target)
                } else {
                    clean(&target)
                };
                let Some(resolved) = resolved else {
                    return Err(load_err(
                        path,
                        format!("archive link {raw:?} points outside the archive"),
                    ));
                };
                members.insert(name, Member::Link(resolved));
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            let size = entry.size();
            let member = if let Some(d) = blob_name(&name) {
                let mut ingest = content.begin_ingest(&d, Some(size))?;
                if !ingest.is_complete() {
                    ingest.restart()?;
                    let mut buf = vec![0u8; 256 * 1024];
                    loop {
                        let n = entry
                            .read(&mut buf)
                            .map_err(|e| load_err(path, format!("reading {raw:?}: {e}")))?;
                        if n == 0 {
                            break;
                        }
                        ingest.write_all(&buf[..n])?;
                    }
                    ingest.commit()?;
                }
                Member::Blob(d, size)
            } else if size <= SMALL {
                let mut v = Vec::with_capacity(size as usize);
                entry
                    .read_to_end(&mut v)
                    .map_err(|e| load_err(path, format!("reading {raw:?}: {e}")))?;
                Member::Small(v)
            } else {
                let (d, n) = content.put_stream(&mut entry)?;
                Member::Blob(d, n)
            };
            members.insert(name, member);
        }
        Ok(Source::Tar {
            path: path.to_path_buf(),
            members,
        })
    }

    fn resolve<'a>(members: &'a HashMap<String, Member>, name: &str) -> Option<&'a Member> {
        let mut name = clean(name)?;
        for _ in 0..16 {
            match members.get(&name)? {
                Member::Link(t) => name = t.clone(),
                m => return Some(m),
            }
        }
        None
    }

    pub(super) fn has(&self, name: &str) -> bool {
        match self {
            Source::Dir(d) => clean(name).is_some_and(|n| d.join(n).is_file()),
            Source::Tar { members, .. } => Self::resolve(members, name).is_some(),
        }
    }

    fn path(&self) -> &Path {
        match self {
            Source::Dir(d) => d,
            Source::Tar { path, .. } => path,
        }
    }

    /// Reads a small file (JSON documents).
    pub(super) fn read(&self, content: &ContentStore, name: &str) -> Result<Vec<u8>> {
        let missing = || load_err(self.path(), format!("member {name:?} is missing"));
        match self {
            Source::Dir(d) => {
                let n = clean(name).ok_or_else(missing)?;
                let p = d.join(n);
                let m = std::fs::symlink_metadata(&p).map_err(|_| missing())?;
                if m.len() > SMALL * 8 {
                    return Err(load_err(
                        self.path(),
                        format!("{name:?} is too large for a JSON document"),
                    ));
                }
                std::fs::read(&p)
                    .map_err(|e| load_err(self.path(), format!("reading {name:?}: {e}")))
            }
            Source::Tar { members, .. } => {
                match Self::resolve(members, name).ok_or_else(missing)? {
                    Member::Small(v) => Ok(v.clone()),
                    Member::Blob(d, _) => content.read_blob(d),
                    Member::Link(_) => Err(missing()),
                }
            }
        }
    }

    /// Makes sure member `name` is in the content store; verifies it against
    /// `expected` when given. Returns its digest and size.
    pub(super) fn import(
        &self,
        content: &ContentStore,
        name: &str,
        expected: Option<(&Digest, u64)>,
    ) -> Result<(Digest, u64)> {
        let missing = || load_err(self.path(), format!("member {name:?} is missing"));
        let (d, size) = match self {
            Source::Dir(dir) => {
                let n = clean(name).ok_or_else(missing)?;
                let p = dir.join(n);
                if !p.is_file() {
                    return Err(missing());
                }
                match expected {
                    Some((d, size)) => {
                        content.import_file(&p, d, Some(size))?;
                        (d.clone(), size)
                    }
                    None => {
                        let f = File::open(&p)
                            .map_err(|e| load_err(self.path(), format!("opening {name:?}: {e}")))?;
                        content.put_stream(f)?
                    }
                }
            }
            Source::Tar { members, .. } => {
                match Self::resolve(members, name).ok_or_else(missing)? {
                    Member::Small(v) => {
                        let d = Digest::of(v);
                        content.put_blob(&d, v)?;
                        (d, v.len() as u64)
                    }
                    Member::Blob(d, s) => (d.clone(), *s),
                    Member::Link(_) => return Err(missing()),
                }
            }
        };
        if let Some((want, want_size)) = expected {
            if &d != want {
                return Err(Error::DigestMismatch {
                    what: format!("{name} in {}", self.path().display()),
                    expected: want.to_string(),
                    actual: d.to_string(),
                });
            }
            if size != want_size {
                return Err(Error::SizeMismatch {
                    what: format!("{name} in {}", self.path().display()),
                    expected: want_size,
                    actual: size,
                });
            }
        }
        Ok((d, size))
    }
}

#[cfg(test)]
mod tests {
    use super::{clean, join_link};

    #[test]
    fn member_names_are_normalised_and_links_resolved() {
        assert_eq!(clean("./a//b/").as_deref(), Some("a/b"));
        assert_eq!(clean("/manifest.json").as_deref(), Some("manifest.json"));
        assert_eq!(clean("a/../b"), None);
        // `docker save` dedupes layers with relative symlinks.
        assert_eq!(
            join_link("abc/layer.tar", "../def/layer.tar").as_deref(),
            Some("def/layer.tar")
        );
        assert_eq!(join_link("abc/layer.tar", "../../etc/passwd"), None);
    }
}
