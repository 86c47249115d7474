//! A per-channel rate limit (governor's GCRA on tokio's clock), so a
//! fleet-wide outage does not get a bot or a sender banned. Codes take
//! precedence: a notice waits while any code waits.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use governor::clock::Clock;
use governor::{Quota, RateLimiter};
use tokio::sync::Notify;
use tokio::time::Instant;

/// governor's clock, read from tokio's (so the paused clock drives it).
#[derive(Clone)]
struct TokioClock {
    origin: Instant,
}

impl Clock for TokioClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.origin)
    }
}

type Limiter = RateLimiter<
    governor::state::NotKeyed,
    governor::state::InMemoryState,
    TokioClock,
    governor::middleware::NoOpMiddleware<Duration>,
>;

#[derive(Clone)]
pub struct RateGate {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    limiter: Limiter,
    clock: TokioClock,
    codes_waiting: AtomicUsize,
    codes_done: Notify,
}

impl RateGate {
    /// At most `per_minute` messages a minute (bursts up to that many);
    /// `None`: no limit.
    pub fn new(per_minute: Option<u32>) -> Self {
        let inner = per_minute.and_then(NonZeroU32::new).map(|n| {
            let clock = TokioClock {
                origin: Instant::now(),
            };
            Arc::new(Inner {
                limiter: RateLimiter::direct_with_clock(Quota::per_minute(n), clock.clone()),
                clock,
                codes_waiting: AtomicUsize::new(0),
                codes_done: Notify::new(),
            })
        });
        Self { inner }
    }

    /// Waits for a slot. Codes queue ahead of notices.
    pub async fn acquire(&self, is_code: bool) {
        let Some(inner) = &self.inner else {
            return;
        };
        if is_code {
            // The guard un-counts the code even if this wait is cancelled
            // (deadline, episode over, shutdown): notices must not starve.
            let _waiting = CodeWaiting::new(inner);
            inner.wait_for_slot().await;
            return;
        }
        loop {
            while inner.codes_waiting.load(Ordering::Acquire) > 0 {
                let done = inner.codes_done.notified();
                if inner.codes_waiting.load(Ordering::Acquire) == 0 {
                    break;
                }
                done.await;
            }
            match inner.limiter.check() {
                Ok(()) => return,
                Err(not_until) => {
                    tokio::time::sleep(not_until.wait_time_from(inner.clock.now())).await;
                }
            }
        }
    }
}

/// Counts a code as waiting for as long as it lives.
struct CodeWaiting<'a>(&'a Inner);

impl<'a> CodeWaiting<'a> {
    fn new(inner: &'a Inner) -> Self {
        inner.codes_waiting.fetch_add(1, Ordering::AcqRel);
        Self(inner)
    }
}

impl Drop for CodeWaiting<'_> {
    fn drop(&mut self) {
        self.0.codes_waiting.fetch_sub(1, Ordering::AcqRel);
        self.0.codes_done.notify_waiters();
    }
}

impl Inner {
    async fn wait_for_slot(&self) {
        loop {
            match self.limiter.check() {
                Ok(()) => return,
                Err(not_until) => {
                    tokio::time::sleep(not_until.wait_time_from(self.clock.now())).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_passes_then_the_rate_holds() {
        let gate = RateGate::new(Some(60));
        let start = Instant::now();
        for _ in 0..60 {
            gate.acquire(false).await;
        }
        assert!(start.elapsed() < Duration::from_millis(10));
        gate.acquire(false).await;
        assert!(start.elapsed() >= Duration::from_millis(990));
    }

    #[tokio::test(start_paused = true)]
    async fn codes_go_before_waiting_notices() {
        let gate = RateGate::new(Some(1));
        gate.acquire(false).await; // uses the burst
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let notice = {
            let (gate, order) = (gate.clone(), order.clone());
            tokio::spawn(async move {
                gate.acquire(false).await;
                order.lock().unwrap().push("notice");
            })
        };
        tokio::task::yield_now().await;
        let code = {
            let (gate, order) = (gate.clone(), order.clone());
            tokio::spawn(async move {
                gate.acquire(true).await;
                order.lock().unwrap().push("code");
            })
        };
        let _ = tokio::join!(notice, code);
        assert_eq!(*order.lock().unwrap(), vec!["code", "notice"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_code_wait_does_not_hold_notices_back() {
        let gate = RateGate::new(Some(1));
        gate.acquire(false).await; // uses the burst
        // A code waits, then gives up (its deadline passed).
        let waited = tokio::time::timeout(Duration::from_secs(5), gate.acquire(true)).await;
        assert!(waited.is_err());
        let start = Instant::now();
        gate.acquire(false).await;
        assert!(start.elapsed() <= Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn no_limit_never_waits() {
        // On the paused clock a wait would advance time; none may pass.
        let gate = RateGate::new(None);
        let start = Instant::now();
        for i in 0..10_000 {
            gate.acquire(i % 2 == 0).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        // A limited gate does wait, so the measure can tell.
        let limited = RateGate::new(Some(1));
        limited.acquire(false).await;
        limited.acquire(false).await;
        assert!(start.elapsed() >= Duration::from_secs(59));
    }
}
