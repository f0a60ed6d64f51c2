//! Safe extraction of one layer tar into a snapshot directory (overlay format).

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{
    chownat, fchmod, fchown, fsetxattr, linkat, lsetxattr, makedev, mkdirat, mknodat, openat,
    statat, symlinkat, unlinkat, utimensat, AtFlags, FileType, Mode, OFlags, Timespec, Timestamps,
    XattrFlags,
};
use rustix::io::Errno;
use rustix::process::{Gid, Uid};
use tar::EntryType;

use super::safe_path::{describe, fd_path, normalize, open_dir};
use crate::error::{Error, Result};

/// Prefix of whiteout file names in layer tars.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of the opaque-directory marker in layer tars.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// The xattr overlayfs reads to treat a directory as opaque.
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Options for [`extract`].
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// Apply the owners recorded in the tar (needs root). Default: true when running as root.
    pub preserve_owner: bool,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            preserve_owner: rustix::process::geteuid().is_root(),
        }
    }
}

/// Counters from one extraction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtractStats {
    /// Tar entries processed.
    pub entries: u64,
    /// Regular files written.
    pub files: u64,
    /// Bytes of regular-file data written.
    pub bytes: u64,
    /// Whiteouts converted to overlay character devices.
    pub whiteouts: u64,
    /// Opaque markers converted to `trusted.overlay.opaque=y`.
    pub opaque_dirs: u64,
}

struct Ctx<'a> {
    layer: &'a str,
    /// The extraction root, for messages.
    dest: &'a Path,
    opts: &'a ExtractOptions,
    root: OwnedFd,
    stats: ExtractStats,
    /// Directories whose mtime is applied after all entries.
    dir_times: Vec<(PathBuf, Timestamps)>,
}

struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: Timestamps,
    xattrs: Vec<(OsString, Vec<u8>)>,
}

/// Extracts the tar stream `reader` into directory `dest`, refusing unsafe entries.
///
/// Whiteouts (`.wh.NAME`) become character devices 0:0 and opaque markers
/// (`.wh..wh..opq`) become `trusted.overlay.opaque=y` on their directory, the
/// format overlayfs expects in a lower directory. Entries with absolute
/// paths, `..` components, paths through symlinks that leave `dest`, or
/// hardlinks to outside are refused with [`Error::UnsafeEntry`] naming the
/// entry; nothing is ever written outside `dest`.
pub fn extract<R: Read>(
    reader: R,
    dest: &Path,
    layer: &str,
    opts: &ExtractOptions,
) -> Result<ExtractStats> {
    let root = rustix::fs::open(
        dest,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )
    .map_err(|e| Error::io("open extraction root", dest, e.into()))?;
    let mut ctx = Ctx {
        layer,
        dest,
        opts,
        root,
        stats: ExtractStats::default(),
        dir_times: Vec::new(),
    };
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|e| unpack_err(layer, format!("reading the tar stream: {e}")))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| unpack_err(layer, format!("reading the tar stream: {e}")))?;
        ctx.stats.entries += 1;
        let raw = entry.path_bytes().into_owned();
        let ename = String::from_utf8_lossy(&raw).into_owned();
        ctx.entry(&mut entry, &raw, &ename)?;
    }
    // Directory mtimes last (deepest first), since creating children changes them.
    let mut dirs = std::mem::take(&mut ctx.dir_times);
    dirs.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
    for (rel, ts) in dirs {
        if let Ok(fd) = open_dir(ctx.root.as_fd(), &rel, false) {
            let _ = utimensat(&fd, ".", &ts, AtFlags::empty());
        }
    }
    Ok(ctx.stats)
}

fn unpack_err(layer: &str, reason: String) -> Error {
    Error::Unpack {
        layer: layer.to_string(),
        reason,
    }
}

