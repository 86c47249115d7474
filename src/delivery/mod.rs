//! Delivery: a [`Channel`] sends one attempt; a notification is the whole
//! retry loop around it (Alertmanager's split), bounded by a deadline because
//! a code is useless once it expires.

mod console;
mod http;
mod message;
mod signing;
mod webhook;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::{ChannelConfig, ChannelKind};
use crate::metrics::DeliveryMetrics;

pub use console::Console;
pub use message::{Event, InstanceRef, Notification, format_utc};
pub use signing::{WebhookSigner, sign};
pub use webhook::Webhook;

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
    Other,
}

impl Reason {
    pub const ALL: [Reason; 7] = [
        Reason::Auth,
        Reason::RateLimited,
        Reason::Client,
        Reason::Server,
        Reason::Timeout,
        Reason::Expired,
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
            Reason::Other => "other",
        }
    }

    /// 5xx, 429, timeouts and network errors may pass; other 4xx will not.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Reason::RateLimited | Reason::Server | Reason::Timeout | Reason::Other
        )
    }
}

/// One failed attempt. `detail` never holds a URL or a secret.
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

/// A way to reach admins. `send` is one attempt; retries are the caller's.
pub trait Channel: Send + Sync {
    fn name(&self) -> &str;
    fn attempt_timeout(&self) -> Duration;
    fn send<'a>(&'a self, notification: &'a Notification) -> BoxFuture<'a, Result<(), SendError>>;
}

/// Retry schedule of one notification on one channel.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// Fans notifications out to channels by name.
#[derive(Clone)]
pub struct Dispatcher {
    channels: Arc<HashMap<String, Arc<dyn Channel>>>,
    metrics: DeliveryMetrics,
    retry: RetryPolicy,
}

impl Dispatcher {
    pub fn new(channels: Vec<Arc<dyn Channel>>, metrics: DeliveryMetrics) -> Self {
        for channel in &channels {
            metrics.register_channel(channel.name());
        }
        let channels = channels
            .into_iter()
            .map(|c| (c.name().to_owned(), c))
            .collect();
        Self {
            channels: Arc::new(channels),
            metrics,
            retry: RetryPolicy::default(),
        }
    }

    /// Builds the configured channels.
    pub fn from_config(
        configs: &[ChannelConfig],
        http: reqwest::Client,
        metrics: DeliveryMetrics,
    ) -> Self {
        let channels = configs
            .iter()
            .map(|c| -> Arc<dyn Channel> {
                match &c.kind {
                    ChannelKind::Webhook { url, secret } => Arc::new(Webhook::new(
                        &c.name,
                        url.clone(),
                        secret.clone().map(WebhookSigner::new),
                        c.attempt_timeout,
                        http.clone(),
                    )),
                    ChannelKind::Console => Arc::new(Console::new(&c.name, c.attempt_timeout)),
                    _ => todo!("channel kinds of issue 4"),
                }
            })
            .collect();
        Self::new(channels, metrics)
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Delivers to every named channel concurrently; true if any succeeded.
    pub async fn deliver(&self, notification: Arc<Notification>, channels: &[String]) -> bool {
        let mut attempts = JoinSet::new();
        for name in channels {
            let Some(channel) = self.channels.get(name).cloned() else {
                // Config validation makes this unreachable; never panic on it.
                tracing::error!(channel = %name, "notification for an unknown channel dropped");
                continue;
            };
            let notification = notification.clone();
            let metrics = self.metrics.clone();
            let retry = self.retry;
            attempts.spawn(async move {
                let started = Instant::now();
                let result = notify(channel.as_ref(), &notification, retry).await;
                metrics.record(channel.name(), result, started.elapsed());
                result.is_ok()
            });
        }
        let mut any = false;
        while let Some(done) = attempts.join_next().await {
            any |= done.unwrap_or(false);
        }
        any
    }
}

/// One notification on one channel: attempts with backoff and jitter until
/// one succeeds, a failure is final, or the deadline passes. Logs the outcome.
async fn notify(
    channel: &dyn Channel,
    notification: &Notification,
    retry: RetryPolicy,
) -> Result<(), Reason> {
    let deadline = notification.deadline;
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let now = Instant::now();
        if now >= deadline {
            return Err(give_up(
                channel,
                notification,
                attempt - 1,
                Reason::Expired,
                "deadline passed before the attempt",
            ));
        }
        let limit = channel.attempt_timeout().min(deadline - now);
        let error = match tokio::time::timeout(limit, channel.send(notification)).await {
            Ok(Ok(())) => {
                tracing::info!(
                    channel = channel.name(),
                    instance = %notification.instance.name,
                    wa_instance = notification.instance.id,
                    event = notification.event.as_str(),
                    attempts = attempt,
                    "notification delivered"
                );
                return Ok(());
            }
            Ok(Err(error)) => error,
            Err(_) if Instant::now() >= deadline => {
                return Err(give_up(
                    channel,
                    notification,
                    attempt,
                    Reason::Expired,
                    "attempt cut off at the deadline",
                ));
            }
            Err(_) => SendError::new(Reason::Timeout, format!("no answer within {limit:?}")),
        };
        if !error.reason.is_retryable() {
            return Err(give_up(
                channel,
                notification,
                attempt,
                error.reason,
                &error.detail,
            ));
        }
        let backoff = retry
            .first_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(16)))
            .min(retry.max_delay)
            .mul_f64(0.8 + 0.4 * rand::random::<f64>());
        let delay = error.retry_after.map_or(backoff, |r| r.max(backoff));
        if Instant::now() + delay >= deadline {
            // The next attempt could only start after expiry: drop, count.
            return Err(give_up(
                channel,
                notification,
                attempt,
                Reason::Expired,
                &format!("last attempt: {error}"),
            ));
        }
        tracing::debug!(
            channel = channel.name(),
            wa_instance = notification.instance.id,
            attempt,
            error = %error,
            retry_in = ?delay,
            "delivery attempt failed; will retry"
        );
        tokio::time::sleep(delay).await;
    }
}

fn give_up(
    channel: &dyn Channel,
    notification: &Notification,
    attempts: u32,
    reason: Reason,
    detail: &str,
) -> Reason {
    tracing::warn!(
        channel = channel.name(),
        instance = %notification.instance.name,
        wa_instance = notification.instance.id,
        event = notification.event.as_str(),
        attempts,
        reason = reason.as_str(),
        detail,
        "notification not delivered"
    );
    reason
}
