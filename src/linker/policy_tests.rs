//! The linking policy, rule by rule.
//!
//! Measured by mutation testing (`cargo mutants -f src/linker/policy.rs -C
//! --lib`): every viable mutant is caught. Equivalent mutants, if any
//! survive a future change, are listed here with why: none now.

use std::time::Duration;

use tokio::time::Instant;

use super::*;

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

#[test]
fn nothing_happens_before_the_first_poll_is_due() {
    let mut h = Harness::new();
    let start = h.now;
    h.policy = Policy::new(settings(), 1, start + 10 * S);
    assert!(h.feed(Input::Due).is_empty());
    h.wait(10 * S);
    assert_eq!(h.feed(Input::Due), vec![Action::PollState]);
}

#[test]
fn an_authorized_instance_is_polled_at_the_poll_interval_and_never_asked_for_a_code() {
    let mut h = Harness::new();
    for _ in 0..100 {
        assert!(h.poll(InstanceState::Authorized).is_empty());
        let gap = h.gap();
        assert!(
            gap >= 54 * S && gap <= 66 * S,
            "gap {gap:?} outside 60s ±10%"
        );
    }
    assert_eq!(h.policy.phase(), &Phase::Watching);
}

#[test]
fn not_authorized_starts_an_episode_with_a_code_request() {
    let mut h = Harness::new();
    assert_eq!(
        h.poll(InstanceState::NotAuthorized),
        vec![Action::RequestCode]
    );
    let expires_at = match h.feed(Input::CodeIssued).as_slice() {
        [Action::DeliverCode { expires_at }] => *expires_at,
        other => panic!("{other:?}"),
    };
    assert_eq!(expires_at, h.now + 150 * S);
    assert!(matches!(
        h.policy.phase(),
        Phase::Linking {
            codes_used: 1,
            code: Some(_),
            ..
        }
    ));
}

#[test]
fn while_a_code_is_valid_polls_run_at_the_linking_interval_and_no_code_is_requested() {
    let mut h = Harness::new();
    let expires_at = h.get_code();
    let mut polls = 0;
    while h.policy.next_at() < expires_at {
        let gap = h.gap();
        assert!(gap <= (55 * S) / 10, "linking gap {gap:?} above 5s +10%");
        assert!(h.poll(InstanceState::NotAuthorized).is_empty());
        polls += 1;
    }
    assert!(polls >= 25, "only {polls} polls while the code was valid");
}

#[test]
fn the_next_code_is_requested_at_expiry_not_before() {
    let mut h = Harness::new();
    let expires_at = h.get_code();
    while h.policy.next_at() < expires_at {
        assert!(h.poll(InstanceState::NotAuthorized).is_empty());
    }
    // The poll lands at expiry (or the 1 s gap after the previous poll), and
    // that poll asks for the next code.
    assert!(h.policy.next_at() >= expires_at);
    assert!(h.policy.next_at() <= expires_at + VENDOR_CALL_INTERVAL);
    assert_eq!(
        h.poll(InstanceState::NotAuthorized),
        vec![Action::RequestCode]
    );
    assert!(h.now >= expires_at);
}

#[test]
fn a_relink_request_never_replaces_a_valid_code() {
    let mut h = Harness::new();
    let expires_at = h.get_code();
    h.wait(10 * S);
    assert!(h.feed(Input::RelinkRequested).is_empty());
    assert!(h.now < expires_at);
    assert!(h.poll(InstanceState::NotAuthorized).is_empty());
}

