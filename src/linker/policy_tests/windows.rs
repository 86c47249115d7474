//! Linking windows: no codes outside them, one notice each way, decided
//! from the calendar at each step (never from a remembered edge).

use std::sync::Arc;
use std::time::SystemTime;

use super::*;
use crate::calendar::{Calendar, IntervalSpec, TimeInterval};
use crate::clock;

const MIN: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// The UTC `(year, month, day, "HH:MM")` of `at`, rounded up to a minute.
fn utc_minute(at: SystemTime) -> (String, String, String, String) {
    let ts = jiff::Timestamp::try_from(at).unwrap();
    let ts = ts
        .round(
            jiff::TimestampRound::new()
                .smallest(jiff::Unit::Minute)
                .mode(jiff::RoundMode::Ceil),
        )
        .unwrap();
    let dt = ts.to_zoned_datetime(jiff::tz::TimeZone::UTC).datetime();
    (
        dt.year().to_string(),
        dt.month().to_string(),
        dt.day().to_string(),
        format!("{:02}:{:02}", dt.hour(), dt.minute()),
    )
}

/// A calendar open only from `from` to `to` (UTC, whole minutes, `from`
/// rounded up), at most a day apart: one interval per UTC day it spans.
fn open_between(from: SystemTime, to: SystemTime) -> Calendar {
    Calendar::new(windows_between(from, to))
}

/// The intervals of [`open_between`].
fn windows_between(from: SystemTime, to: SystemTime) -> Vec<Arc<TimeInterval>> {
    let (y1, m1, d1, t1) = utc_minute(from);
    let (y2, m2, d2, t2) = utc_minute(to);
    let day = |y: &str, m: &str, d: &str, start: &str, end: &str| {
        let spec = IntervalSpec {
            name: "window",
            times: vec![(start, end)],
            days_of_month: vec![d],
            months: vec![m],
            years: vec![y],
            ..IntervalSpec::default()
        };
        Arc::new(TimeInterval::parse(&spec).unwrap())
    };
    if (&y1, &m1, &d1) == (&y2, &m2, &d2) {
        vec![day(&y1, &m1, &d1, &t1, &t2)]
    } else {
        let mut windows = vec![day(&y1, &m1, &d1, &t1, "24:00")];
        if t2 != "00:00" {
            windows.push(day(&y2, &m2, &d2, "00:00", &t2));
        }
        windows
    }
}

/// A harness whose instance may get codes only from `from` to `to` after
/// now.
fn open_from(from: Duration, to: Duration) -> Harness {
    let start = clock::wall(Instant::now());
    Harness::with(InstanceSettings {
        linking_windows: open_between(start + from, start + to),
        ..settings()
    })
}

fn waiting_notice(actions: &[Action]) -> Option<Instant> {
    match actions {
        [Action::Notify(Notice::WaitingForWindow { opens })] => *opens,
        other => panic!("expected one WaitingForWindow notice, got {other:?}"),
    }
}

#[test]
fn outside_every_window_an_unlinked_instance_gets_one_notice_and_no_code() {
    let mut h = open_from(2 * HOUR, 3 * HOUR);
    let opens = waiting_notice(&h.poll(InstanceState::NotAuthorized)).expect("a window opens");
    let until_open = opens - h.now;
    assert!(
        until_open > 2 * HOUR - MIN && until_open <= 2 * HOUR + MIN,
        "{until_open:?}"
    );
    assert!(matches!(h.policy.phase(), Phase::Waiting { .. }));
    // An hour of polls: no second notice, no code.
    let deadline = h.now + HOUR;
    while h.now < deadline {
        assert!(h.poll(InstanceState::NotAuthorized).is_empty());
    }
}

#[test]
fn a_window_opening_resumes_with_one_notice_and_a_code_at_its_start() {
    let mut h = open_from(2 * HOUR, 3 * HOUR);
    let opens = waiting_notice(&h.poll(InstanceState::NotAuthorized)).unwrap();
    loop {
        let actions = h.poll(InstanceState::NotAuthorized);
        if !actions.is_empty() {
            assert_eq!(
                actions,
                vec![Action::Notify(Notice::Resumed), Action::RequestCode]
            );
            break;
        }
        assert!(h.now < opens, "no code at the window's start");
    }
    // The poll came at the window's start, not a poll interval later.
    assert!(h.now >= opens && h.now - opens < S, "{:?}", h.now - opens);
    assert_eq!(codes_used(&h.policy), 0);
}

#[test]
fn a_code_outstanding_when_the_window_closes_is_left_to_expire_and_none_follows() {
    // Open now, closing within two minutes (rounded up to a whole minute):
    // before the code expires at 2.5 minutes.
    let start = clock::wall(Instant::now());
    let mut h = Harness::with(InstanceSettings {
        linking_windows: open_between(start - 2 * MIN, start + MIN),
        ..settings()
    });
    let expires_at = h.get_code();
    loop {
        let actions = h.poll(InstanceState::NotAuthorized);
        if h.now < expires_at {
            assert!(actions.is_empty(), "{actions:?} while the code is valid");
            continue;
        }
        // The code expired outside the window: a notice, no new code; no
        // window opens again.
        assert_eq!(waiting_notice(&actions), None);
        break;
    }
    for _ in 0..10 {
        assert!(h.poll(InstanceState::NotAuthorized).is_empty());
    }
}

