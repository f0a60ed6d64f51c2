//! Linux signal names and numbers (for `stop_signal`).
//!
//! The numbers are those of x86, ARM and most other Linux architectures
//! (`asm-generic/signal.h`); Alpha, MIPS, PA-RISC and SPARC number some
//! signals differently and are not covered.

/// Standard signals 1-31: name without `SIG`, number.
const SIGNALS: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];

/// The number of a signal written as `SIGTERM`, `TERM`, `sigterm` or `15`.
///
/// Names are case-insensitive, with or without the `SIG` prefix; numbers must
/// be 1-31. Returns `None` for anything else (including real-time signals).
pub fn parse_signal(s: &str) -> Option<i32> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i32>() {
        return (1..=31).contains(&n).then_some(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    SIGNALS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, number)| *number)
}

/// The canonical name (`SIGTERM`) of signal `number`, or `None` outside 1-31.
pub fn signal_name(number: i32) -> Option<String> {
    SIGNALS
        .iter()
        .find(|(_, n)| *n == number)
        .map(|(name, _)| format!("SIG{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse_signal("SIGTERM"), Some(15));
        assert_eq!(parse_signal("TERM"), Some(15));
        assert_eq!(parse_signal("sigterm"), Some(15));
        assert_eq!(parse_signal("term"), Some(15));
        assert_eq!(parse_signal("15"), Some(15));
        assert_eq!(parse_signal("SIGKILL"), Some(9));
        assert_eq!(parse_signal("SIGWINCH"), Some(28));
        assert_eq!(parse_signal("1"), Some(1));
        assert_eq!(parse_signal("31"), Some(31));
    }

    #[test]
    fn rejects() {
        for bad in ["", "0", "32", "-15", "SIGFOO", "SIG", "TERMX", "SIGRTMIN"] {
            assert_eq!(parse_signal(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn names_round_trip() {
        for n in 1..=31 {
            let name = signal_name(n).unwrap();
            assert_eq!(parse_signal(&name), Some(n), "{name}");
        }
        assert_eq!(signal_name(15).as_deref(), Some("SIGTERM"));
        assert_eq!(signal_name(0), None);
    }
}
