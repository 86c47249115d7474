//! Delivery: a [`Channel`] sends one attempt; a notification is the whole
//! retry loop around it (Alertmanager's split), bounded by a deadline because
//! a code is useless once it expires, and paced by the channel's rate limit.

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

mod console;
mod email;
mod http;
mod message;
mod rate;
mod signing;
mod slack;
mod telegram;
pub mod template;
mod webhook;
mod whatsapp;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::{ChannelConfig, ChannelKind, Config};
use crate::greenapi::Client;
use crate::metrics::{DeliveryMetrics, Metrics};
use crate::redact::Redactor;

pub use console::Console;
pub use email::Email;
pub use message::{About, Event, InstanceRef, Notification};
pub use rate::RateGate;
pub use signing::{WebhookSigner, sign};
pub use slack::Slack;
pub use telegram::Telegram;
pub use template::{Style, Templates};
pub use webhook::Webhook;
pub use whatsapp::Whatsapp;

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
    Other,
}

impl Reason {
    pub const ALL: [Reason; 8] = [
        Reason::Auth,
        Reason::RateLimited,
        Reason::Client,
        Reason::Server,
        Reason::Timeout,
        Reason::Expired,
        Reason::Redirect,
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

/// One failed attempt (or the notification's final failure). `detail`
/// never holds a URL or a secret: whatever a channel puts there passes its
/// redactor before anyone sees it (see [`notify`]).
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
    /// The channel's secrets (a bot token, a webhook URL, a password), cut
    /// out of every error text it produces.
    fn redactor(&self) -> &Redactor;
    fn attempt_timeout(&self) -> Duration;
    fn send<'a>(&'a self, notification: &'a Notification) -> BoxFuture<'a, Result<(), SendError>>;
    /// Why this channel cannot take `notification` at all right now (the
    /// others still get it); `None`: it can.
    fn unavailable(&self, _notification: &Notification) -> Option<&'static str> {
        None
    }
}

/// Longest error detail kept from one attempt.
const MAX_DETAIL_CHARS: usize = 300;

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

/// Default `rate_limit_per_minute` by channel type: Telegram allows about 20
/// messages a minute to one group; Slack about one a second per webhook.
pub fn default_rate_limit(kind: &ChannelKind) -> Option<u32> {
    match kind {
        ChannelKind::Telegram { .. } => Some(20),
        ChannelKind::Slack { .. } => Some(60),
        ChannelKind::Email { .. } => Some(30),
        ChannelKind::Whatsapp { .. } => Some(30),
        ChannelKind::Webhook { .. } => Some(600),
        ChannelKind::Console => None,
    }
}

#[derive(Debug, thiserror::Error)]
#[error("channel {channel}: {message}")]
pub struct BuildError {
    pub channel: String,
    pub message: String,
}

/// The outcome of one notification on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Skipped(&'static str),
    Failed(SendError),
}

struct Entry {
    channel: Arc<dyn Channel>,
    per_minute: Option<u32>,
    gate: RateGate,
}

/// Fans notifications out to channels by name.
#[derive(Clone)]
pub struct Dispatcher {
    channels: Arc<HashMap<String, Entry>>,
    metrics: DeliveryMetrics,
    retry: RetryPolicy,
}

impl Dispatcher {
    /// Channels with their rate limits (`None`: unlimited).
    pub fn new(channels: Vec<(Arc<dyn Channel>, Option<u32>)>, metrics: DeliveryMetrics) -> Self {
        let channels = channels
            .into_iter()
            .map(|(channel, per_minute)| {
                metrics.register_channel(channel.name());
                let entry = Entry {
                    gate: RateGate::new(per_minute),
                    per_minute,
                    channel,
                };
                (entry.channel.name().to_owned(), entry)
            })
            .collect();
        Self {
            channels: Arc::new(channels),
            metrics,
            retry: RetryPolicy::default(),
        }
    }

