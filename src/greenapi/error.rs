//! One error type for every vendor call. It never carries a request URL (the
//! URL holds the token) nor a response value that could be a code.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("transport error: {0}")]
    Transport(String),
    #[error("request timed out")]
    Timeout,
    #[error("unauthorized (HTTP {status}): check the instance's id and API token")]
    Unauthorized { status: u16 },
    #[error("rate limited by the vendor (HTTP 429)")]
    RateLimited { retry_after: Option<Duration> },
    #[error("plan quota exceeded (HTTP 466)")]
    QuotaExceeded,
    #[error("rejected (HTTP {status}): {text}")]
    Client { status: u16, text: String },
    #[error("vendor server error (HTTP {status})")]
    Server { status: u16 },
    #[error("unexpected response body: {0}")]
    BadBody(&'static str),
}

impl ApiError {
    /// Values of the `outcome` label of `relinkd_api_requests_total` (with `success`).
    pub const OUTCOMES: [&'static str; 9] = [
        "success",
        "transport",
        "timeout",
        "unauthorized",
        "rate_limited",
        "quota",
        "client",
        "server",
        "bad_body",
    ];

    pub fn outcome_index(&self) -> usize {
        match self {
            Self::Transport(_) => 1,
            Self::Timeout => 2,
            Self::Unauthorized { .. } => 3,
            Self::RateLimited { .. } => 4,
            Self::QuotaExceeded => 5,
            Self::Client { .. } => 6,
            Self::Server { .. } => 7,
            Self::BadBody(_) => 8,
        }
    }

    pub fn outcome(&self) -> &'static str {
        Self::OUTCOMES[self.outcome_index()]
    }

    /// Whether the vendor answered that it did not do what was asked (so
    /// nothing happened); otherwise (a timeout, a server error, an
    /// unreadable answer) it may have acted on the request.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::Unauthorized { .. }
                | Self::RateLimited { .. }
                | Self::QuotaExceeded
                | Self::Client { .. }
        )
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }
}
