//! The linking policy, rule by rule.
//!
//! Measured by mutation testing (`cargo mutants -f src/linker/policy.rs -C
//! --lib`): every viable mutant is caught. Equivalent mutants, if any
//! survive a future change, are listed here with why: none now.

use std::time::Duration;

use tokio::time::Instant;

use super::*;

mod episodes;
mod failures;
pub(super) mod reboots;
mod restarts;
mod timing;
mod windows;

const S: Duration = Duration::from_secs(1);

fn settings() -> InstanceSettings {
    InstanceSettings {
        poll_interval: 60 * S,
        linking_poll_interval: 5 * S,
        code_ttl: 150 * S,
        codes_per_episode: 3,
        cooldown: 3600 * S,
        request_timeout: 40 * S,
        backoff_max: 300 * S,
        timezone: None,
        linking_windows: crate::calendar::Calendar::default(),
        reboot_stuck_after: None,
    }
}

/// Drives a policy through time the way the supervisor does.
struct Harness {
    policy: Policy,
    now: Instant,
    /// `Due`s fed so far: bounded, so a policy that stops advancing fails a
    /// test instead of hanging it.
    dues: u32,
}

/// More polls than any test needs (a day at one a second is 86,400; the
/// longest test polls a few thousand times).
const MAX_DUES: u32 = 20_000;

impl Harness {
    fn new() -> Self {
        Self::with(settings())
    }

    fn with(settings: InstanceSettings) -> Self {
        let now = Instant::now();
        Self::of(Policy::new(settings, 42, now), now)
    }

    fn of(policy: Policy, now: Instant) -> Self {
        Self {
            policy,
            now,
            dues: 0,
        }
    }

    /// Moves time to the next due moment and feeds `Due`.
    fn due(&mut self) -> Vec<Action> {
        self.dues += 1;
        assert!(
            self.dues < MAX_DUES,
            "{MAX_DUES} polls: the policy stopped advancing"
        );
        self.now = self.now.max(self.policy.next_at());
        self.policy.handle(Input::Due, self.now)
    }

    fn feed(&mut self, input: Input) -> Vec<Action> {
        self.policy.handle(input, self.now)
    }

    fn wait(&mut self, d: Duration) {
        self.now += d;
    }

    /// Polls once and answers with `state`.
    fn poll(&mut self, state: InstanceState) -> Vec<Action> {
        assert_eq!(self.due(), vec![Action::PollState]);
        self.feed(Input::Polled(state))
    }

    fn gap(&self) -> Duration {
        self.policy.next_at() - self.now
    }

    /// Polls until a code is requested, answers it with a code and returns
    /// the delivery action's expiry.
    fn get_code(&mut self) -> Instant {
        loop {
            let actions = self.poll(InstanceState::NotAuthorized);
            if actions == vec![Action::RequestCode] {
                break;
            }
            assert!(actions.is_empty(), "unexpected {actions:?}");
        }
        match self.feed(Input::CodeIssued).as_slice() {
            [Action::DeliverCode { expires_at }] => *expires_at,
            other => panic!("expected one DeliverCode, got {other:?}"),
        }
    }
}

fn codes_used(policy: &Policy) -> u32 {
    match policy.phase() {
        Phase::Linking { codes_used, .. } | Phase::Paused { codes_used, .. } => *codes_used,
        _ => 0,
    }
}
