//! Bearer tokens on the admin listener: the admin API's and the forwarded
//! webhooks'. Compared as SHA-256 digests in constant time, so neither the
//! token's length nor its first differing byte shows in the answer's time.

use axum::Json;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

/// Whether `headers` carry `Authorization: Bearer <expected>` (the scheme
/// in any case: RFC 7235 makes it case-insensitive).
pub fn matches(headers: &HeaderMap, expected: &SecretString) -> bool {
    let expected = Sha256::digest(expected.expose_secret().as_bytes());
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .map(|t| Sha256::digest(t.as_bytes()))
        .is_some_and(|given| bool::from(given.ct_eq(&expected)))
}

/// The token of a `Bearer` credential: the scheme, one or more spaces, the
/// token; `None` for another scheme or none.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn the_scheme_is_matched_in_any_case_and_the_token_exactly() {
        let token = SecretString::from("s3cret-Token");
        for value in [
            "Bearer s3cret-Token",
            "bearer s3cret-Token",
            "BEARER s3cret-Token",
            "bEaReR   s3cret-Token ",
        ] {
            assert!(matches(&with(value), &token), "{value:?}");
        }
        for value in [
            "Bearer s3cret-token",
            "Basic s3cret-Token",
            "Bearers3cret-Token",
            "Bearer",
            "s3cret-Token",
            "Token s3cret-Token",
        ] {
            assert!(!matches(&with(value), &token), "{value:?}");
        }
        assert!(!matches(&HeaderMap::new(), &token));
    }
}