#[test]
fn the_budget_pauses_the_episode_with_exactly_one_notice() {
    let mut h = Harness::new();
    for _ in 0..3 {
        h.get_code();
    }
    // Third code expires: pause instead of a fourth code.
    let mut notices = Vec::new();
    loop {
        let actions = h.poll(InstanceState::NotAuthorized);
        assert!(
            !actions.contains(&Action::RequestCode),
            "a 4th code was requested"
        );
        notices.extend(actions);
        if matches!(h.policy.phase(), Phase::Paused { .. }) {
            break;
        }
    }
    let until = match notices.as_slice() {
        [Action::Notify(Notice::Paused { until, codes: 3 })] => *until,
        other => panic!("expected one Paused notice, got {other:?}"),
    };
    assert_eq!(until, h.now + 3600 * S);
    // During the pause: polls at the poll interval, no codes, no more notices.
    while h.policy.next_at() < until {
        let gap = h.gap();
        assert!(gap >= 54 * S || h.policy.next_at() == until, "gap {gap:?}");
        assert!(h.poll(InstanceState::NotAuthorized).is_empty());
    }
    // After the cooldown, a fresh budget in the same episode.
    assert_eq!(
        h.poll(InstanceState::NotAuthorized),
        vec![Action::RequestCode]
    );
    assert_eq!(codes_used(&h.policy), 0);
}

#[test]
fn a_relink_request_ends_a_pause_now() {
    let mut h = Harness::with(InstanceSettings {
        codes_per_episode: 1,
        ..settings()
    });
    h.get_code();
    let mut paused = false;
    while !paused {
        let actions = h.poll(InstanceState::NotAuthorized);
        paused = actions
            .iter()
            .any(|a| matches!(a, Action::Notify(Notice::Paused { .. })));
    }
    h.wait(60 * S);
    h.feed(Input::RelinkRequested);
    assert_eq!(h.policy.next_at(), h.now);
    assert_eq!(
        h.poll(InstanceState::NotAuthorized),
        vec![Action::RequestCode]
    );
}

#[test]
fn linking_ends_the_episode_with_one_linked_notice_and_resets_the_budget() {
    let mut h = Harness::new();
    h.get_code();
    h.get_code();
    assert_eq!(
        h.poll(InstanceState::Authorized),
        vec![Action::Notify(Notice::Linked)]
    );
    assert_eq!(h.policy.phase(), &Phase::Watching);
    assert!(h.poll(InstanceState::Authorized).is_empty());
    // A new episode later starts with a full budget.
    assert_eq!(
        h.poll(InstanceState::NotAuthorized),
        vec![Action::RequestCode]
    );
    assert_eq!(codes_used(&h.policy), 0);
}

#[test]
fn linking_during_a_pause_ends_it_with_a_linked_notice() {
    let mut h = Harness::with(InstanceSettings {
        codes_per_episode: 1,
        ..settings()
    });
    h.get_code();
    while !matches!(h.policy.phase(), Phase::Paused { .. }) {
        h.poll(InstanceState::NotAuthorized);
    }
    assert_eq!(
        h.poll(InstanceState::Authorized),
        vec![Action::Notify(Notice::Linked)]
    );
}

#[test]
fn restricted_states_alert_once_and_never_request_codes() {
    for state in [
        InstanceState::Blocked,
        InstanceState::Suspended,
        InstanceState::YellowCard,
    ] {
        let mut h = Harness::new();
        assert_eq!(
            h.poll(state.clone()),
            vec![Action::Notify(Notice::Alert {
                state: state.clone()
            })]
        );
        for _ in 0..10 {
            assert!(h.poll(state.clone()).is_empty());
        }
        // Back to notAuthorized: an ordinary episode.
        assert_eq!(
            h.poll(InstanceState::NotAuthorized),
            vec![Action::RequestCode]
        );
    }
}

#[test]
fn a_restricted_state_during_an_episode_stops_codes() {
    let mut h = Harness::new();
    h.get_code();
    assert_eq!(
        h.poll(InstanceState::Blocked),
        vec![Action::Notify(Notice::Alert {
            state: InstanceState::Blocked
        })]
    );
    h.wait(1000 * S);
    assert!(h.poll(InstanceState::Blocked).is_empty());
    assert_eq!(
        h.poll(InstanceState::Authorized),
        vec![Action::Notify(Notice::Linked)]
    );
}

