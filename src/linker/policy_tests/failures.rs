//! Failed polls and code requests: backoff, Retry-After, the budget.

use super::*;

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
