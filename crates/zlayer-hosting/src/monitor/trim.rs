//! Dropping the monitor's start-up pages from its resident set.
//!
//! Starting the container (libcontainer) maps a few megabytes of code and
//! read-only data of the shim binary, libc and libm (the kernel maps file
//! pages 64 KiB at a time). None of it is used again by the monitor's idle
//! poll loop. `MADV_DONTNEED` on mappings that
//! hold only clean file pages unmaps them from this process; the pages stay
//! in the page cache (shared with every other monitor) and come back on the
//! next access. Writable mappings and mappings with copied-on-write
//! (relocated) pages are never touched, so no data can be lost.

/// One mapping of `/proc/self/smaps` eligible for trimming.
#[derive(Debug, PartialEq, Eq)]
struct Mapping {
    start: usize,
    end: usize,
}

/// The read-only, file-backed, private mappings without any anonymous
/// (copied-on-write) page.
fn trimmable(smaps: &str) -> Vec<Mapping> {
    let mut out = Vec::new();
    let mut current: Option<(Mapping, bool)> = None;
    let flush = |cur: Option<(Mapping, bool)>, out: &mut Vec<Mapping>| {
        if let Some((m, true)) = cur {
            out.push(m);
        }
    };
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-').filter(|_| !first.ends_with(':')) {
            let (Ok(start), Ok(end)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            else {
                continue;
            };
            flush(current.take(), &mut out);
            let perms = fields.next().unwrap_or("");
            let path = fields.nth(3).unwrap_or("");
            let ok = perms.len() == 4
                && perms.as_bytes()[1] == b'-'
                && perms.as_bytes()[3] == b'p'
                && path.starts_with('/');
            current = Some((Mapping { start, end }, ok));
            continue;
        }
        let value: u64 = fields.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        // Copied-on-write pages of a private file mapping count as
        // Anonymous (or Swap once swapped out); other pages, even dirty
        // ones, are page-cache pages and safe to unmap.
        if matches!(first, "Anonymous:" | "Swap:") && value > 0 {
            if let Some((_, ok)) = current.as_mut() {
                *ok = false;
            }
        }
    }
    flush(current.take(), &mut out);
    out
}

/// Unmaps the clean start-up pages (see the module docs). Best effort.
pub fn trim_startup_pages() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    for m in trimmable(&smaps) {
        // SAFETY: the range is a whole, read-only, file-backed private
        // mapping holding no private page, so dropping its page table
        // entries loses nothing: later accesses fault the same file pages
        // back in.
        unsafe {
            libc::madvise(
                m.start as *mut libc::c_void,
                m.end - m.start,
                libc::MADV_DONTNEED,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_only_clean_read_only_file_mappings() {
        let smaps = "\
55d0a0000000-55d0a0100000 r--p 00000000 fe:01 123 /usr/bin/zlayer-shim
Rss:                 100 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
55d0a0100000-55d0a0200000 r-xp 00100000 fe:01 123 /usr/bin/zlayer-shim
Private_Dirty:        12 kB
Anonymous:             0 kB
55d0a0200000-55d0a0210000 r--p 00200000 fe:01 123 /usr/bin/zlayer-shim
Private_Dirty:        64 kB
Anonymous:            64 kB
55d0a0210000-55d0a0220000 rw-p 00210000 fe:01 123 /usr/bin/zlayer-shim
Private_Dirty:         4 kB
7f0000000000-7f0000001000 rw-p 00000000 00:00 0 [heap]
Private_Dirty:         4 kB
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0 [vdso]
Private_Dirty:         0 kB
";
        let m = trimmable(smaps);
        assert_eq!(
            m,
            vec![
                Mapping {
                    start: 0x55d0a0000000,
                    end: 0x55d0a0100000
                },
                Mapping {
                    start: 0x55d0a0100000,
                    end: 0x55d0a0200000
                },
            ]
        );
        // Harmless on this very process.
        trim_startup_pages();
        assert!(!std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .is_empty());
    }
}
