//! A minimal writer of `newc` cpio archives (the initramfs format).

/// Builds a newc archive in memory.
#[derive(Debug, Default)]
pub struct CpioWriter {
    out: Vec<u8>,
    ino: u32,
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFCHR: u32 = 0o020000;

impl CpioWriter {
    /// An empty archive.
    pub fn new() -> Self {
        CpioWriter::default()
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
        self.ino += 1;
        let name = name.trim_start_matches('/');
        let fields = [
            self.ino,
            mode,
            0,
            0,
            if mode & S_IFDIR != 0 { 2 } else { 1 },
            0,
            data.len() as u32,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0,
        ];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while self.out.len() % 4 != 0 {
            self.out.push(0);
        }
    }

    /// Adds a directory.
    pub fn dir(&mut self, name: &str, perm: u32) {
        self.entry(name, S_IFDIR | (perm & 0o7777), &[], (0, 0));
    }

    /// Adds a regular file.
    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) {
        self.entry(name, S_IFREG | (perm & 0o7777), data, (0, 0));
    }

    /// Adds a character device node.
    pub fn char_device(&mut self, name: &str, perm: u32, major: u32, minor: u32) {
        self.entry(name, S_IFCHR | (perm & 0o7777), &[], (major, minor));
    }

    /// Appends the trailer and returns the archive.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[], (0, 0));
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busybox_cpio_reads_what_we_write() {
        let mut w = CpioWriter::new();
        w.dir("dir", 0o755);
        w.file("dir/hello", 0o644, b"hello world\n");
        w.file("odd", 0o755, b"abc");
        w.char_device("console", 0o600, 5, 1);
        let bytes = w.finish();
        assert_eq!(bytes.len() % 4, 0);
        let tmp = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("busybox")
            .args(["cpio", "-i", "-d"])
            .current_dir(tmp.path())
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        assert!(child.wait().unwrap().success());
        assert_eq!(
            std::fs::read(tmp.path().join("dir/hello")).unwrap(),
            b"hello world\n"
        );
        assert_eq!(std::fs::read(tmp.path().join("odd")).unwrap(), b"abc");
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        let meta = std::fs::metadata(tmp.path().join("odd")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o755);
        assert!(std::fs::metadata(tmp.path().join("console"))
            .unwrap()
            .file_type()
            .is_char_device());
    }
}
