//! An answer of the simulated vendor, before it becomes an HTTP response.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An answer, before it becomes an HTTP response.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    body: ReplyBody,
    pub(crate) retry_after: Option<u64>,
}

#[derive(Debug, Clone)]
enum ReplyBody {
    Json(Value),
    Text(String),
    RawJson(&'static str),
}

impl Reply {
    pub(crate) fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            body: ReplyBody::Json(body),
            retry_after: None,
        }
    }

    pub(crate) fn text(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            body: ReplyBody::Text(body.into()),
            retry_after: None,
        }
    }

    /// A body served as JSON but sent verbatim (possibly not valid JSON).
    pub(crate) fn raw_json(status: u16, body: &'static str) -> Self {
        Self {
            status,
            body: ReplyBody::RawJson(body),
            retry_after: None,
        }
    }

    pub(crate) fn too_many_requests() -> Self {
        Self::json(429, json!({"error": "Too Many Requests"}))
    }

    pub(crate) fn unauthorized() -> Self {
        Self::json(401, json!({"error": "Unauthorized"}))
    }

    pub(crate) fn forbidden() -> Self {
        Self::json(403, json!({"error": "Forbidden"}))
    }

    /// The status actually sent (an invalid code is served as 500).
    pub(crate) fn served_status(&self) -> u16 {
        self.status_code().as_u16()
    }

    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let (content_type, body) = match self.body {
            ReplyBody::Json(v) => ("application/json", Body::from(v.to_string())),
            ReplyBody::RawJson(s) => ("application/json", Body::from(s)),
            ReplyBody::Text(s) => ("text/plain; charset=utf-8", Body::from(s)),
        };
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
