//! One notification on one channel: attempts with backoff and jitter until
//! one succeeds, a failure is final, or the deadline passes (a code is
//! useless once it expires, so no attempt starts after it).

use std::time::Duration;

use tokio::time::Instant;

use super::events::{AttemptFailed, Delivered, GaveUp};
use super::metrics::DeliveryMetrics;
use super::rate::RateGate;
use super::{Channel, Notification, Reason, SendError};

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

/// One notification on one channel: attempts with backoff and jitter until
/// one succeeds, a failure is final, or the deadline passes. Emits the
/// outcome (log line and metrics).
pub async fn notify(
    channel: &dyn Channel,
    gate: &RateGate,
    notification: &Notification,
    retry: RetryPolicy,
    metrics: &DeliveryMetrics,
) -> Result<(), SendError> {
    let started = Instant::now();
    let (attempts, result) = attempts(channel, gate, notification, retry).await;
    let (name, event, elapsed) = (channel.name(), notification.event, started.elapsed());
    match &result {
        Ok(()) => Delivered {
            channel: name,
            event,
            attempts,
            elapsed,
        }
        .emit(metrics),
        Err(error) => GaveUp {
            channel: name,
            event,
            attempts,
            reason: error.reason,
            detail: &error.detail,
            elapsed,
        }
        .emit(metrics),
    }
    result
}

/// The retry loop: how many attempts were made, and the final result.
async fn attempts(
    channel: &dyn Channel,
    gate: &RateGate,
    notification: &Notification,
    retry: RetryPolicy,
) -> (u32, Result<(), SendError>) {
    let deadline = notification.deadline;
    let expired = |detail: &str| Err(SendError::new(Reason::Expired, detail));
    let mut attempt: u32 = 0;
    loop {
        if tokio::time::timeout_at(deadline, gate.acquire(notification.is_code()))
            .await
            .is_err()
        {
            let detail = "the channel's rate limit left no slot before the deadline";
            return (attempt, expired(detail));
        }
        let now = Instant::now();
        if now >= deadline {
            return (attempt, expired("deadline passed before the attempt"));
        }
        attempt += 1;
        let limit = channel.attempt_timeout().min(deadline - now);
        let mut error = match tokio::time::timeout(limit, channel.send(notification)).await {
            Ok(Ok(())) => return (attempt, Ok(())),
            Ok(Err(error)) => error,
            Err(_) if Instant::now() >= deadline => {
                return (attempt, expired("attempt cut off at the deadline"));
            }
            Err(_) => SendError::new(Reason::Timeout, format!("no answer within {limit:?}")),
        };
        // The one place a channel's error text is cleaned: whatever it
        // quotes from its peer loses the channel's secrets, then is bounded.
        error.detail = channel.redactor().clean(&error.detail, MAX_DETAIL_CHARS);
        if !error.reason.is_retryable() {
            return (attempt, Err(error));
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
            return (attempt, expired(&format!("last attempt: {error}")));
        }
        AttemptFailed {
            channel: channel.name(),
            attempt,
            error: &error,
            retry_in: delay,
        }
        .emit();
        tokio::time::sleep(delay).await;
    }
}
