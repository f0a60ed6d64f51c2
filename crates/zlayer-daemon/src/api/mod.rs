//! The HTTP API: the Docker Engine API (one module per resource) and
//! zlayer's own endpoints, on one router.
//!
//! Docker clients prefix paths with the API version (`/v1.45/containers/json`);
//! [`handle`] strips it (answering 400 for versions outside
//! [`MIN_API_VERSION`]..=[`API_VERSION`]) before routing, so every route is
//! declared once, without the prefix.

pub mod containers;
pub mod error;
pub mod exec;
pub mod hijack;
pub mod images;
pub mod mux;
pub mod params;
pub mod system;
pub mod time;
pub mod zlayer;

use crate::state::AppState;
use axum::body::Body;
use axum::routing::{get, post};
use axum::Router;
use error::ApiError;
use http_body_util::BodyExt;
use hyper::{Request, Response};
use std::convert::Infallible;
use tower::ServiceExt;

/// The Docker API version this daemon speaks.
pub const API_VERSION: &str = "1.45";
/// The oldest Docker API version it accepts.
pub const MIN_API_VERSION: &str = "1.24";

/// The router with every endpoint (paths without the version prefix).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/_ping", get(system::ping).head(system::ping_head))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .merge(containers::routes())
        .route("/containers/{id}/exec", post(exec::create))
        .route("/exec/{id}/start", post(exec::start))
        .route("/exec/{id}/resize", post(exec::resize))
        .route("/exec/{id}/json", get(exec::inspect))
        .merge(images::routes())
        .merge(zlayer::routes())
        .fallback(not_found)
        .with_state(state)
}

async fn not_found(req: Request<Body>) -> ApiError {
    ApiError::not_found(format!(
        "page not found: {} {} is not part of the API this daemon serves",
        req.method(),
        req.uri().path()
    ))
}

fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (major, minor) = v.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Splits `/v1.45/rest` into (`1.45`, `/rest`).
fn split_version(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/v")?;
    let end = rest.find('/').unwrap_or(rest.len());
    let version = &rest[..end];
    parse_version(version)?;
    let tail = &rest[end..];
    Some((version, if tail.is_empty() { "/" } else { tail }))
}

/// Serves one request: strips and checks the version prefix, then routes.
pub async fn handle<B>(router: Router, req: Request<B>) -> Result<Response<Body>, Infallible>
where
    B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (mut parts, body) = req.into_parts();
    if let Some((version, rest)) = split_version(parts.uri.path()) {
        let v = parse_version(version);
        if v > parse_version(API_VERSION) {
            return Ok(ApiError::bad_request(format!(
                "client version {version} is too new. Maximum supported API version is {API_VERSION}"
            ))
            .into_response_body());
        }
        if v < parse_version(MIN_API_VERSION) {
            return Ok(ApiError::bad_request(format!(
                "client version {version} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
            ))
            .into_response_body());
        }
        let pq = match parts.uri.query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest.to_string(),
        };
        match pq.parse() {
            Ok(uri) => parts.uri = uri,
            Err(e) => {
                return Ok(
                    ApiError::bad_request(format!("bad request path: {e}")).into_response_body()
                )
            }
        }
    }
    let body = Body::new(body.map_err(|e| axum::Error::new(e.into())));
    router.oneshot(Request::from_parts(parts, body)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_prefixes() {
        assert_eq!(
            split_version("/v1.45/containers/json"),
            Some(("1.45", "/containers/json"))
        );
        assert_eq!(split_version("/v1.24/_ping"), Some(("1.24", "/_ping")));
        assert_eq!(split_version("/v1.45"), Some(("1.45", "/")));
        assert_eq!(split_version("/version"), None);
        assert_eq!(split_version("/volumes"), None);
        assert!(parse_version("1.50") > parse_version(API_VERSION));
        assert!(parse_version("1.9") < parse_version(MIN_API_VERSION));
    }
}
