//! Episodes: codes, their budget, pauses, relinks and restricted states.

use super::*;

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
