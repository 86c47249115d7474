//! When things happen: pacing, settings changes, jitter, late reports.

use super::*;

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
    // 5 s linking polls: the one before expiry is cut to land on it, or a
    // second after the last poll if that came within a second of it.
    while h.policy.next_at() < expires_at {
        h.poll(InstanceState::NotAuthorized);
    }
    assert_eq!(
        h.policy.next_at(),
        expires_at.max(h.now + VENDOR_CALL_INTERVAL)
    );
    assert!(h.policy.next_at() - expires_at <= VENDOR_CALL_INTERVAL);
    // A code about to expire: the next poll is still a second away.
    let mut h = Harness::new();
    let expires_at = h.get_code();
    h.now = expires_at - Duration::from_millis(100);
    h.feed(Input::Polled(InstanceState::NotAuthorized));
    assert_eq!(h.gap(), VENDOR_CALL_INTERVAL);
}

#[test]
fn backoff_jitter_stays_within_ten_percent_and_spreads_over_the_range() {
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
fn a_poll_comes_at_most_its_interval_after_the_last_and_at_least_99_5_percent_of_it() {
    let now = Instant::now();
    let gaps: Vec<Duration> = (0..500u64)
        .map(|id| {
            let mut h = Harness::of(Policy::new(settings(), id, now), now);
            h.poll(InstanceState::Authorized);
            h.gap()
        })
        .collect();
    let interval = settings().poll_interval;
    assert!(
        gaps.iter().all(|g| *g <= interval),
        "a poll later than its interval"
    );
    assert!(
        gaps.iter().all(|g| *g >= interval.mul_f64(0.995)),
        "a poll too early"
    );
    let earliest = gaps.iter().min().unwrap();
    assert!(
        *earliest < interval.mul_f64(0.9955),
        "spread only down to {earliest:?}"
    );
}

#[test]
fn a_fleet_started_evenly_keeps_every_second_near_the_mean_over_its_next_rounds() {
    // The fleet spreads first polls evenly over one interval; if later gaps
    // were much shorter than the interval on average, second polls would
    // crowd onto the end of the first round.
    let start = Instant::now();
    let interval = settings().poll_interval;
    let rounds = 4;
    let fleet = 3000u64;
    let mut per_second = vec![0u32; (rounds * interval.as_secs()) as usize];
    for id in 0..fleet {
        let first = start + interval.mul_f64(id as f64 / fleet as f64);
        let mut h = Harness::of(Policy::new(settings(), id, first), start);
        loop {
            h.poll(InstanceState::Authorized);
            let Some(slot) = per_second.get_mut((h.now - start).as_secs() as usize) else {
                break;
            };
            *slot += 1;
        }
    }
    let mean = fleet as f64 / interval.as_secs_f64();
    let busiest = *per_second.iter().max().unwrap() as f64;
    assert!(
        busiest / mean < 1.3,
        "the busiest second holds {:.2} x the mean",
        busiest / mean
    );
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