#[test]
fn starting_sleep_mode_and_unknown_states_never_get_codes() {
    for state in [
        InstanceState::Starting,
        InstanceState::SleepMode,
        InstanceState::Other("pendingCode".into()),
    ] {
        let mut h = Harness::new();
        for _ in 0..10 {
            assert!(h.poll(state.clone()).is_empty(), "{state}");
        }
        // Even mid-episode, after the code expired.
        let expires_at = h.get_code();
        h.now = expires_at;
        for _ in 0..10 {
            assert!(h.poll(state.clone()).is_empty(), "{state}");
        }
    }
}

#[test]
fn poll_errors_back_off_exponentially_up_to_the_cap() {
    let mut h = Harness::new();
    let mut gaps = Vec::new();
    for _ in 0..8 {
        assert_eq!(h.due(), vec![Action::PollState]);
        h.feed(Input::PollFailed { retry_after: None });
        gaps.push(h.gap());
    }
    // 120s, 240s, then the 300s cap (each ±10%).
    assert!(gaps[0] >= 108 * S && gaps[0] <= 132 * S, "{gaps:?}");
    assert!(gaps[1] > gaps[0], "{gaps:?}");
    for gap in &gaps[2..] {
        assert!(*gap >= 270 * S && *gap <= 330 * S, "{gaps:?}");
    }
    // A success resets the backoff.
    h.poll(InstanceState::Authorized);
    assert!(h.gap() <= 66 * S);
}

#[test]
fn errors_never_make_polling_faster_than_the_interval() {
    let mut h = Harness::with(InstanceSettings {
        backoff_max: 10 * S,
        ..settings()
    });
    h.due();
    h.feed(Input::PollFailed { retry_after: None });
    assert!(h.gap() >= 54 * S);
}

#[test]
fn retry_after_is_honoured() {
    let mut h = Harness::new();
    h.due();
    h.feed(Input::PollFailed {
        retry_after: Some(900 * S),
    });
    assert_eq!(h.gap(), 900 * S);
}

#[test]
fn code_refusals_back_off_use_the_budget_and_pause_the_episode() {
    let mut h = Harness::new();
    let mut gaps = Vec::new();
    for _ in 0..3 {
        loop {
            if h.poll(InstanceState::NotAuthorized) == vec![Action::RequestCode] {
                break;
            }
        }
        h.feed(Input::CodeNotIssued);
        gaps.push(h.gap());
    }
    assert!(gaps.windows(2).all(|w| w[1] > w[0]), "{gaps:?}");
    assert_eq!(
        codes_used(&h.policy),
        3,
        "a refusal may still have made a code"
    );
    let mut paused = false;
    for _ in 0..5 {
        let actions = h.poll(InstanceState::NotAuthorized);
        assert!(!actions.contains(&Action::RequestCode));
        paused |= matches!(actions.as_slice(), [Action::Notify(Notice::Paused { .. })]);
    }
    assert!(paused, "the budget was spent");
}

#[test]
fn failed_code_requests_that_may_have_reached_the_vendor_use_the_budget() {
    let mut h = Harness::new();
    assert_eq!(
        h.poll(InstanceState::NotAuthorized),
        vec![Action::RequestCode]
    );
    h.feed(Input::CodeFailed {
        retry_after: None,
        may_have_issued: true,
    });
    assert_eq!(codes_used(&h.policy), 1);
    loop {
        if h.poll(InstanceState::NotAuthorized) == vec![Action::RequestCode] {
            break;
        }
    }
    h.feed(Input::CodeFailed {
        retry_after: None,
        may_have_issued: false,
    });
    assert_eq!(codes_used(&h.policy), 1, "an explicit refusal made no code");
}

#[test]
fn a_restricted_blip_keeps_the_episode_and_its_valid_code() {
    let mut h = Harness::new();
    let expires_at = h.get_code();
    h.wait(10 * S);
    assert_eq!(
        h.poll(InstanceState::Blocked),
        vec![Action::Notify(Notice::Alert {
            state: InstanceState::Blocked
        })]
    );
    // Back to notAuthorized while the code is still valid: no new code.
    while h.policy.next_at() < expires_at {
        assert!(h.poll(InstanceState::NotAuthorized).is_empty());
    }
    assert_eq!(codes_used(&h.policy), 1);
    assert_eq!(
        h.poll(InstanceState::NotAuthorized),
        vec![Action::RequestCode]
    );
}

