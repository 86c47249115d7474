//! How an HTTP answer or error of any HTTP-based channel maps to a
//! [`SendError`] reason.

use std::time::Duration;

use super::{Reason, SendError};
use crate::outbound::{self, BodyError, MAX_BODY_BYTES};

/// Classifies a response status; `Ok` for 2xx. A 3xx is a failure of its
/// own: channels never follow redirects (a `Location` could send the code
/// elsewhere), and retrying cannot help.
pub fn check_status(
    status: reqwest::StatusCode,
    retry_after: Option<Duration>,
) -> Result<(), SendError> {
    if status.is_success() {
        return Ok(());
    }
    let code = status.as_u16();
    let reason = match code {
        300..=399 => Reason::Redirect,
        401 | 403 => Reason::Auth,
        429 => Reason::RateLimited,
        408 => Reason::Timeout,
        400..=499 => Reason::Client,
        500..=599 => Reason::Server,
        _ => Reason::Other,
    };
    let detail = match reason {
        Reason::Redirect => format!("HTTP {code}: redirects are not followed"),
        _ => format!("HTTP {code}"),
    };
    Err(SendError {
        reason,
        retry_after,
        detail,
    })
}

/// One attempt: POSTs `body` as JSON to `url` (a secret: it never appears
/// in the error), within `timeout`.
pub async fn post_json(
    http: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
    timeout: Duration,
) -> Result<reqwest::Response, SendError> {
    http.post(url)
        .json(body)
        .timeout(timeout)
        .send()
        .await
        .map_err(transport_error)
}

/// A transport error, without the URL (it may hold a secret). Connecting
/// (refused, DNS, TLS), sending and reading the answer failing are
/// `transport`; `other` is what reqwest cannot place.
pub fn transport_error(err: reqwest::Error) -> SendError {
    let reason = if err.is_timeout() {
        Reason::Timeout
    } else if err.is_connect() || err.is_request() || err.is_body() {
        Reason::Transport
    } else {
        Reason::Other
    };
    SendError::new(reason, outbound::describe_without_url(err))
}

/// `Retry-After`, if the answer has one.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    outbound::retry_after(headers)
}

/// The answer's body as text, read up to the cap. What a peer says is only
/// ever quoted in an error, after the channel's redactor has seen it.
pub async fn read_answer(response: reqwest::Response) -> Result<String, SendError> {
    match outbound::read_body(response, MAX_BODY_BYTES).await {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(BodyError::TooLarge) => Err(SendError::new(
            Reason::Other,
            "the answer is larger than 64 KiB (not read)",
        )),
        Err(BodyError::Transport(e)) => Err(transport_error(e)),
    }
}
