//! Opt-in reboots of an instance stuck in `starting`.

use super::*;

const MIN: Duration = Duration::from_secs(60);

fn rebooting_after(after: Duration) -> Harness {
    Harness::with(InstanceSettings {
        reboot_stuck_after: Some(after),
        ..settings()
    })
}

/// Polls `state` until `until`; the actions other than none, with when.
fn polls_until(
    h: &mut Harness,
    state: InstanceState,
    until: Instant,
) -> Vec<(Instant, Vec<Action>)> {
    let mut seen = Vec::new();
    while h.now < until {
        let actions = h.poll(state.clone());
        if !actions.is_empty() {
            seen.push((h.now, actions));
        }
    }
    seen
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
    assert_eq!(actions[0], Action::Reboot);
    assert!(matches!(
        actions[1],
        Action::Notify(Notice::Rebooting { stuck_for }) if stuck_for >= 10 * MIN
    ));
}

#[test]
fn a_second_reboot_waits_for_the_cooldown() {
    let mut h = rebooting_after(10 * MIN);
    let start = h.now;
    let seen = polls_until(&mut h, InstanceState::Starting, start + 150 * MIN);
    let reboots: Vec<Duration> = seen
        .iter()
        .filter(|(_, a)| a.contains(&Action::Reboot))
        .map(|(at, _)| *at - start)
        .collect();
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
    ] {
        let mut h = rebooting_after(10 * MIN);
        let until = h.now + 120 * MIN;
        let seen = polls_until(&mut h, state.clone(), until);
        assert!(
            seen.iter().all(|(_, a)| !a.contains(&Action::Reboot)),
            "{state:?}: {seen:?}"
        );
    }
    let mut h = Harness::new();
    let until = h.now + 120 * MIN;
    assert!(polls_until(&mut h, InstanceState::Starting, until).is_empty());
}