    /// Builds the configured channels. WhatsApp channels send through their
    /// `via` instance with `client` (sharing its pacing).
    pub fn from_config(
        config: &Config,
        client: &Client,
        http: &reqwest::Client,
        metrics: &Metrics,
    ) -> Result<Self, BuildError> {
        let channels = config
            .channels
            .iter()
            .map(|c| {
                let channel = build_channel(c, config, client, http, metrics)?;
                let limit = c
                    .rate_limit_per_minute
                    .or_else(|| default_rate_limit(&c.kind));
                Ok((channel, limit))
            })
            .collect::<Result<Vec<_>, BuildError>>()?;
        Ok(Self::new(channels, metrics.deliveries.clone()))
    }

    /// Keeps `previous`'s rate-limit state for channels whose name and limit
    /// did not change, so a reload does not hand out a fresh burst.
    pub fn keeping_rate_limits_of(mut self, previous: &Dispatcher) -> Self {
        let channels = self
            .channels
            .iter()
            .map(|(name, entry)| {
                let gate = match previous.channels.get(name) {
                    Some(old) if old.per_minute == entry.per_minute => old.gate.clone(),
                    _ => entry.gate.clone(),
                };
                let entry = Entry {
                    channel: entry.channel.clone(),
                    per_minute: entry.per_minute,
                    gate,
                };
                (name.clone(), entry)
            })
            .collect();
        self.channels = Arc::new(channels);
        self
    }

    /// Delivers to every named channel concurrently; true if any delivered.
    pub async fn deliver(&self, notification: Arc<Notification>, channels: &[String]) -> bool {
        self.deliver_each(notification, channels)
            .await
            .iter()
            .any(|(_, outcome)| *outcome == Outcome::Delivered)
    }

    /// Like `deliver`, with each channel's outcome.
    pub async fn deliver_each(
        &self,
        notification: Arc<Notification>,
        channels: &[String],
    ) -> Vec<(String, Outcome)> {
        let mut outcomes = Vec::new();
        let mut attempts = JoinSet::new();
        for name in channels {
            let Some(entry) = self.channels.get(name) else {
                // Config validation makes this unreachable; never panic on it.
                tracing::error!(channel = %name, "notification for an unknown channel dropped");
                continue;
            };
            if let Some(reason) = entry.channel.unavailable(&notification) {
                tracing::info!(
                    channel = %name,
                    wa_instance = notification.instance.id,
                    event = notification.event.as_str(),
                    reason,
                    "channel skipped for this message; the instance's other channels still get it"
                );
                self.metrics.skipped(name, reason);
                outcomes.push((name.clone(), Outcome::Skipped(reason)));
                continue;
            }
            let channel = entry.channel.clone();
            let gate = entry.gate.clone();
            let notification = notification.clone();
            let metrics = self.metrics.clone();
            let retry = self.retry;
            attempts.spawn(async move {
                let started = Instant::now();
                let result = notify(channel.as_ref(), &gate, &notification, retry).await;
                metrics.record(
                    channel.name(),
                    result.as_ref().map(|_| ()).map_err(|e| e.reason),
                    started.elapsed(),
                );
                let outcome = match result {
                    Ok(()) => Outcome::Delivered,
                    Err(e) => Outcome::Failed(e),
                };
                (channel.name().to_owned(), outcome)
            });
        }
        while let Some(done) = attempts.join_next().await {
            if let Ok(done) = done {
                outcomes.push(done);
            }
        }
        outcomes
    }
}

