//! Query strings and JSON bodies, read leniently the way docker does:
//! unknown fields are ignored, malformed input is a 400 naming the problem.

use super::error::ApiError;
use serde::de::DeserializeOwned;
use std::collections::HashMap;

/// A query string as key → last value.
#[derive(Debug, Clone, Default)]
pub struct Query(pub HashMap<String, String>);

impl Query {
    /// Parses a raw query string (`None`: empty).
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")))?;
        Ok(Query(pairs.into_iter().collect()))
    }

    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A docker boolean (`1`, `true`, `t`, ...); absent or empty is `default`.
    pub fn flag(&self, key: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(default),
            Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
            Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
            Some(other) => Err(ApiError::bad_request(format!(
                "invalid boolean {other:?} for query parameter {key}; use 1/0 or true/false"
            ))),
        }
    }

    /// An integer parameter (absent or empty: `None`).
    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                ApiError::bad_request(format!("invalid integer {v:?} for query parameter {key}"))
            }),
        }
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Query {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut hyper::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Query::parse(parts.uri.query())
    }
}

/// Decodes a JSON body; an empty body is `T::default()`.
pub fn json_body<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))
}

/// Docker's `filters` parameter: `{"label":["a=b"]}` or `{"label":{"a=b":true}}`.
pub fn filters(q: &Query) -> Result<HashMap<String, Vec<String>>, ApiError> {
    let Some(raw) = q.get("filters").filter(|s| !s.is_empty()) else {
        return Ok(HashMap::new());
    };
    let v: serde_json::Value = serde_json::from_str(raw)
        .map_err(|e| ApiError::bad_request(format!("malformed filters {raw:?}: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError::bad_request(format!("filters {raw:?} must be a JSON object")))?;
    let mut out = HashMap::new();
    for (k, v) in obj {
        let values: Vec<String> = match v {
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            serde_json::Value::Object(m) => m
                .iter()
                .filter(|(_, on)| on.as_bool().unwrap_or(false))
                .map(|(k, _)| k.clone())
                .collect(),
            serde_json::Value::String(s) => vec![s.clone()],
            _ => {
                return Err(ApiError::bad_request(format!(
                    "filter {k:?}: expected a list of strings"
                )))
            }
        };
        out.insert(k.clone(), values);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_ints_and_filters() {
        let q = Query::parse(Some(
            "a=1&b=false&c=&n=12&bad=x&filters=%7B%22label%22%3A%5B%22k%3Dv%22%5D%7D",
        ))
        .unwrap();
        assert!(q.flag("a", false).unwrap());
        assert!(!q.flag("b", true).unwrap());
        assert!(q.flag("c", true).unwrap());
        assert!(q.flag("missing", true).unwrap());
        assert!(q.flag("bad", false).is_err());
        assert_eq!(q.int("n").unwrap(), Some(12));
        assert!(q.int("bad").is_err());
        assert_eq!(filters(&q).unwrap()["label"], vec!["k=v".to_string()]);
        let q = Query::parse(Some(
            "filters=%7B%22status%22%3A%7B%22exited%22%3Atrue%7D%7D",
        ))
        .unwrap();
        assert_eq!(filters(&q).unwrap()["status"], vec!["exited".to_string()]);
        let q = Query::parse(Some("filters=nope")).unwrap();
        assert_eq!(
            filters(&q).unwrap_err().status,
            hyper::StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn bodies() {
        #[derive(serde::Deserialize, Default, Debug)]
        struct B {
            #[serde(default)]
            a: u32,
        }
        assert_eq!(json_body::<B>(b"").unwrap().a, 0);
        assert_eq!(json_body::<B>(br#"{"a":3,"unknown":1}"#).unwrap().a, 3);
        assert_eq!(
            json_body::<B>(b"{nope").unwrap_err().status,
            hyper::StatusCode::BAD_REQUEST
        );
    }
}
