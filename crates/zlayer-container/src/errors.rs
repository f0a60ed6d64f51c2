//! Turning libcontainer's nested errors into one readable line.

/// `outer: inner: innermost`, skipping parts already contained in the text.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        let s = e.to_string();
        if !s.is_empty() && !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = e.source();
    }
    parts.join(": ")
}

/// The most useful sentence of a libcontainer create/start failure.
pub fn user_message(chain: &str) -> String {
    // The init's own message (e.g. "executable 'x' not found in $PATH") is
    // the last part; the rest is libcontainer's plumbing.
    for needle in [
        "not found in $PATH",
        "does not have correct permissions",
        "failed to chdir",
    ] {
        if let Some(pos) = chain.find(needle) {
            let start = chain[..pos].rfind(": ").map(|p| p + 2).unwrap_or(0);
            let end = chain[pos..]
                .find(": ")
                .map(|p| pos + p)
                .unwrap_or(chain.len());
            return chain[start..end].trim().to_string();
        }
    }
    chain.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_sentence() {
        let c = "failed to create container: error in executing process : executable 'nope' not found in $PATH";
        assert_eq!(user_message(c), "executable 'nope' not found in $PATH");
        assert_eq!(user_message("other failure"), "other failure");
    }
}
