//! Bearer tokens on the admin listener: the admin API's and the forwarded
//! webhooks'. Compared as SHA-256 digests in constant time, so neither the
//! token's length nor its first differing byte shows in the answer's time.

use axum::Json;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

/// Whether `headers` carry `Authorization: Bearer <expected>`.
pub fn matches(headers: &HeaderMap, expected: &SecretString) -> bool {
    let expected = Sha256::digest(expected.expose_secret().as_bytes());
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| Sha256::digest(t.trim().as_bytes()))
        .is_some_and(|given| bool::from(given.ct_eq(&expected)))
}

/// 401 with `WWW-Authenticate: Bearer` and `message`.
pub fn refused(message: &str) -> Response {
    let mut response = (
        StatusCode::UNAUTHORIZED,
        Json(serde_json::json!({ "error": message })),
    )
        .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        "Bearer".parse().expect("valid header"),
    );
    response
}