fn build_channel(
    c: &ChannelConfig,
    config: &Config,
    client: &Client,
    http: &reqwest::Client,
    metrics: &Metrics,
) -> Result<Arc<dyn Channel>, BuildError> {
    let templates = |style| {
        Templates::new(&c.name, style, &c.templates).map_err(|message| BuildError {
            channel: c.name.clone(),
            message,
        })
    };
    let timeout = c.attempt_timeout;
    Ok(match &c.kind {
        ChannelKind::Webhook { url, secret } => Arc::new(Webhook::new(
            &c.name,
            url.clone(),
            secret.clone().map(WebhookSigner::new),
            templates(Style::Plain)?,
            timeout,
            http.clone(),
        )),
        ChannelKind::Console => Arc::new(Console::new(&c.name, templates(Style::Plain)?, timeout)),
        ChannelKind::Telegram {
            bot_token,
            chat_id,
            api_base,
        } => Arc::new(Telegram::new(
            &c.name,
            api_base,
            bot_token,
            chat_id.clone(),
            templates(Style::Html)?,
            timeout,
            http.clone(),
        )),
        ChannelKind::Slack { url } => Arc::new(Slack::new(
            &c.name,
            url.clone(),
            templates(Style::Slack)?,
            timeout,
            http.clone(),
        )),
        ChannelKind::Email { .. } => Arc::new(
            Email::new(&c.name, &c.kind, templates(Style::Plain)?, timeout).map_err(|message| {
                BuildError {
                    channel: c.name.clone(),
                    message,
                }
            })?,
        ),
        ChannelKind::Whatsapp { via, chat_ids } => {
            let Some(sender) = config.instance(*via) else {
                return Err(BuildError {
                    channel: c.name.clone(),
                    message: format!("via = {via} is not a configured instance"),
                });
            };
            metrics.deliveries.register_skips(&c.name);
            Arc::new(Whatsapp::new(
                &c.name,
                *via,
                chat_ids.clone(),
                client.instance(
                    &sender.api_url,
                    sender.id,
                    sender.api_token.clone(),
                    sender.settings.request_timeout,
                ),
                metrics.instance(sender.id, &sender.name),
                templates(Style::Plain)?,
                timeout,
            ))
        }
    })
}

/// One notification on one channel: attempts with backoff and jitter until
/// one succeeds, a failure is final, or the deadline passes. Logs the outcome.
async fn notify(
    channel: &dyn Channel,
    gate: &RateGate,
    notification: &Notification,
    retry: RetryPolicy,
) -> Result<(), SendError> {
    let deadline = notification.deadline;
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        if tokio::time::timeout_at(deadline, gate.acquire(notification.is_code()))
            .await
            .is_err()
        {
            let detail = "the channel's rate limit left no slot before the deadline";
            return Err(give_up(
                channel,
                notification,
                attempt - 1,
                Reason::Expired,
                detail,
            ));
        }
        let now = Instant::now();
        if now >= deadline {
            let detail = "deadline passed before the attempt";
            return Err(give_up(
                channel,
                notification,
                attempt - 1,
                Reason::Expired,
                detail,
            ));
        }
        let limit = channel.attempt_timeout().min(deadline - now);
        let mut error = match tokio::time::timeout(limit, channel.send(notification)).await {
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
                let detail = "attempt cut off at the deadline";
                return Err(give_up(
                    channel,
                    notification,
                    attempt,
                    Reason::Expired,
                    detail,
                ));
            }
            Err(_) => SendError::new(Reason::Timeout, format!("no answer within {limit:?}")),
        };
        // The one place a channel's error text is cleaned: whatever it
        // quotes from its peer loses the channel's secrets, then is bounded.
        error.detail = channel.redactor().clean(&error.detail, MAX_DETAIL_CHARS);
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
        // A bogus Retry-After must not overflow the deadline arithmetic.
        let delay = error
            .retry_after
            .map_or(backoff, |r| r.max(backoff))
            .min(crate::outbound::MAX_RETRY_AFTER);
        if Instant::now() + delay >= deadline {
            // The next attempt could only start after expiry: drop, count.
            let detail = format!("last attempt: {error}");
            return Err(give_up(
                channel,
                notification,
                attempt,
                Reason::Expired,
                &detail,
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
) -> SendError {
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
    SendError::new(reason, detail)
}
