//! What the fleet and an instance's deliveries tell its supervisor, in one
//! small box with one wake-up.
//!
//! A tokio channel per kind of message (relinks, hints, updates, delivery
//! outcomes) cost about 2.5 KB per instance before a single message was sent:
//! 125 MB at 50,000 instances. The messages need no queue: one pending relink
//! is as good as many, the latest hint and the latest update win, and only
//! delivery outcomes (one per code, a few an episode) are kept in order.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::greenapi::InstanceState;

/// Shared by the fleet (which sends relinks, hints and updates), the
/// instance's delivery tasks (which report outcomes) and its supervisor
/// (which takes them).
/// `U` is a reload's update; the mailbox only carries it.
pub struct Mailbox<U> {
    pending: Mutex<Pending<U>>,
    /// Woken on every message; its stored permit covers a message that
    /// arrives between a look at `pending` and the wait.
    wake: Notify,
}

struct Pending<U> {
    relink: bool,
    hint: Option<InstanceState>,
    update: Option<Arc<U>>,
    /// (the code's expiry, whether it was delivered), in arrival order.
    delivered: VecDeque<(Instant, bool)>,
}

/// One message, as the supervisor takes it.
pub enum Mail<U> {
    /// A reload's new view of the instance.
    Update(Arc<U>),
    /// An admin asked to end a pause or poll now.
    Relink,
    /// What a forwarded notification says the state is.
    Hint(InstanceState),
    /// How the delivery of the code expiring at `expires_at` ended.
    Delivered {
        expires_at: Instant,
        delivered: bool,
    },
}

impl<U> Default for Mailbox<U> {
    fn default() -> Self {
        Self {
            pending: Mutex::new(Pending {
                relink: false,
                hint: None,
                update: None,
                delivered: VecDeque::new(),
            }),
            wake: Notify::new(),
        }
    }
}

impl<U> Mailbox<U> {
    pub fn relink(&self) {
        self.put(|pending| pending.relink = true);
    }

    pub fn hint(&self, state: InstanceState) {
        self.put(|pending| pending.hint = Some(state));
    }

    pub fn update(&self, update: Arc<U>) {
        self.put(|pending| pending.update = Some(update));
    }

    pub fn delivered(&self, expires_at: Instant, delivered: bool) {
        self.put(|pending| pending.delivered.push_back((expires_at, delivered)));
    }

    /// The next message; waits for one. Cancel-safe: a message is only
    /// taken by the call that returns it.
    pub async fn next(&self) -> Mail<U> {
        loop {
            if let Some(mail) = self.take() {
                return mail;
            }
            self.wake.notified().await;
        }
    }

    fn put(&self, write: impl FnOnce(&mut Pending<U>)) {
        write(&mut self.lock());
        self.wake.notify_one();
    }

    /// An update first (what follows is handled under the new settings),
    /// then delivery outcomes (a stream of hints or relinks, each a paced
    /// vendor call, must not hold them back), then a relink, then a hint.
    fn take(&self) -> Option<Mail<U>> {
        let mut pending = self.lock();
        if let Some(update) = pending.update.take() {
            return Some(Mail::Update(update));
        }
        if let Some((expires_at, delivered)) = pending.delivered.pop_front() {
            return Some(Mail::Delivered {
                expires_at,
                delivered,
            });
        }
        if std::mem::take(&mut pending.relink) {
            return Some(Mail::Relink);
        }
        pending.hint.take().map(Mail::Hint)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending<U>> {
        // A panic while holding this lock cannot leave `Pending` half
        // written (every write is one assignment or push).
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_message_sent_before_the_wait_is_not_lost() {
        let mailbox = Mailbox::<()>::default();
        mailbox.relink();
        assert!(matches!(mailbox.next().await, Mail::Relink));
    }

    #[tokio::test]
    async fn many_relinks_are_one_and_the_latest_hint_wins() {
        let mailbox = Mailbox::<()>::default();
        mailbox.relink();
        mailbox.relink();
        mailbox.hint(InstanceState::NotAuthorized);
        mailbox.hint(InstanceState::Authorized);
        assert!(matches!(mailbox.next().await, Mail::Relink));
        assert!(matches!(
            mailbox.next().await,
            Mail::Hint(InstanceState::Authorized)
        ));
        assert!(mailbox.take().is_none());
    }

    #[tokio::test]
    async fn delivery_outcomes_are_kept_in_order() {
        let mailbox = Mailbox::<()>::default();
        let (first, second) = (
            Instant::now(),
            Instant::now() + std::time::Duration::from_secs(1),
        );
        mailbox.delivered(first, false);
        mailbox.delivered(second, true);
        for (at, ok) in [(first, false), (second, true)] {
            match mailbox.next().await {
                Mail::Delivered {
                    expires_at,
                    delivered,
                } => assert_eq!((expires_at, delivered), (at, ok)),
                _ => panic!("expected a delivery outcome"),
            }
        }
    }

    #[tokio::test]
    async fn a_wait_dropped_after_its_wake_up_leaves_the_message_for_the_next() {
        // As when a supervisor's timer wins the select in the same turn.
        let mailbox = Mailbox::<()>::default();
        {
            let mut waiting = std::pin::pin!(mailbox.next());
            let first =
                std::future::poll_fn(|cx| std::task::Poll::Ready(waiting.as_mut().poll(cx))).await;
            assert!(first.is_pending());
            mailbox.relink();
        }
        assert!(matches!(mailbox.next().await, Mail::Relink));
    }

    #[tokio::test]
    async fn a_waiting_supervisor_is_woken_by_a_message() {
        let mailbox = Arc::new(Mailbox::<()>::default());
        let waiting = tokio::spawn({
            let mailbox = mailbox.clone();
            async move { matches!(mailbox.next().await, Mail::Relink) }
        });
        tokio::task::yield_now().await;
        mailbox.relink();
        assert!(waiting.await.unwrap());
    }
}
