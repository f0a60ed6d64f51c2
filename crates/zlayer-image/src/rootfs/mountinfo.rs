//! Reading `/proc/self/mountinfo`.

use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};

/// Decodes the octal escapes (`\040` etc.) mountinfo uses in paths.
fn unescape(s: &str) -> PathBuf {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// All mount points of this process's mount namespace.
fn mount_points() -> Result<Vec<PathBuf>> {
    let text =
        std::fs::read_to_string("/proc/self/mountinfo").ctx("read", "/proc/self/mountinfo")?;
    Ok(text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .collect())
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Whether `path` is a mount point.
pub fn is_mountpoint(path: &Path) -> Result<bool> {
    let p = canonical(path);
    Ok(mount_points()?.contains(&p))
}

/// Mount points at or below `path` (to check that nothing was left mounted).
pub fn mounts_under(path: &Path) -> Result<Vec<PathBuf>> {
    let p = canonical(path);
    Ok(mount_points()?
        .into_iter()
        .filter(|m| m.starts_with(&p))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::unescape;
    use std::path::Path;

    #[test]
    fn octal_escapes_are_decoded() {
        assert_eq!(unescape(r"/a\040b/c\134d"), Path::new("/a b/c\\d"));
        assert_eq!(unescape(r"/plain\04"), Path::new(r"/plain\04"));
    }
}
