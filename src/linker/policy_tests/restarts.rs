//! A restored episode, and what a state file may not stretch.

use super::*;

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

fn rebooting(after: Duration) -> InstanceSettings {
    InstanceSettings {
        reboot_stuck_after: Some(after),
        ..settings()
    }
}

#[test]
fn a_restart_does_not_reboot_an_instance_again_within_the_cooldown() {
    let settings = rebooting(60 * S);
    let mut h = Harness::with(settings.clone());
    let start = h.now;
    let seen = reboots::polls_until(&mut h, InstanceState::Starting, start + 5 * 60 * S);
    let first = seen
        .iter()
        .find(|(_, a)| a.contains(&Action::Reboot))
        .expect("rebooted")
        .0;
    // Restarted (the policy rebuilt from what was saved): still `starting`.
    let saved = h.policy.reboots().last_reboot;
    h.wait(30 * S);
    let fresh = Policy::new(settings.clone(), 7, h.now).with_last_reboot(saved, h.now);
    let mut restarted = Harness::of(fresh, h.now);
    let seen = reboots::polls_until(
        &mut restarted,
        InstanceState::Starting,
        first + 3 * 3600 * S,
    );
    let again: Vec<Instant> = seen
        .iter()
        .filter(|(_, a)| a.contains(&Action::Reboot))
        .map(|(at, _)| *at)
        .collect();
    assert!(!again.is_empty(), "rebooted again after the cooldown");
    assert!(again[0] - first >= 3600 * S, "{:?}", again[0] - first);
    // Without what was saved it would have rebooted within minutes.
    let mut forgetful = Harness::of(Policy::new(settings, 7, h.now), h.now);
    let seen = reboots::polls_until(&mut forgetful, InstanceState::Starting, h.now + 5 * 60 * S);
    assert!(seen.iter().any(|(_, a)| a.contains(&Action::Reboot)));
}

#[test]
fn a_restart_starts_the_wait_of_a_stuck_instance_again_rather_than_hastening_its_reboot() {
    let settings = rebooting(10 * 60 * S);
    let mut h = Harness::with(settings.clone());
    let start = h.now;
    assert!(reboots::polls_until(&mut h, InstanceState::Starting, start + 8 * 60 * S).is_empty());
    // Restarted after a long stop: what it was doing meanwhile is unknown.
    h.wait(3 * 3600 * S);
    let restarted_at = h.now;
    let restored =
        Policy::new(settings, 7, h.now).with_last_reboot(h.policy.reboots().last_reboot, h.now);
    let mut restarted = Harness::of(restored, h.now);
    let seen = reboots::polls_until(
        &mut restarted,
        InstanceState::Starting,
        restarted_at + 13 * 60 * S,
    );
    let at = seen
        .iter()
        .find(|(_, a)| a.contains(&Action::Reboot))
        .expect("rebooted ten minutes after it was seen starting again")
        .0;
    assert!(at - restarted_at >= 10 * 60 * S, "{:?}", at - restarted_at);
}

#[test]
fn restored_reboot_times_are_never_later_than_now() {
    let now = Instant::now();
    let far = now + 30 * 86_400 * S;
    let restored = Policy::new(rebooting(60 * S), 1, now).with_last_reboot(Some(far), now);
    assert_eq!(
        restored.reboots(),
        Reboots {
            starting_since: None,
            last_reboot: Some(now),
        }
    );
}