#[test]
fn leaving_a_restricted_state_is_not_a_relink() {
    let mut h = Harness::new();
    h.poll(InstanceState::Blocked);
    assert!(h.poll(InstanceState::Authorized).is_empty());
}

#[test]
fn a_late_delivery_report_of_an_older_code_is_ignored() {
    let mut h = Harness::new();
    let first = h.get_code();
    h.now = first;
    let second = h.get_code();
    h.feed(Input::CodeDelivered {
        expires_at: first,
        delivered: false,
    });
    assert!(matches!(
        h.policy.phase(),
        Phase::Linking { code: Some(Code { delivered: None, expires_at, .. }), .. } if *expires_at == second
    ));
}

#[test]
fn a_code_issued_outside_an_episode_is_not_delivered() {
    // No episode (linked, or restricted): a code answer that arrives anyway
    // is not delivered and does not start one.
    for state in [InstanceState::Authorized, InstanceState::Blocked] {
        let mut h = Harness::new();
        h.poll(state.clone());
        let before = h.policy.phase().clone();
        assert!(h.feed(Input::CodeIssued).is_empty(), "{state}");
        assert_eq!(h.policy.phase(), &before, "{state}");
        assert!(
            h.gap() >= VENDOR_CALL_INTERVAL,
            "{state}: the next poll is scheduled"
        );
    }
}

#[test]
fn polls_are_never_closer_than_one_second_whatever_the_settings() {
    let mut h = Harness::with(InstanceSettings {
        poll_interval: Duration::from_millis(100),
        linking_poll_interval: Duration::from_millis(10),
        code_ttl: Duration::from_millis(500),
        backoff_max: Duration::from_millis(1),
        ..settings()
    });
    let mut last: Option<Instant> = None;
    for i in 0..200 {
        let actions = h.due();
        assert_eq!(actions, vec![Action::PollState]);
        if let Some(last) = last {
            assert!(
                h.now - last >= VENDOR_CALL_INTERVAL,
                "poll {i} after {:?}",
                h.now - last
            );
        }
        last = Some(h.now);
        let state = if i % 3 == 0 {
            InstanceState::Authorized
        } else {
            InstanceState::NotAuthorized
        };
        match h.feed(Input::Polled(state)).as_slice() {
            [Action::RequestCode] => {
                h.feed(Input::CodeIssued);
            }
            _ => {
                if i % 7 == 0 {
                    h.feed(Input::PollFailed { retry_after: None });
                }
            }
        }
        assert!(h.gap() >= VENDOR_CALL_INTERVAL, "gap {:?} at {i}", h.gap());
    }
}

#[test]
fn new_settings_keep_the_episode_and_shorten_a_long_wait() {
    let mut h = Harness::new();
    h.poll(InstanceState::Authorized);
    assert!(h.gap() >= 54 * S, "the 60 s interval: {:?}", h.gap());
    let fast = InstanceSettings {
        poll_interval: 10 * S,
        ..settings()
    };
    h.policy.update_settings(fast.clone(), h.now);
    assert_eq!(h.policy.settings(), &fast, "the new settings are used");
    assert_eq!(h.gap(), 10 * S, "a long wait is cut to the new interval");
    // A longer interval does not delay what is already due.
    h.wait(3 * S);
    let slow = InstanceSettings {
        poll_interval: 600 * S,
        ..settings()
    };
    h.policy.update_settings(slow, h.now);
    assert_eq!(h.gap(), 7 * S);

    // An episode survives new settings, and its code with it.
    let mut h = Harness::new();
    h.get_code();
    let before = h.policy.phase().clone();
    h.policy.update_settings(fast, h.now);
    assert_eq!(h.policy.phase(), &before);
}

