//! Opt-in reboots of an instance stuck in `starting`.

use super::*;

const MIN: Duration = Duration::from_secs(60);

fn rebooting_after(after: Duration) -> Harness {
    Harness::with(InstanceSettings {
        reboot_stuck_after: Some(after),
        ..settings()
    })
}

/// Polls `state` until `until`, answering every `Reboot` with `answer`; the
/// actions other than none, with when (a reboot's answer's actions follow
/// it in the same entry).
fn polls_answering(
    h: &mut Harness,
    state: InstanceState,
    until: Instant,
    answer: impl Fn() -> Input,
) -> Vec<(Instant, Vec<Action>)> {
    let mut seen = Vec::new();
    while h.now < until {
        let mut actions = h.poll(state.clone());
        if actions.contains(&Action::Reboot) {
            actions.extend(h.feed(answer()));
        }
        if !actions.is_empty() {
            seen.push((h.now, actions));
        }
    }
    seen
}

/// Polls `state` until `until`; every reboot succeeds.
pub(super) fn polls_until(
    h: &mut Harness,
    state: InstanceState,
    until: Instant,
) -> Vec<(Instant, Vec<Action>)> {
    polls_answering(h, state, until, || Input::Rebooted)
}

fn reboot_times(seen: &[(Instant, Vec<Action>)]) -> Vec<Instant> {
    seen.iter()
        .filter(|(_, a)| a.contains(&Action::Reboot))
        .map(|(at, _)| *at)
        .collect()
}

#[test]
fn an_instance_starting_too_long_is_rebooted_once_with_one_notice() {
    let mut h = rebooting_after(10 * MIN);
    let start = h.now;
    let seen = polls_until(&mut h, InstanceState::Starting, start + 30 * MIN);
    assert_eq!(seen.len(), 1, "{seen:?}");
    let (at, actions) = &seen[0];
    assert!(
        *at >= start + 10 * MIN && *at <= start + 12 * MIN,
        "{:?}",
        *at - start
    );
    assert_eq!(actions.len(), 2, "{actions:?}");
    assert_eq!(actions[0], Action::Reboot);
    assert!(matches!(
        actions[1],
        Action::Notify(Notice::Rebooting { stuck_for }) if stuck_for >= 10 * MIN
    ));
}

#[test]
fn the_reboot_notice_waits_for_the_vendor_to_confirm_it() {
    let mut h = rebooting_after(10 * MIN);
    let start = h.now;
    loop {
        let actions = h.poll(InstanceState::Starting);
        if !actions.is_empty() {
            assert_eq!(actions, vec![Action::Reboot], "no notice before the answer");
            break;
        }
        assert!(h.now < start + 20 * MIN, "no reboot");
    }
    let told = h.feed(Input::Rebooted);
    assert!(
        matches!(told.as_slice(), [Action::Notify(Notice::Rebooting { .. })]),
        "{told:?}"
    );
}

#[test]
fn a_refused_reboot_is_not_announced_does_not_start_the_cooldown_and_is_retried_at_the_backoff() {
    let mut h = rebooting_after(10 * MIN);
    let start = h.now;
    // Refused twice, then failing with a Retry-After, then confirmed.
    let answers = std::cell::RefCell::new(
        vec![
            Input::Rebooted,
            Input::RebootFailed {
                retry_after: Some(7 * MIN),
                may_have_rebooted: false,
            },
            Input::RebootFailed {
                retry_after: None,
                may_have_rebooted: false,
            },
            Input::RebootFailed {
                retry_after: None,
                may_have_rebooted: false,
            },
        ]
        .into_iter()
        .collect::<Vec<_>>(),
    );
    let seen = polls_answering(&mut h, InstanceState::Starting, start + 60 * MIN, || {
        answers
            .borrow_mut()
            .pop()
            .expect("no more reboots than answers")
    });
    let reboots = reboot_times(&seen);
    assert_eq!(reboots.len(), 4, "retried until confirmed: {seen:?}");
    let gaps: Vec<Duration> = reboots.windows(2).map(|p| p[1] - p[0]).collect();
    // The error backoff from the 60 s poll interval: ×2 per failure, ±10%,
    // capped at backoff_max (300 s); a Retry-After is honoured.
    assert!(gaps[0] >= 108 * S && gaps[0] <= 132 * S, "{gaps:?}");
    assert!(gaps[1] >= 216 * S && gaps[1] <= 300 * S, "{gaps:?}");
    assert!(gaps[2] >= 7 * MIN, "{gaps:?}");
    let notices: Vec<&Action> = seen
        .iter()
        .flat_map(|(_, a)| a)
        .filter(|a| matches!(a, Action::Notify(_)))
        .collect();
    assert_eq!(
        notices.len(),
        1,
        "only the confirmed reboot is told: {seen:?}"
    );
    assert!(seen.last().unwrap().1.contains(notices[0]));
    // The cooldown runs from the confirmed reboot.
    assert_eq!(h.policy.reboots().last_reboot, Some(reboots[3]));
}

