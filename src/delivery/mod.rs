//! Delivery: a [`Channel`] sends one attempt; a notification is the whole
//! retry loop around it (Alertmanager's split, `notify.rs`), bounded by a
//! deadline because a code is useless once it expires, and paced by the
//! channel's rate limit. Each channel type is a folder holding its config
//! (keys, checks, default rate limit, `build()`) and its sending; `kinds.rs`
//! lists the types.

/// `impl Channel` for a channel type with `name`, `timeout` and `redactor`
/// fields and an `async fn attempt(&self, &Notification) -> Result<(), SendError>`.
macro_rules! channel_from_attempt {
    ($ty:ty) => {
        impl $crate::delivery::Channel for $ty {
            fn name(&self) -> &str {
                &self.name
            }

            fn redactor(&self) -> &$crate::redact::Redactor {
                &self.redactor
            }

            fn attempt_timeout(&self) -> std::time::Duration {
                self.timeout
            }

            fn send<'a>(
                &'a self,
                notification: &'a $crate::delivery::Notification,
            ) -> $crate::delivery::BoxFuture<'a, Result<(), $crate::delivery::SendError>> {
                Box::pin(self.attempt(notification))
            }
        }
    };
}

pub mod console;
mod dispatcher;
pub mod email;
mod events;
mod health;
mod http;
mod kinds;
mod message;
mod metrics;
mod notify;
mod rate;
pub mod slack;
pub mod telegram;
mod template;
pub mod webhook;
pub mod whatsapp;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::redact::Redactor;

pub use dispatcher::{Dispatcher, Outcome};
pub use kinds::{
    BuildDeps, BuildError, ChannelConfig, ChannelKind, ChannelType, CheckContext, TYPES,
};
pub use message::{
    About, Counts, Digest, Event, InstanceRef, Notification, Period, SinceLast, Unlinked,
};
pub use metrics::DeliveryMetrics;
pub use template::{TemplateOverrides, Templates};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a notification (or one attempt) failed; the `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    Auth,
    RateLimited,
    Client,
    Server,
    Timeout,
    Expired,
    /// A 3xx: redirects are never followed.
    Redirect,
    /// No answer to classify: the connection was refused or reset, the name
    /// did not resolve, the TLS handshake failed.
    Transport,
    /// Anything else (an answer that could not be read, a template that
    /// would not render).
    Other,
}

impl Reason {
    pub const ALL: [Reason; 9] = [
        Reason::Auth,
        Reason::RateLimited,
        Reason::Client,
        Reason::Server,
        Reason::Timeout,
        Reason::Expired,
        Reason::Redirect,
        Reason::Transport,
        Reason::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Auth => "auth",
            Reason::RateLimited => "rate_limited",
            Reason::Client => "client",
            Reason::Server => "server",
            Reason::Timeout => "timeout",
            Reason::Expired => "expired",
            Reason::Redirect => "redirect",
            Reason::Transport => "transport",
            Reason::Other => "other",
        }
    }

    /// 5xx, 429, timeouts and network errors may pass; other 4xx will not.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Reason::RateLimited
                | Reason::Server
                | Reason::Timeout
                | Reason::Transport
                | Reason::Other
        )
    }
}

/// One failed attempt (or the notification's final failure). `detail`
/// never holds a URL or a secret: whatever a channel puts there passes its
/// redactor before anyone sees it (see `notify.rs`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} ({detail})", reason.as_str())]
pub struct SendError {
    pub reason: Reason,
    pub retry_after: Option<Duration>,
    pub detail: String,
}

impl SendError {
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            retry_after: None,
            detail: detail.into(),
        }
    }
}

/// How a notification failed on a channel: its last attempt's error (or why
/// no attempt could be made), and whether it ran out of time rather than
/// meeting a final answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub error: SendError,
    pub expired: bool,
}

/// Told of each attempt as it happens: an instance's status shows its
/// channels' last errors; `relinkd test-channel` prints every attempt.
pub trait Observer: Send + Sync {
    /// Attempt `attempt` failed; `retry_in`: when the next one goes.
    fn attempt_failed(
        &self,
        channel: &str,
        attempt: u32,
        error: &SendError,
        retry_in: Option<Duration>,
    );
    /// The notification reached `channel` at attempt `attempts`.
    fn delivered(&self, channel: &str, attempts: u32);
    /// Whether the observer shows every attempt and the outcome to its user
    /// (`relinkd test-channel` prints them): the log lines saying the same
    /// are then debug, so nothing is said twice.
    fn shows_attempts(&self) -> bool {
        false
    }
}

/// A way to reach admins. `send` is one attempt; retries are the caller's.
pub trait Channel: Send + Sync {
    fn name(&self) -> &str;
    /// The channel's secrets (a bot token, a webhook URL, a password), cut
    /// out of every error text it produces.
    fn redactor(&self) -> &Redactor;
    fn attempt_timeout(&self) -> Duration;
    /// Whether the channel's own output shows each delivery as it happens
    /// (the console prints the message), so a log line saying so would only
    /// repeat it.
    fn shows_its_deliveries(&self) -> bool {
        false
    }
    fn send<'a>(&'a self, notification: &'a Notification) -> BoxFuture<'a, Result<(), SendError>>;
    /// Why this channel cannot take `notification` at all right now (the
    /// others still get it); `None`: it can.
    fn unavailable(&self, _notification: &Notification) -> Option<&'static str> {
        None
    }
    /// The reasons `unavailable` can give (their skip series start at 0).
    fn skip_reasons(&self) -> &'static [&'static str] {
        &[]
    }
}
