//! How a failed command's error is shown: its message and every cause in
//! its chain, each said once.
//!
//! Many error types put their source's text into their own message (`write
//! PATH: No space left on device`) and also return it from
//! [`std::error::Error::source`]; printing the whole chain would then say
//! the cause twice. A cause whose text is already in what was printed is
//! skipped, which keeps the output right for every error type at once.

/// The one line `zlayer` prints for a failed command (after `zlayer: `).
pub fn error_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::error_line;

    /// An error that says its source in its message and returns it too.
    #[derive(Debug)]
    struct Wrapped(std::io::Error);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "write /data/x.partial: {}", self.0)
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    fn enospc() -> std::io::Error {
        std::io::Error::from_raw_os_error(28)
    }

    #[test]
    fn a_source_already_in_the_message_is_said_once() {
        let err = anyhow::Error::new(Wrapped(enospc()));
        let line = error_line(&err);
        assert_eq!(line.matches("No space left on device").count(), 1, "{line}");
        assert!(line.starts_with("write /data/x.partial: "), "{line}");
    }

    #[test]
    fn context_and_a_separate_cause_are_both_shown() {
        let err = anyhow::Error::new(enospc()).context("loading big.tar");
        assert_eq!(
            error_line(&err),
            "loading big.tar: No space left on device (os error 28)"
        );
    }
}
