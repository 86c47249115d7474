//! Fans notifications out to an instance's channels, concurrently, each
//! behind its rate limit.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::task::JoinSet;
use tracing::Instrument as _;

use super::events::Skipped;
use super::health::ChannelHealth;
use super::kinds::{BuildDeps, BuildError, ChannelConfig};
use super::metrics::DeliveryMetrics;
use super::notify::{RetryPolicy, Route, notify};
use super::rate::RateGate;
use super::{Channel, Failure, Notification, Observer};

/// The outcome of one notification on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Skipped(&'static str),
    Failed(Failure),
}

struct Entry {
    channel: Arc<dyn Channel>,
    /// Failures since the last success and the failure lines logged lately,
    /// across every instance; kept across a reload, like the gate.
    health: ChannelHealth,
    /// The configured limit, to tell whether a reload changed it.
    per_minute: Option<u32>,
    /// Shared by every delivery on this channel; kept across a reload that
    /// leaves the limit alone.
    gate: RateGate,
}

/// Fans notifications out to channels by name.
#[derive(Clone)]
pub struct Dispatcher {
    /// Built from the config; a reload builds a new dispatcher rather than
    /// changing this one, so deliveries in flight keep theirs.
    channels: Arc<HashMap<String, Entry>>,
    metrics: DeliveryMetrics,
    /// The backoff of every notification's retries.
    retry: RetryPolicy,
}

impl Dispatcher {
    /// Channels with their rate limits (`None`: unlimited).
    pub fn new(channels: Vec<(Arc<dyn Channel>, Option<u32>)>, metrics: DeliveryMetrics) -> Self {
        let channels = channels
            .into_iter()
            .map(|(channel, per_minute)| {
                metrics.register_channel(channel.name(), channel.skip_reasons());
                let entry = Entry {
                    gate: RateGate::new(per_minute),
                    health: ChannelHealth::default(),
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

    /// Builds the configured channels (WhatsApp channels send through the
    /// API `deps` gives for their `via` instance, sharing its pacing).
    pub fn build(
        channels: &[ChannelConfig],
        deps: &BuildDeps<'_>,
        metrics: &DeliveryMetrics,
    ) -> Result<Self, BuildError> {
        let channels = channels
            .iter()
            .map(|c| Ok((c.build(deps)?, c.rate_limit())))
            .collect::<Result<Vec<_>, BuildError>>()?;
        Ok(Self::new(channels, metrics.clone()))
    }

    /// The names of the channels.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.channels.keys().map(String::as_str)
    }

    /// Keeps `previous`'s rate-limit state for channels whose name and limit
    /// did not change, so a reload does not hand out a fresh burst, and the
    /// health of channels whose name did not.
    pub fn keeping_rate_limits_of(mut self, previous: &Dispatcher) -> Self {
        let channels = self
            .channels
            .iter()
            .map(|(name, entry)| {
                let old = previous.channels.get(name);
                let gate = match old {
                    Some(old) if old.per_minute == entry.per_minute => old.gate.clone(),
                    _ => entry.gate.clone(),
                };
                let entry = Entry {
                    channel: entry.channel.clone(),
                    health: old.map_or_else(|| entry.health.clone(), |o| o.health.clone()),
                    per_minute: entry.per_minute,
                    gate,
                };
                (name.clone(), entry)
            })
            .collect();
        self.channels = Arc::new(channels);
        self
    }

    /// Delivers to every named channel concurrently, telling `observer` of
    /// each attempt; true if any delivered.
    pub async fn deliver(
        &self,
        notification: Arc<Notification>,
        channels: &[String],
        observer: Arc<dyn Observer>,
    ) -> bool {
        self.deliver_each(notification, channels, observer)
            .await
            .iter()
            .any(|(_, outcome)| *outcome == Outcome::Delivered)
    }

    /// Like `deliver`, with each channel's outcome.
    pub async fn deliver_each(
        &self,
        notification: Arc<Notification>,
        channels: &[String],
        observer: Arc<dyn Observer>,
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
                Skipped {
                    channel: name,
                    event: notification.event,
                    reason,
                }
                .emit(&self.metrics);
                outcomes.push((name.clone(), Outcome::Skipped(reason)));
                continue;
            }
            let channel = entry.channel.clone();
            let (gate, health) = (entry.gate.clone(), entry.health.clone());
            let (notification, observer) = (notification.clone(), observer.clone());
            let (metrics, retry) = (self.metrics.clone(), self.retry);
            attempts.spawn(
                async move {
                    let route = Route {
                        channel: channel.as_ref(),
                        gate: &gate,
                        health: &health,
                        metrics: &metrics,
                        retry,
                    };
                    let outcome = match notify(&route, &notification, observer.as_ref()).await {
                        Ok(()) => Outcome::Delivered,
                        Err(failure) => Outcome::Failed(failure),
                    };
                    (channel.name().to_owned(), outcome)
                }
                .in_current_span(),
            );
        }
        while let Some(done) = attempts.join_next().await {
            if let Ok(done) = done {
                outcomes.push(done);
            }
        }
        outcomes
    }
}
