//! One notification on one channel: attempts with backoff and jitter until
//! one succeeds, a failure is final, or the deadline passes (a code is
//! useless once it expires, so no attempt starts after it).

use std::time::Duration;

use tokio::time::Instant;

use super::events::{AttemptFailed, Delivered, GaveUp};
use super::health::ChannelHealth;
use super::metrics::DeliveryMetrics;
use super::rate::RateGate;
use super::{Channel, Failure, Notification, Observer, Reason, SendError};

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

/// What one notification on one channel has to hand.
pub struct Route<'a> {
    pub channel: &'a dyn Channel,
    pub gate: &'a RateGate,
    pub health: &'a ChannelHealth,
    pub metrics: &'a DeliveryMetrics,
    pub retry: RetryPolicy,
}

/// One notification on one channel: attempts with backoff and jitter until
/// one succeeds, a failure is final, or the deadline passes. Each attempt's
/// failure is told to `observer` and logged (a few lines a minute per
/// channel); the outcome is logged and counted.
pub async fn notify(
    route: &Route<'_>,
    notification: &Notification,
    observer: &dyn Observer,
) -> Result<(), Failure> {
    let started = Instant::now();
    let (attempts, result) = attempts(route, notification, observer).await;
    let (channel, event, elapsed) = (route.channel.name(), notification.event, started.elapsed());
    match &result {
        Ok(()) => {
            observer.delivered(channel, attempts);
            Delivered {
                channel,
                event,
                attempts,
                elapsed,
                // A recovery means nothing to an observer's one message.
                recovered_after: route
                    .health
                    .delivered()
                    .filter(|_| !observer.shows_attempts()),
                shown: route.channel.shows_its_deliveries() || observer.shows_attempts(),
            }
            .emit(route.metrics);
        }
        Err(failure) => GaveUp {
            channel,
            event,
            attempts,
            failure,
            elapsed,
            shown: observer.shows_attempts(),
        }
        .emit(route.metrics, route.health),
    }
    result
}

/// The retry loop: how many attempts were made, and the final result. A
/// notification that runs out of time keeps its last attempt's reason.
async fn attempts(
    route: &Route<'_>,
    notification: &Notification,
    observer: &dyn Observer,
) -> (u32, Result<(), Failure>) {
    let channel = route.channel;
    let deadline = notification.deadline;
    let mut last: Option<SendError> = None;
    // Out of time: the last attempt's error, or why none could be made.
    let expired = |last: Option<SendError>, why: &str| {
        Err(Failure {
            error: last.unwrap_or_else(|| SendError::new(Reason::Expired, why)),
            expired: true,
        })
    };
    let mut attempt: u32 = 0;
    loop {
        if tokio::time::timeout_at(deadline, route.gate.acquire(notification.is_code()))
            .await
            .is_err()
        {
            let why = "the channel's rate limit left no slot before the deadline";
            return (attempt, expired(last, why));
        }
        let now = Instant::now();
        if now >= deadline {
            return (attempt, expired(last, "deadline passed before the attempt"));
        }
        attempt += 1;
        let limit = channel.attempt_timeout().min(deadline - now);
        let mut error = match tokio::time::timeout(limit, channel.send(notification)).await {
            Ok(Ok(())) => return (attempt, Ok(())),
            Ok(Err(error)) => error,
            Err(_) if Instant::now() >= deadline => {
                let error = SendError::new(Reason::Timeout, "attempt cut off at the deadline");
                failed(route, notification, observer, attempt, &error, None);
                return (attempt, expired(Some(error), ""));
            }
            Err(_) => SendError::new(Reason::Timeout, format!("no answer within {limit:?}")),
        };
        // The one place a channel's error text is cleaned: whatever it
        // quotes from its peer loses the channel's secrets, then is bounded.
        error.detail = channel.redactor().clean(&error.detail, MAX_DETAIL_CHARS);
        if !error.reason.is_retryable() {
            failed(route, notification, observer, attempt, &error, None);
            let failure = Failure {
                error,
                expired: false,
            };
            return (attempt, Err(failure));
        }
        let backoff = route
            .retry
            .first_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(16)))
            .min(route.retry.max_delay)
            .mul_f64(0.8 + 0.4 * rand::random::<f64>());
        // A bogus Retry-After must not overflow the deadline arithmetic.
        let delay = error
            .retry_after
            .map_or(backoff, |r| r.max(backoff))
            .min(crate::outbound::MAX_RETRY_AFTER);
        if Instant::now() + delay >= deadline {
            // The next attempt could only start after expiry: drop, count.
            failed(route, notification, observer, attempt, &error, None);
            return (attempt, expired(Some(error), ""));
        }
        failed(route, notification, observer, attempt, &error, Some(delay));
        last = Some(error);
        tokio::time::sleep(delay).await;
    }
}

/// One failed attempt, told to the observer and logged; `retry_in`: when
/// the next one goes (`None`: this was the last).
fn failed(
    route: &Route<'_>,
    notification: &Notification,
    observer: &dyn Observer,
    attempt: u32,
    error: &SendError,
    retry_in: Option<Duration>,
) {
    let channel = route.channel.name();
    observer.attempt_failed(channel, attempt, error, retry_in);
    AttemptFailed {
        channel,
        event: notification.event,
        attempt,
        error,
        retry_in,
        shown: observer.shows_attempts(),
    }
    .emit(route.health);
}