#[test]
fn new_settings_never_cut_a_backoff_or_a_retry_after_short() {
    let mut h = Harness::with(InstanceSettings {
        poll_interval: 5 * S,
        ..settings()
    });
    h.due();
    h.feed(Input::PollFailed {
        retry_after: Some(600 * S),
    });
    assert_eq!(h.gap(), 600 * S);
    h.policy.update_settings(
        InstanceSettings {
            poll_interval: 1 * S,
            ..settings()
        },
        h.now,
    );
    assert_eq!(h.gap(), 600 * S, "a reload cut the vendor's Retry-After");
    // Once a poll succeeds, new settings apply as usual.
    h.poll(InstanceState::Authorized);
    assert_eq!(h.policy.failures(), 0);
}

#[test]
fn failures_count_the_current_streak_of_polls_or_code_requests() {
    let mut h = Harness::new();
    assert_eq!(h.policy.failures(), 0);
    for expected in 1..=3 {
        h.due();
        h.feed(Input::PollFailed { retry_after: None });
        assert_eq!(h.policy.failures(), expected);
    }
    h.poll(InstanceState::NotAuthorized);
    assert_eq!(h.policy.failures(), 0, "a good poll ends the poll streak");
    // The code request fails twice; polls in between succeed.
    h.feed(Input::CodeNotIssued);
    assert_eq!(h.policy.failures(), 1);
    loop {
        if h.poll(InstanceState::NotAuthorized) == vec![Action::RequestCode] {
            break;
        }
    }
    h.feed(Input::CodeFailed {
        retry_after: None,
        may_have_issued: false,
    });
    assert_eq!(h.policy.failures(), 2, "code failures keep counting");
    h.get_code();
    assert_eq!(h.policy.failures(), 0);
}

#[test]
fn the_last_polled_state_is_what_the_policy_observed() {
    let mut h = Harness::new();
    assert_eq!(h.policy.observed(), None);
    h.poll(InstanceState::Starting);
    assert_eq!(h.policy.observed(), Some(&InstanceState::Starting));
    h.due();
    h.feed(Input::PollFailed { retry_after: None });
    assert_eq!(
        h.policy.observed(),
        Some(&InstanceState::Starting),
        "a failed poll observes nothing new"
    );
    h.poll(InstanceState::Authorized);
    assert_eq!(h.policy.observed(), Some(&InstanceState::Authorized));
}

#[test]
fn while_a_poll_or_code_request_is_in_flight_nothing_else_is_due() {
    let mut h = Harness::new();
    assert_eq!(h.due(), vec![Action::PollState]);
    // Until the answer comes the next due moment is the backoff cap away:
    // the answer schedules the real one.
    assert_eq!(h.gap(), 300 * S);
    assert!(h.feed(Input::Due).is_empty(), "not due again at once");
    assert_eq!(
        h.feed(Input::Polled(InstanceState::NotAuthorized)),
        vec![Action::RequestCode]
    );
    assert_eq!(h.gap(), 300 * S, "the code request is in flight");
}

#[test]
fn the_pause_ends_exactly_at_its_end_with_a_fresh_budget() {
    let mut h = Harness::with(InstanceSettings {
        codes_per_episode: 1,
        ..settings()
    });
    h.get_code();
    let until = loop {
        if let [Action::Notify(Notice::Paused { until, .. })] =
            h.poll(InstanceState::NotAuthorized).as_slice()
        {
            break *until;
        }
    };
    assert_eq!(until, h.now + 3600 * S, "paused for the cooldown from now");
    // The last poll of the pause lands on its end, not a jitter after it.
    while h.policy.next_at() < until {
        h.poll(InstanceState::NotAuthorized);
    }
    assert_eq!(h.policy.next_at(), until);
    assert_eq!(
        h.poll(InstanceState::NotAuthorized),
        vec![Action::RequestCode]
    );
    assert_eq!(codes_used(&h.policy), 0);
}

