//! What every HTTP request relinkd sends (to GREEN-API, to channels, to its
//! own admin API) has in common:
//!
//! - clients never follow redirects: a `Location` could re-post a code or a
//!   token to another origin, or turn a POST into a body-less GET that
//!   answers 200;
//! - an answer's body is read up to a cap, so a broken or hostile peer cannot
//!   make relinkd buffer megabytes (the rest is never read);
//! - `Retry-After` is read in one place, with one cap;
//! - errors are described without their URL, which may hold a secret (a
//!   GREEN-API token, a bot token, a Slack webhook path);
//! - they trust the built-in roots and `[daemon] ca_file`'s certificates,
//!   and go through the environment's proxies ([`Egress`]);
//! - idle connections are kept for reuse, a bounded number per host.

mod egress;

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};

pub use egress::{CaFile, Egress, PROXY_VARIABLES, Proxies, ProxyUrl, ca_certificates};

/// Largest answer body read from any peer. A vendor answer is under 1 KiB,
/// a channel's answer a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A `Retry-After` longer than this is taken as this: a bogus header must not
/// park an instance or a channel for days (or overflow a deadline).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Idle connections the channels' client keeps per host: a channel sends a
/// few messages a second at most (its rate limit), one connection each.
pub const CHANNEL_IDLE_PER_HOST: usize = 8;

/// How long an idle connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Why a client could not be built (the config's checks make this rare: its
/// certificates were read as the client reads them).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client: {0}")]
pub struct ClientError(String);

/// A client for outbound requests: relinkd's user agent, no redirects, the
/// built-in roots and `egress`'s CA certificates, `egress`'s proxies (and
/// no others: the process environment is read through the config), and at
/// most `idle_per_host` idle connections kept per host for reuse.
pub fn client(egress: &Egress, idle_per_host: usize) -> Result<reqwest::Client, ClientError> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("relinkd/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(IDLE_TIMEOUT)
        .pool_max_idle_per_host(idle_per_host)
        .no_proxy();
    let failed = |e: reqwest::Error| ClientError(describe_without_url(e));
    if let Some(ca_file) = &egress.ca_file {
        for der in &ca_file.certificates {
            builder =
                builder.add_root_certificate(reqwest::Certificate::from_der(der).map_err(failed)?);
        }
    }
    for proxy in egress.proxies.reqwest().map_err(failed)? {
        builder = builder.proxy(proxy);
    }
    builder.build().map_err(failed)
}

/// Why an answer's body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// Longer than the cap; what was past it was not read.
    TooLarge,
    /// The connection failed while reading.
    Transport(reqwest::Error),
}

/// Reads `response`'s body, at most `limit` bytes. A longer body (by its
/// `Content-Length`, or as it arrives) is an error and the rest is not read:
/// the connection is dropped.
pub async fn read_body(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `Retry-After` (seconds, or an HTTP date), at most [`MAX_RETRY_AFTER`].
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// A reqwest error and its causes, one line, without the request URL (the
/// Display of a reqwest error includes the URL).
pub fn describe_without_url(err: reqwest::Error) -> String {
    let err = err.without_url();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn retry_after_reads_seconds_and_dates_and_caps_both() {
        assert_eq!(retry_after(&headers("7")), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(&headers("99999999")), Some(MAX_RETRY_AFTER));
        let soon = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        let wait = retry_after(&headers(&soon)).unwrap();
        assert!(wait > Duration::from_secs(100) && wait <= Duration::from_secs(120));
        let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(120));
        assert_eq!(retry_after(&headers(&past)), Some(Duration::ZERO));
        let far = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(86_400 * 30));
        assert_eq!(retry_after(&headers(&far)), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after(&headers("soon")), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }
}