#[test]
fn a_reboot_that_may_have_happened_is_not_announced_and_starts_the_cooldown() {
    // A timeout or a server error: the vendor may have rebooted it, and a
    // rebooted instance is `starting` for minutes; asking again at the
    // backoff could reboot it again and again.
    let mut h = rebooting_after(10 * MIN);
    let start = h.now;
    let seen = polls_answering(
        &mut h,
        InstanceState::Starting,
        start + 3 * 60 * MIN,
        || Input::RebootFailed {
            retry_after: None,
            may_have_rebooted: true,
        },
    );
    let reboots = reboot_times(&seen);
    assert!(
        reboots.len() >= 2,
        "asked again after the cooldown: {seen:?}"
    );
    assert!(reboots[1] - reboots[0] >= 60 * MIN, "{reboots:?}");
    assert!(
        !seen
            .iter()
            .flat_map(|(_, a)| a)
            .any(|a| matches!(a, Action::Notify(_))),
        "nothing is announced: {seen:?}"
    );
}

#[test]
fn a_second_reboot_waits_for_the_cooldown() {
    let mut h = rebooting_after(10 * MIN);
    let start = h.now;
    let seen = polls_until(&mut h, InstanceState::Starting, start + 150 * MIN);
    let reboots: Vec<Duration> = reboot_times(&seen).iter().map(|at| *at - start).collect();
    // The first after 10 minutes; each next no sooner than the 1 h cooldown.
    assert_eq!(reboots.len(), 3, "{reboots:?}");
    for pair in reboots.windows(2) {
        assert!(pair[1] - pair[0] >= 60 * MIN, "{reboots:?}");
    }
}

#[test]
fn starting_that_ends_in_time_is_not_rebooted_and_the_count_starts_again() {
    let mut h = rebooting_after(10 * MIN);
    let start = h.now;
    assert!(polls_until(&mut h, InstanceState::Starting, start + 8 * MIN).is_empty());
    assert!(h.poll(InstanceState::Authorized).is_empty());
    let again = h.now;
    assert!(polls_until(&mut h, InstanceState::Starting, again + 8 * MIN).is_empty());
}

#[test]
fn no_other_state_is_ever_rebooted_nor_without_the_setting() {
    for state in [
        InstanceState::SleepMode,
        InstanceState::YellowCard,
        InstanceState::Authorized,
        InstanceState::NotAuthorized,
        InstanceState::Blocked,
        InstanceState::Suspended,
        InstanceState::parse("somethingNew"),
    ] {
        let mut h = rebooting_after(10 * MIN);
        let until = h.now + 120 * MIN;
        let mut seen = Vec::new();
        while h.now < until {
            let actions = h.poll(state.clone());
            // A code request is answered, so the episode goes on (codes,
            // then a pause) for the whole two hours.
            if actions.contains(&Action::RequestCode) {
                seen.extend(h.feed(Input::CodeIssued));
            }
            seen.extend(actions);
        }
        assert!(!seen.contains(&Action::Reboot), "{state:?}: {seen:?}");
    }
    let mut h = Harness::new();
    let until = h.now + 120 * MIN;
    assert!(polls_until(&mut h, InstanceState::Starting, until).is_empty());
}