#[test]
fn polls_land_on_a_codes_expiry_and_never_earlier_than_a_second_away() {
    let mut h = Harness::new();
    let expires_at = h.get_code();
    // 5 s linking polls: the one before expiry is cut to land on it.
    while h.policy.next_at() < expires_at {
        h.poll(InstanceState::NotAuthorized);
    }
    assert_eq!(h.policy.next_at(), expires_at);
    // A code about to expire: the next poll is still a second away.
    let mut h = Harness::new();
    let expires_at = h.get_code();
    h.now = expires_at - Duration::from_millis(100);
    h.feed(Input::Polled(InstanceState::NotAuthorized));
    assert_eq!(h.gap(), VENDOR_CALL_INTERVAL);
}

#[test]
fn jitter_stays_within_ten_percent_and_spreads_over_the_range() {
    let mut rng = SmallRng::seed_from_u64(7);
    let base = 100 * S;
    let samples: Vec<f64> = (0..2000)
        .map(|_| jitter(&mut rng, base).as_secs_f64() / base.as_secs_f64())
        .collect();
    assert!(
        samples.iter().all(|f| (0.9..=1.1).contains(f)),
        "out of range"
    );
    let (min, max) = samples
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), f| (lo.min(*f), hi.max(*f)));
    assert!(min < 0.905 && max > 1.095, "spread {min}..{max}");
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    assert!((0.99..1.01).contains(&mean), "mean {mean}");
    // Seeded by the instance id: reproducible per instance, not fleet-wide.
    let draw = |seed| jitter(&mut SmallRng::seed_from_u64(seed), base);
    assert_eq!(draw(1), draw(1));
    assert_ne!(draw(1), draw(2));
}

#[test]
fn a_fleet_of_policies_spreads_its_polls_instead_of_polling_in_step() {
    let now = Instant::now();
    let mut gaps: Vec<Duration> = (0..200u64)
        .map(|id| {
            let mut h = Harness::of(Policy::new(settings(), id, now), now);
            h.poll(InstanceState::Authorized);
            h.gap()
        })
        .collect();
    gaps.sort();
    gaps.dedup();
    assert!(gaps.len() > 190, "only {} distinct gaps in 200", gaps.len());
}

#[test]
fn a_delivery_outcome_is_recorded_on_the_code() {
    let mut h = Harness::new();
    let expires_at = h.get_code();
    h.feed(Input::CodeDelivered {
        expires_at,
        delivered: true,
    });
    assert!(matches!(
        h.policy.phase(),
        Phase::Linking {
            code: Some(Code {
                delivered: Some(true),
                ..
            }),
            ..
        }
    ));
}

#[test]
fn a_restored_episode_waits_out_its_delivered_code_and_keeps_its_budget() {
    let mut h = Harness::new();
    let expires_at = h.get_code();
    h.feed(Input::CodeDelivered {
        expires_at,
        delivered: true,
    });
    let saved = h.policy.persisted().expect("an episode is persisted");
    h.wait(30 * S);
    let mut restored = Harness::of(Policy::restore(settings(), 7, h.now, h.now, saved), h.now);
    while restored.policy.next_at() < expires_at {
        assert!(restored.poll(InstanceState::NotAuthorized).is_empty());
    }
    assert_eq!(
        restored.poll(InstanceState::NotAuthorized),
        vec![Action::RequestCode]
    );
    assert_eq!(codes_used(&restored.policy), 1);
}

#[test]
fn a_restored_undelivered_code_is_not_waited_for() {
    let mut h = Harness::new();
    let expires_at = h.get_code();
    h.feed(Input::CodeDelivered {
        expires_at,
        delivered: false,
    });
    let saved = h.policy.persisted().unwrap();
    let mut restored = Harness::of(Policy::restore(settings(), 7, h.now, h.now, saved), h.now);
    assert_eq!(
        restored.poll(InstanceState::NotAuthorized),
        vec![Action::RequestCode]
    );
}

