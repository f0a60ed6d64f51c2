//! Turning `oci-client` failures into actionable crate errors, and deciding
//! which of them are worth a retry.

use oci_client::errors::{OciDistributionError, OciErrorCode};

use super::retry::status_is_transient;
use crate::Error;

/// What a failed request was after.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'a> {
    /// A manifest or index (by tag or digest).
    Manifest,
    /// A blob with this digest.
    Blob(&'a str),
}

/// Context for error messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    /// Registry as written in the reference (`host[:port]`).
    pub registry: &'a str,
    /// The full reference being pulled.
    pub reference: &'a str,
    /// The user name sent, when credentials were used.
    pub username: Option<&'a str>,
    /// What was being fetched.
    pub target: Target<'a>,
}

/// A classified failure.
#[derive(Debug)]
pub(crate) struct Failure {
    /// The error to report when no retry is left.
    pub error: Error,
    /// Whether retrying may help.
    pub transient: bool,
}

/// The innermost message of an error chain (e.g. "Connection refused (os error 111)").
pub(crate) fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = err;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

impl Ctx<'_> {
    fn auth_error(&self, reason: String) -> Error {
        match self.username {
            Some(u) => Error::AuthFailed {
                registry: self.registry.to_string(),
                username: u.to_string(),
                reason,
            },
            None => Error::AuthRequired {
                registry: self.registry.to_string(),
            },
        }
    }

    fn not_found(&self) -> Error {
        match self.target {
            Target::Manifest => Error::ManifestUnknown {
                reference: self.reference.to_string(),
                registry: self.registry.to_string(),
            },
            Target::Blob(d) => self.other(format!(
                "blob {d} is missing from {} although the manifest lists it; the image in the registry is incomplete",
                self.registry
            )),
        }
    }

    fn other(&self, reason: String) -> Error {
        Error::Registry {
            reference: self.reference.to_string(),
            reason,
        }
    }

    /// A body/stream I/O error during a download (always transient).
    pub(crate) fn stream_failure(&self, err: &std::io::Error) -> Failure {
        Failure {
            error: self.other(format!(
                "download from {} was interrupted: {}",
                self.registry,
                root_cause(err)
            )),
            transient: true,
        }
    }

    /// Classifies an `oci-client` error.
    pub(crate) fn classify(&self, err: OciDistributionError) -> Failure {
        let permanent = |error| Failure {
            error,
            transient: false,
        };
        match err {
            OciDistributionError::UnauthorizedError { .. } => {
                permanent(self.auth_error("the registry answered 401 Unauthorized".into()))
            }
            OciDistributionError::AuthenticationFailure(reason) => {
                permanent(self.auth_error(reason.trim().to_string()))
            }
            OciDistributionError::ImageManifestNotFoundError(_) => permanent(self.not_found()),
            OciDistributionError::RegistryError { envelope, .. } => {
                let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
                let text = envelope
                    .errors
                    .iter()
                    .map(|e| e.message.clone())
                    .collect::<Vec<_>>()
                    .join("; ");
                if codes
                    .iter()
                    .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
                {
                    permanent(self.auth_error(text))
                } else if codes.iter().any(|c| {
                    matches!(
                        c,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::BlobUnknown
                            | OciErrorCode::NotFound
                    )
                }) {
                    permanent(self.not_found())
                } else if codes
                    .iter()
                    .any(|c| matches!(c, OciErrorCode::Toomanyrequests))
                {
                    Failure {
                        error: self.other(format!("{} is rate limiting: {text}", self.registry)),
                        transient: true,
                    }
                } else {
                    permanent(self.other(format!("{} answered: {text}", self.registry)))
                }
            }
            OciDistributionError::ServerError { code, message, .. } => {
                if code == 404 {
                    return permanent(self.not_found());
                }
                if code == 401 || code == 403 {
                    return permanent(self.auth_error(format!("HTTP {code}")));
                }
                let message = message.trim();
                let short: String = message.chars().take(200).collect();
                Failure {
                    error: self.other(format!(
                        "{} answered HTTP {code}{}{short}",
                        self.registry,
                        if short.is_empty() { "" } else { ": " }
                    )),
                    transient: status_is_transient(code),
                }
            }
            OciDistributionError::RequestError(e) => {
                if let Some(status) = e.status() {
                    return self.classify(OciDistributionError::ServerError {
                        code: status.as_u16(),
                        url: String::new(),
                        message: String::new(),
                    });
                }
                let cause = root_cause(&e);
                if e.is_connect() {
                    Failure {
                        error: Error::RegistryUnreachable {
                            registry: self.registry.to_string(),
                            reason: cause,
                        },
                        transient: true,
                    }
                } else {
                    let transient = e.is_timeout() || e.is_request() || e.is_body();
                    Failure {
                        error: self.other(format!("request to {} failed: {cause}", self.registry)),
                        transient,
                    }
                }
            }
            OciDistributionError::IoError(e) => self.stream_failure(&e),
            OciDistributionError::DigestError(
                oci_client::errors::DigestError::VerificationError { expected, actual },
            ) => permanent(Error::DigestMismatch {
                what: match self.target {
                    Target::Manifest => format!("manifest of {}", self.reference),
                    Target::Blob(d) => format!("blob {d}"),
                },
                expected,
                actual,
            }),
            other => permanent(self.other(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(username: Option<&'static str>) -> Ctx<'static> {
        Ctx {
            registry: "127.0.0.1:5000",
            reference: "127.0.0.1:5000/app:1",
            username,
            target: Target::Manifest,
        }
    }

    #[test]
    fn unauthorized_messages() {
        let f = ctx(None).classify(OciDistributionError::UnauthorizedError { url: "u".into() });
        assert!(!f.transient);
        let msg = f.error.to_string();
        assert!(
            msg.contains("authentication required for 127.0.0.1:5000"),
            "{msg}"
        );
        assert!(msg.contains("docker login"), "{msg}");
        let f =
            ctx(Some("bob")).classify(OciDistributionError::UnauthorizedError { url: "u".into() });
        assert!(f.error.to_string().contains("\"bob\""));
    }

    #[test]
    fn not_found_and_server_errors() {
        let f = ctx(None).classify(OciDistributionError::ServerError {
            code: 404,
            url: String::new(),
            message: String::new(),
        });
        let msg = f.error.to_string();
        assert!(
            msg.contains("manifest unknown: 127.0.0.1:5000/app:1 not found in 127.0.0.1:5000"),
            "{msg}"
        );
        let f = ctx(None).classify(OciDistributionError::ServerError {
            code: 503,
            url: String::new(),
            message: "busy".into(),
        });
        assert!(f.transient);
        assert!(f.error.to_string().contains("HTTP 503: busy"));
    }

    #[test]
    fn digest_mismatch_names_both() {
        let f = ctx(None).classify(OciDistributionError::DigestError(
            oci_client::errors::DigestError::VerificationError {
                expected: "sha256:aa".into(),
                actual: "sha256:bb".into(),
            },
        ));
        let msg = f.error.to_string();
        assert!(
            msg.contains("sha256:aa") && msg.contains("sha256:bb"),
            "{msg}"
        );
    }
}