#[test]
fn a_relink_allows_one_code_outside_the_windows() {
    let mut h = open_from(5 * HOUR, 6 * HOUR);
    waiting_notice(&h.poll(InstanceState::NotAuthorized));
    h.wait(10 * S);
    assert!(h.feed(Input::RelinkRequested).is_empty());
    let expires_at = h.get_code();
    h.wait(expires_at - h.now);
    // The next code would be outside the windows again: a notice instead.
    let actions = h.poll(InstanceState::NotAuthorized);
    assert!(waiting_notice(&actions).is_some());
}

#[test]
fn a_missed_edge_cannot_strand_an_instance() {
    let mut h = open_from(HOUR, 3 * HOUR);
    waiting_notice(&h.poll(InstanceState::NotAuthorized));
    // The timer for the window's start never fired: the next poll comes
    // half an hour into the window, and the calendar says it is open.
    h.wait(90 * MIN);
    assert_eq!(h.feed(Input::Due), vec![Action::PollState]);
    assert_eq!(
        h.feed(Input::Polled(InstanceState::NotAuthorized)),
        vec![Action::Notify(Notice::Resumed), Action::RequestCode]
    );
}

#[test]
fn a_wait_survives_a_restart_without_a_second_notice() {
    let mut h = open_from(2 * HOUR, 3 * HOUR);
    let settings = h.policy.settings().clone();
    waiting_notice(&h.poll(InstanceState::NotAuthorized));
    let saved = h.policy.persisted().unwrap();
    let restarted = Policy::restore(settings, 42, h.now, h.now, saved);
    assert!(
        matches!(restarted.phase(), Phase::Waiting { opens: Some(_), .. }),
        "{:?}",
        restarted.phase()
    );
    let mut h = Harness::of(restarted, h.now);
    assert!(h.poll(InstanceState::NotAuthorized).is_empty());
}

#[test]
fn a_linked_instance_ends_the_wait_with_a_linked_notice() {
    let mut h = open_from(2 * HOUR, 3 * HOUR);
    waiting_notice(&h.poll(InstanceState::NotAuthorized));
    assert_eq!(
        h.poll(InstanceState::Authorized),
        vec![Action::Notify(Notice::Linked)]
    );
    assert_eq!(h.policy.phase(), &Phase::Watching);
}

/// Spends a one-code budget under `windows`: the code, its expiry, and the
/// one `paused` notice, whose end is returned.
fn pause_after_one_code(windows: Calendar) -> (Harness, Instant) {
    let mut h = Harness::with(InstanceSettings {
        codes_per_episode: 1,
        linking_windows: windows,
        ..settings()
    });
    let expires_at = h.get_code();
    h.wait(expires_at - h.now);
    let paused = h.poll(InstanceState::NotAuthorized);
    let [Action::Notify(Notice::Paused { until, .. })] = paused.as_slice() else {
        panic!("{paused:?}")
    };
    let until = *until;
    (h, until)
}

#[test]
fn a_budget_pause_ending_outside_the_windows_resumes_at_the_next_window_with_one_notice() {
    // Open for the first 30 minutes and again from the 3rd hour; the 1 h
    // cooldown ends in between.
    let start = clock::wall(Instant::now());
    let mut windows = windows_between(start - MIN, start + 30 * MIN);
    windows.extend(windows_between(start + 3 * HOUR, start + 4 * HOUR));
    let (mut h, until) = pause_after_one_code(Calendar::new(windows));
    let resumes = until - h.now;
    let second_opens = clock::instant(start + 3 * HOUR);
    assert!(
        until
            .max(second_opens)
            .saturating_duration_since(until.min(second_opens))
            < MIN,
        "resumes_at is the next window's start, {resumes:?} from now"
    );
    // No second (window) notice: the next actions are the code, at the
    // window's start.
    loop {
        let actions = h.poll(InstanceState::NotAuthorized);
        if !actions.is_empty() {
            assert_eq!(actions, vec![Action::RequestCode]);
            break;
        }
    }
    assert!(h.now >= until && h.now - until < S, "{:?}", h.now - until);
}

#[test]
fn a_budget_pause_ending_inside_a_window_keeps_the_cooldown() {
    let (h, until) = pause_after_one_code(open_between(
        clock::wall(Instant::now()) - MIN,
        clock::wall(Instant::now()) + 20 * HOUR,
    ));
    assert_eq!(until - h.now, HOUR);
}

#[test]
fn a_restored_pause_may_last_until_the_window_after_its_cooldown_but_no_longer() {
    let start = clock::wall(Instant::now());
    let settings = InstanceSettings {
        linking_windows: open_between(start + 3 * HOUR, start + 4 * HOUR),
        ..settings()
    };
    let now = Instant::now();
    let saved = Phase::Paused {
        started: now,
        until: now + 30 * 86_400 * S,
        codes_used: 3,
    };
    let restored = Policy::restore(settings, 1, now, now, saved);
    let Phase::Paused { until, .. } = restored.phase() else {
        panic!("{:?}", restored.phase())
    };
    let opens = clock::instant(start + 3 * HOUR);
    assert!(
        *until >= opens - MIN && *until <= opens + MIN,
        "{:?} from now",
        *until - now
    );
}