#[test]
fn a_restored_pause_holds_until_its_end() {
    let mut h = Harness::with(InstanceSettings {
        codes_per_episode: 1,
        ..settings()
    });
    h.get_code();
    while !matches!(h.policy.phase(), Phase::Paused { .. }) {
        h.poll(InstanceState::NotAuthorized);
    }
    let saved = h.policy.persisted().unwrap();
    let Phase::Paused { until, .. } = saved else {
        panic!("{saved:?}")
    };
    let mut restored = Harness::of(Policy::restore(settings(), 7, h.now, h.now, saved), h.now);
    while restored.policy.next_at() < until {
        assert!(restored.poll(InstanceState::NotAuthorized).is_empty());
    }
    assert_eq!(
        restored.poll(InstanceState::NotAuthorized),
        vec![Action::RequestCode]
    );
}

#[test]
fn nothing_is_persisted_for_a_linked_instance_and_an_alert_is_not_repeated_after_a_restart() {
    let mut h = Harness::new();
    h.poll(InstanceState::Authorized);
    assert_eq!(h.policy.persisted(), None);
    h.poll(InstanceState::Blocked);
    let saved = h.policy.persisted().expect("the alert is remembered");
    let mut restored = Harness::of(Policy::restore(settings(), 7, h.now, h.now, saved), h.now);
    assert!(
        restored.poll(InstanceState::Blocked).is_empty(),
        "told once"
    );
    assert_eq!(
        restored.poll(InstanceState::Suspended),
        vec![Action::Notify(Notice::Alert {
            state: InstanceState::Suspended
        })]
    );
}

#[test]
fn a_restored_file_cannot_stretch_a_code_a_pause_or_an_episode() {
    let now = Instant::now();
    let far = now + 30 * 86_400 * S;
    let code = Phase::Linking {
        started: far,
        codes_used: 1,
        code: Some(Code {
            expires_at: far,
            delivered: Some(true),
        }),
    };
    let restored = Policy::restore(settings(), 1, now, now, code);
    assert_eq!(
        restored.phase(),
        &Phase::Linking {
            started: now,
            codes_used: 1,
            code: Some(Code {
                expires_at: now + 150 * S,
                delivered: Some(true),
            }),
        }
    );
    let pause = Phase::Paused {
        started: far,
        until: far,
        codes_used: 3,
    };
    let restored = Policy::restore(settings(), 1, now, now, pause);
    assert_eq!(
        restored.phase(),
        &Phase::Paused {
            started: now,
            until: now + 3600 * S,
            codes_used: 3,
        }
    );
    // Times within the bounds are kept as saved.
    let soon = Phase::Paused {
        started: now - 60 * S,
        until: now + 60 * S,
        codes_used: 3,
    };
    let restored = Policy::restore(settings(), 1, now, now, soon.clone());
    assert_eq!(restored.phase(), &soon);
}

#[test]
fn a_state_other_than_unlinked_at_a_codes_expiry_does_not_hurry_the_next_poll() {
    let mut h = Harness::new();
    let expires_at = h.get_code();
    h.now = expires_at;
    assert!(h.feed(Input::Polled(InstanceState::Starting)).is_empty());
    let gap = h.gap();
    assert!(gap >= 4 * S, "the linking interval, not a second: {gap:?}");
}

#[test]
fn a_pause_about_to_end_is_still_polled_no_sooner_than_a_second_away() {
    let mut h = Harness::with(InstanceSettings {
        codes_per_episode: 1,
        ..settings()
    });
    h.get_code();
    let until = loop {
        if let [Action::Notify(Notice::Paused { until, .. })] =
            h.poll(InstanceState::NotAuthorized).as_slice()
        {
            break *until;
        }
    };
    h.now = until - Duration::from_millis(500);
    assert!(
        h.feed(Input::Polled(InstanceState::NotAuthorized))
            .is_empty()
    );
    assert_eq!(h.gap(), VENDOR_CALL_INTERVAL);
}
