//! Docker's error answers: `{"message": "..."}` with the right status.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use hyper::StatusCode;
use zlayer_engine::EngineError;
use zlayer_runtime::{InvokeFailure, RuntimeError};

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The message docker clients print after "Error response from daemon:".
    pub message: String,
    /// Set when a container's or exec's command could not be invoked; sent
    /// as the body's `failure` so zlayer's own client keeps the type (and
    /// docker's 126/127) across the socket.
    pub failure: Option<InvokeFailure>,
}

impl ApiError {
    /// An error with `status`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            failure: None,
        }
    }

    /// A command that could not be invoked. The stock docker CLI picks 127
    /// or 126 from phrases in the message ("executable file not found",
    /// "permission denied"), so the message carries the phrase it needs.
    pub fn invoke(failure: InvokeFailure, message: String) -> Self {
        let phrase = match failure {
            InvokeFailure::CommandNotFound => "executable file not found",
            _ => "permission denied",
        };
        let message = if message.contains(phrase) {
            message
        } else {
            format!("{message} ({phrase})")
        };
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message,
            failure: Some(failure),
        }
    }
    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    /// 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }
    /// 500.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
    /// 501.
    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_IMPLEMENTED, message)
    }
    /// 404 "No such container: X".
    pub fn no_such_container(name: &str) -> Self {
        Self::not_found(format!("No such container: {name}"))
    }
    /// 404 "No such image: X".
    pub fn no_such_image(name: &str) -> Self {
        Self::not_found(format!("No such image: {name}"))
    }

    /// The JSON response.
    pub fn into_response_body(self) -> Response<Body> {
        self.into_response()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "message": self.message });
        if let Some(failure) = self.failure {
            body["failure"] = serde_json::json!(failure);
        }
        let body = body.to_string();
        Response::builder()
            .status(self.status)
            .header("Content-Type", "application/json")
            .body(Body::from(body + "\n"))
            .unwrap_or_else(|_| Response::new(Body::empty()))
    }
}

impl From<RuntimeError> for ApiError {
    fn from(e: RuntimeError) -> Self {
        if let RuntimeError::Invoke { failure, message } = e {
            return ApiError::invoke(failure, message);
        }
        let status = match &e {
            RuntimeError::NotFound { .. } => StatusCode::NOT_FOUND,
            RuntimeError::InvalidSpec(_) => StatusCode::BAD_REQUEST,
            RuntimeError::NotRunning(_) | RuntimeError::WrongState { .. } => StatusCode::CONFLICT,
            RuntimeError::Unsupported { .. } => StatusCode::NOT_IMPLEMENTED,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<zlayer_image::Error> for ApiError {
    fn from(e: zlayer_image::Error) -> Self {
        use zlayer_image::Error as E;
        let status = match &e {
            E::ImageNotFound { .. }
            | E::NotPresentPolicyNever { .. }
            | E::ManifestUnknown { .. } => StatusCode::NOT_FOUND,
            E::InvalidReference { .. } | E::InvalidDigest { .. } | E::Load { .. } => {
                StatusCode::BAD_REQUEST
            }
            E::AuthRequired { .. } | E::AuthFailed { .. } => StatusCode::UNAUTHORIZED,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::NoSuchContainer(name) => ApiError::no_such_container(&name),
            EngineError::NameInUse { name, id } => ApiError::conflict(format!(
                "Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
            )),
            e @ (EngineError::AmbiguousId { .. } | EngineError::InvalidName(_)) => {
                ApiError::bad_request(e.to_string())
            }
            EngineError::InvalidRequest(m) => ApiError::conflict(m),
            EngineError::Runtime(a) => a.into(),
            EngineError::Image(i) => i.into(),
            e => ApiError::internal(e.to_string()),
        }
    }
}

/// What handlers return.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_map_to_docker_statuses() {
        let e: ApiError = EngineError::NoSuchContainer("x".into()).into();
        assert_eq!(
            (e.status, e.message.as_str()),
            (StatusCode::NOT_FOUND, "No such container: x")
        );
        let e: ApiError = EngineError::NameInUse {
            name: "web".into(),
            id: "abc".into(),
        }
        .into();
        assert_eq!(e.status, StatusCode::CONFLICT);
        assert!(e.message.contains("\"/web\" is already in use"));
        let e: ApiError = EngineError::Runtime(RuntimeError::InvalidSpec("bad".into())).into();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e: ApiError = EngineError::Runtime(RuntimeError::container_not_found("a-0")).into();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        let e: ApiError = EngineError::Runtime(RuntimeError::invoke(
            InvokeFailure::CommandNotFound,
            "nope: not found in $PATH",
        ))
        .into();
        assert_eq!(e.failure, Some(InvokeFailure::CommandNotFound));
        assert!(
            e.message.contains("executable file not found"),
            "{}",
            e.message
        );
        let e: ApiError = EngineError::InvalidName("-x".into()).into();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }
}
