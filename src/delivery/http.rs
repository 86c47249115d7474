//! How an HTTP answer or error of any HTTP-based channel maps to a
//! [`SendError`] reason.

use std::time::Duration;

use super::{Reason, SendError};
use crate::greenapi::describe_without_url;

/// Classifies a response status; `Ok` for 2xx.
pub fn check_status(
    status: reqwest::StatusCode,
    retry_after: Option<Duration>,
) -> Result<(), SendError> {
    if status.is_success() {
        return Ok(());
    }
    let code = status.as_u16();
    let reason = match code {
        401 | 403 => Reason::Auth,
        429 => Reason::RateLimited,
        408 => Reason::Timeout,
        400..=499 => Reason::Client,
        500..=599 => Reason::Server,
        _ => Reason::Other,
    };
    Err(SendError {
        reason,
        retry_after,
        detail: format!("HTTP {code}"),
    })
}

/// A transport error, without the URL (it may hold a secret).
pub fn transport_error(err: reqwest::Error) -> SendError {
    let reason = if err.is_timeout() {
        Reason::Timeout
    } else {
        Reason::Other
    };
    SendError::new(reason, describe_without_url(err))
}

/// `Retry-After` in seconds, if the answer has one.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s.min(3600)))
}
