//! Signal names and numbers as users type them.

use crate::error::{Result, RuntimeError};

/// Parses a signal given as `TERM`, `SIGTERM`, `sigterm` or `15`.
///
/// Returns the signal number, or [`RuntimeError::InvalidSpec`] naming the bad
/// value and the accepted forms.
pub fn validate_signal(signal: &str) -> Result<i32> {
    zlayer_spec::parse_signal(signal).ok_or_else(|| {
        RuntimeError::InvalidSpec(format!(
            "unknown signal {signal:?}; use a name like TERM, SIGKILL or HUP, or a number from 1 to 31"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_names_numbers_and_prefixes() {
        assert_eq!(validate_signal("TERM").unwrap(), 15);
        assert_eq!(validate_signal("SIGTERM").unwrap(), 15);
        assert_eq!(validate_signal("sigterm").unwrap(), 15);
        assert_eq!(validate_signal("term").unwrap(), 15);
        assert_eq!(validate_signal("15").unwrap(), 15);
        assert_eq!(validate_signal("KILL").unwrap(), 9);
        assert_eq!(validate_signal("SIGHUP").unwrap(), 1);
        assert_eq!(validate_signal("usr1").unwrap(), 10);
        assert_eq!(validate_signal("9").unwrap(), 9);
    }

    #[test]
    fn rejects_unknown() {
        for bad in ["", "SIGFOO", "FOO", "0", "99", "-1", "SIG", "15x"] {
            let err = validate_signal(bad).unwrap_err();
            assert!(
                matches!(&err, RuntimeError::InvalidSpec(m) if m.contains("unknown signal")),
                "{bad:?} gave {err:?}"
            );
        }
    }
}