impl Ctx<'_> {
    fn unsafe_entry(&self, entry: &str, reason: impl Into<String>) -> Error {
        Error::UnsafeEntry {
            layer: self.layer.to_string(),
            entry: entry.to_string(),
            reason: reason.into(),
        }
    }

    /// The error of a failed step on `entry`. A full disk is an
    /// [`Error::Io`] naming the file that could not be written (it says the
    /// disk is full and what to do).
    fn fail(&self, entry: &str, what: &str, e: impl Into<std::io::Error>) -> Error {
        let e = e.into();
        if crate::error::is_disk_full(&e) {
            let path = self.dest.join(entry.trim_start_matches('/'));
            return Error::io(format!("unpack layer {}: {what}", self.layer), path, e);
        }
        unpack_err(self.layer, format!("entry {entry:?}: {what}: {e}"))
    }

    fn entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        raw: &[u8],
        ename: &str,
    ) -> Result<()> {
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            return Ok(());
        }
        let rel = normalize(raw).map_err(|r| self.unsafe_entry(ename, r))?;
        let meta = self.meta(entry, ename)?;
        let Some(name) = rel.file_name().map(OsStr::to_os_string) else {
            // The archive root itself (`./`): only directory metadata applies.
            if kind.is_dir() {
                let root = self
                    .root
                    .try_clone()
                    .map_err(|e| self.fail(ename, "dup root fd", e))?;
                self.apply_dir_meta(root.as_fd(), Path::new(""), &meta, ename)?;
                return Ok(());
            }
            return Err(self.unsafe_entry(ename, "a non-directory entry names the layer root"));
        };
        let parent_rel = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        let parent = open_dir(self.root.as_fd(), &parent_rel, true)
            .map_err(|e| self.unsafe_entry(ename, describe(e)))?;

        let name_bytes = name.as_bytes();
        if name_bytes.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return self.whiteout(&parent, &name, ename);
        }

        match kind {
            EntryType::Directory => {
                match statat(&parent, &name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {}
                    Ok(_) => self.remove_existing(&parent, &name, ename)?,
                    Err(Errno::NOENT) => {}
                    Err(e) => return Err(self.fail(ename, "stat", e)),
                }
                match mkdirat(&parent, &name, Mode::from_raw_mode(0o700)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(self.fail(ename, "mkdir", e)),
                }
                let fd = openat(
                    &parent,
                    &name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| self.fail(ename, "open directory", e))?;
                self.apply_dir_meta(fd.as_fd(), &rel, &meta, ename)?;
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.remove_existing(&parent, &name, ename)?;
                let fd = openat(
                    &parent,
                    &name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| self.fail(ename, "create file", e))?;
                let mut file = File::from(fd);
                let n = io::copy(entry, &mut file)
                    .map_err(|e| self.fail(ename, "write file data", e))?;
                self.stats.files += 1;
                self.stats.bytes += n;
                self.apply_fd_meta(file.as_fd(), &meta, ename)?;
                utimensat(&parent, &name, &meta.mtime, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| self.fail(ename, "set mtime", e))?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.unsafe_entry(ename, "symlink without a target"))?
                    .into_owned();
                if target.is_empty() || target.contains(&0) {
                    return Err(self.unsafe_entry(ename, "symlink target is empty or contains NUL"));
                }
                self.remove_existing(&parent, &name, ename)?;
                symlinkat(OsStr::from_bytes(&target), &parent, &name)
                    .map_err(|e| self.fail(ename, "create symlink", e))?;
                self.apply_path_meta(&parent, &name, &meta, ename, false)?;
            }
            EntryType::Link => {
                let target_raw = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.unsafe_entry(ename, "hardlink without a target"))?
                    .into_owned();
                let target_display = String::from_utf8_lossy(&target_raw).into_owned();
                let target = normalize(&target_raw).map_err(|r| {
                    self.unsafe_entry(ename, format!("hardlink target {target_display:?}: {r}"))
                })?;
                let Some(tname) = target.file_name() else {
                    return Err(self.unsafe_entry(ename, "hardlink to the layer root"));
                };
                let tparent = open_dir(
                    self.root.as_fd(),
                    target.parent().unwrap_or(Path::new("")),
                    false,
                )
                .map_err(|e| {
                    self.unsafe_entry(
                        ename,
                        format!("hardlink target {target_display:?}: {}", describe(e)),
                    )
                })?;
                if target == rel {
                    return Ok(());
                }
                self.remove_existing(&parent, &name, ename)?;
                linkat(&tparent, tname, &parent, &name, AtFlags::empty()).map_err(|e| match e {
                    Errno::NOENT => self.unsafe_entry(
                        ename,
                        format!("hardlink target {target_display:?} does not exist in this layer"),
                    ),
                    e => self.fail(ename, &format!("hardlink to {target_display:?}"), e),
                })?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (ft, dev) = match kind {
                    EntryType::Char | EntryType::Block => {
                        // Some writers leave the fields blank: treat that as 0.
                        let major = entry.header().device_major().ok().flatten().unwrap_or(0);
                        let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
                        let ft = if kind == EntryType::Char {
                            FileType::CharacterDevice
                        } else {
                            FileType::BlockDevice
                        };
                        (ft, makedev(major, minor))
                    }
                    _ => (FileType::Fifo, 0),
                };
                self.remove_existing(&parent, &name, ename)?;
                mknodat(&parent, &name, ft, Mode::from_raw_mode(0o600), dev)
                    .map_err(|e| self.fail(ename, "mknod", e))?;
                self.apply_path_meta(&parent, &name, &meta, ename, true)?;
            }
            other => {
                tracing::warn!(
                    layer = self.layer,
                    entry = ename,
                    "skipping unsupported tar entry type {other:?}"
                );
            }
        }
        Ok(())
    }

    /// Converts `.wh.NAME` and `.wh..wh..opq` into overlay format.
    fn whiteout(&mut self, parent: &OwnedFd, name: &OsStr, ename: &str) -> Result<()> {
        let name = name.as_bytes();
        if name == OPAQUE_MARKER.as_bytes() {
            fsetxattr(parent, OVERLAY_OPAQUE_XATTR, b"y", XattrFlags::empty())
                .map_err(|e| self.fail(ename, "set trusted.overlay.opaque on the directory", e))?;
            self.stats.opaque_dirs += 1;
            return Ok(());
        }
        if name.starts_with(b".wh..wh.") {
            // AUFS bookkeeping (e.g. `.wh..wh.plnk`): meaningless here.
            return Ok(());
        }
        let target = &name[WHITEOUT_PREFIX.len()..];
        if target.is_empty() || target == b"." || target == b".." {
            return Err(self.unsafe_entry(ename, "whiteout of an empty name, `.` or `..`"));
        }
        let target = OsStr::from_bytes(target);
        self.remove_existing(parent, target, ename)?;
        mknodat(
            parent,
            target,
            FileType::CharacterDevice,
            Mode::empty(),
            makedev(0, 0),
        )
        .map_err(|e| self.fail(ename, "create whiteout device 0:0", e))?;
        self.stats.whiteouts += 1;
        Ok(())
    }

    /// Removes whatever is at `parent/name` (recursively for directories).
    fn remove_existing(&self, parent: &OwnedFd, name: &OsStr, ename: &str) -> Result<()> {
        match unlinkat(parent, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(Errno::ISDIR) | Err(Errno::PERM) => {
                match statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                        std::fs::remove_dir_all(fd_path(parent.as_fd(), name))
                            .map_err(|e| self.fail(ename, "replace existing directory", e))
                    }
                    Ok(_) => Err(self.fail(ename, "replace existing entry", Errno::PERM)),
                    Err(e) => Err(self.fail(ename, "stat existing entry", e)),
                }
            }
            Err(e) => Err(self.fail(ename, "replace existing entry", e)),
        }
    }

    fn meta<R: Read>(&self, entry: &mut tar::Entry<'_, R>, ename: &str) -> Result<Meta> {
        let h = entry.header();
        let mode = h.mode().map_err(|e| self.fail(ename, "mode", e))? & 0o7777;
        // Blank numeric fields (some writers leave them empty) read as 0.
        let mut uid = h.uid().unwrap_or(0);
        let mut gid = h.gid().unwrap_or(0);
        let mut mtime = Timespec {
            tv_sec: h.mtime().unwrap_or(0) as i64,
            tv_nsec: 0,
        };
        let mut xattrs = Vec::new();
        if let Some(pax) = entry
            .pax_extensions()
            .map_err(|e| self.fail(ename, "PAX header", e))?
        {
            for ext in pax {
                let ext = ext.map_err(|e| self.fail(ename, "PAX header", e))?;
                let Ok(key) = ext.key() else { continue };
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    if name.starts_with("trusted.overlay.") {
                        // Never let a layer smuggle in overlay metadata (e.g. redirects).
                        tracing::warn!(layer = self.layer, entry = ename, "dropping xattr {name}");
                        continue;
                    }
                    xattrs.push((OsString::from(name), ext.value_bytes().to_vec()));
                    continue;
                }
                let Ok(value) = ext.value() else { continue };
                match key {
                    "uid" => uid = value.parse().unwrap_or(uid),
                    "gid" => gid = value.parse().unwrap_or(gid),
                    "mtime" => {
                        if let Some(ts) = parse_pax_time(value) {
                            mtime = ts;
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(Meta {
            mode,
            uid,
            gid,
            mtime: Timestamps {
                last_access: mtime,
                last_modification: mtime,
            },
            xattrs,
        })
    }

    fn ids(&self, meta: &Meta, ename: &str) -> Result<(Uid, Gid)> {
        let uid = u32::try_from(meta.uid)
            .ok()
            .filter(|u| *u != u32::MAX)
            .ok_or_else(|| self.unsafe_entry(ename, format!("uid {} is out of range", meta.uid)))?;
        let gid = u32::try_from(meta.gid)
            .ok()
            .filter(|g| *g != u32::MAX)
            .ok_or_else(|| self.unsafe_entry(ename, format!("gid {} is out of range", meta.gid)))?;
        Ok((Uid::from_raw(uid), Gid::from_raw(gid)))
    }

    /// Owner, mode and xattrs through an open fd (files, directories).
    fn apply_fd_meta(&self, fd: BorrowedFd<'_>, meta: &Meta, ename: &str) -> Result<()> {
        if self.opts.preserve_owner {
            let (uid, gid) = self.ids(meta, ename)?;
            fchown(fd, Some(uid), Some(gid)).map_err(|e| self.fail(ename, "chown", e))?;
        }
        // After chown, which clears set-id bits.
        fchmod(fd, Mode::from_raw_mode(meta.mode)).map_err(|e| self.fail(ename, "chmod", e))?;
        for (k, v) in &meta.xattrs {
            match fsetxattr(fd, k.as_os_str(), v, XattrFlags::empty()) {
                Ok(()) => {}
                Err(Errno::NOTSUP) => {
                    tracing::warn!(
                        layer = self.layer,
                        entry = ename,
                        "filesystem does not support xattr {k:?}"
                    )
                }
                Err(e) => return Err(self.fail(ename, &format!("set xattr {k:?}"), e)),
            }
        }
        Ok(())
    }

    fn apply_dir_meta(
        &mut self,
        fd: BorrowedFd<'_>,
        rel: &Path,
        meta: &Meta,
        ename: &str,
    ) -> Result<()> {
        self.apply_fd_meta(fd, meta, ename)?;
        self.dir_times.push((rel.to_path_buf(), meta.mtime.clone()));
        Ok(())
    }

    /// Metadata for entries that cannot be opened (symlinks, devices, fifos).
    fn apply_path_meta(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        meta: &Meta,
        ename: &str,
        chmod: bool,
    ) -> Result<()> {
        if self.opts.preserve_owner {
            let (uid, gid) = self.ids(meta, ename)?;
            chownat(
                parent,
                name,
                Some(uid),
                Some(gid),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| self.fail(ename, "chown", e))?;
        }
        if chmod {
            // The node was just created by us and is not a symlink.
            rustix::fs::chmodat(
                parent,
                name,
                Mode::from_raw_mode(meta.mode),
                AtFlags::empty(),
            )
            .map_err(|e| self.fail(ename, "chmod", e))?;
        }
        for (k, v) in &meta.xattrs {
            match lsetxattr(
                fd_path(parent.as_fd(), name),
                k.as_os_str(),
                v,
                XattrFlags::empty(),
            ) {
                Ok(()) => {}
                Err(Errno::NOTSUP) | Err(Errno::PERM) => {
                    tracing::warn!(
                        layer = self.layer,
                        entry = ename,
                        "cannot set xattr {k:?} on this node type"
                    )
                }
                Err(e) => return Err(self.fail(ename, &format!("set xattr {k:?}"), e)),
            }
        }
        utimensat(parent, name, &meta.mtime, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.fail(ename, "set mtime", e))
    }
}

/// Parses a PAX time (`1700000000.123456789`).
fn parse_pax_time(v: &str) -> Option<Timespec> {
    let (secs, frac) = match v.split_once('.') {
        Some((s, f)) => (s, f),
        None => (v, ""),
    };
    let tv_sec: i64 = secs.parse().ok()?;
    let mut nanos = String::from(frac);
    nanos.truncate(9);
    while nanos.len() < 9 {
        nanos.push('0');
    }
    let tv_nsec: i64 = if frac.is_empty() {
        0
    } else {
        nanos.parse().ok()?
    };
    Some(Timespec { tv_sec, tv_nsec })
}

#[cfg(test)]
mod tests {
    use super::parse_pax_time;

    #[test]
    fn pax_times() {
        let t = parse_pax_time("1700000000.5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (1_700_000_000, 500_000_000));
        let t = parse_pax_time("12").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (12, 0));
        assert!(parse_pax_time("x").is_none());
    }
}
