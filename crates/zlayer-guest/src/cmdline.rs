//! The `zlayer.*` parameters of the kernel command line.

/// What the host told the agent on the kernel command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cmdline {
    /// `zlayer.boottime=SECS[.NANOS]`: the host's wall clock at launch.
    pub boottime: Option<(i64, u32)>,
    /// `zlayer.rootfs=9p|none` (default `9p`): where the root comes from.
    pub rootfs: RootfsSource,
    /// `zlayer.probe=1`: power off at once (accelerator probe).
    pub probe: bool,
    /// `zlayer.hostname=NAME`.
    pub hostname: Option<String>,
    /// `zlayer.debug=1`: print boot timings on the console.
    pub debug: bool,
    /// `zlayer.extra=1`: also load `/lib/modules/extra` (PCI transport,
    /// block and network devices).
    pub extra_modules: bool,
}

/// Where the container root comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RootfsSource {
    /// The 9p share tagged [`zlayer_vm_proto::ROOTFS_TAG`] (default).
    #[default]
    NineP,
    /// Stay on the initramfs (boot tests without an image).
    None,
}

impl Cmdline {
    /// Parses the text of `/proc/cmdline`; unknown words are ignored.
    pub fn parse(text: &str) -> Cmdline {
        let mut c = Cmdline::default();
        for word in text.split_ascii_whitespace() {
            let Some((key, value)) = word.split_once('=') else {
                continue;
            };
            match key {
                "zlayer.boottime" => c.boottime = parse_time(value),
                "zlayer.rootfs" => {
                    c.rootfs = if value == "none" {
                        RootfsSource::None
                    } else {
                        RootfsSource::NineP
                    }
                }
                "zlayer.probe" => c.probe = value == "1",
                "zlayer.debug" => c.debug = value == "1",
                "zlayer.extra" => c.extra_modules = value == "1",
                "zlayer.hostname" if !value.is_empty() => c.hostname = Some(value.to_string()),
                _ => {}
            }
        }
        c
    }
}

/// Parses `SECS` or `SECS.FRACTION` (fraction of up to 9 digits).
fn parse_time(value: &str) -> Option<(i64, u32)> {
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    let secs = secs.parse::<i64>().ok()?;
    if frac.is_empty() {
        return Some((secs, 0));
    }
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos = format!("{frac:0<9}").parse::<u32>().ok()?;
    Some((secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_keys_and_ignores_the_rest() {
        let c = Cmdline::parse(
            "console=ttyS0 quiet zlayer.boottime=1700000000.25 zlayer.rootfs=none zlayer.probe=1 zlayer.hostname=web-1 junk",
        );
        assert_eq!(c.boottime, Some((1_700_000_000, 250_000_000)));
        assert_eq!(c.rootfs, RootfsSource::None);
        assert!(c.probe);
        assert_eq!(c.hostname.as_deref(), Some("web-1"));
        assert!(!c.debug);
    }

    #[test]
    fn bad_times_are_ignored() {
        assert_eq!(Cmdline::parse("zlayer.boottime=abc").boottime, None);
        assert_eq!(
            Cmdline::parse("zlayer.boottime=1.1234567890").boottime,
            None
        );
        assert_eq!(Cmdline::parse("zlayer.boottime=12").boottime, Some((12, 0)));
        assert_eq!(Cmdline::parse("").rootfs, RootfsSource::NineP);
    }
}
