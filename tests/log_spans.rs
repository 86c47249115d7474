//! Which lines carry the instance's span. Alone in its own test binary:
//! beside the tests of `linking.rs`, run in parallel and without a
//! subscriber of their own, the span was missing from this test's captured
//! lines every time (never with `--test-threads=1`), presumably through
//! tracing's process-wide cache of each callsite's interest; the cause was
//! not pinned down.

mod common;

use common::*;

const LINKING: &str = "poll_interval = \"60s\"\nlinking_poll_interval = \"5s\"\n\
                       code_ttl = \"150s\"\ncodes_per_episode = 3\ncooldown = \"1h\"";

#[tokio::test(start_paused = true)]
async fn what_a_poll_finds_is_logged_in_the_instances_span_though_routine_polls_make_none() {
    let (capture, _guard) = capture_logs();
    let s = Scenario::new(&["authorized"])
        .defaults(LINKING)
        .start()
        .await;
    // Several routine polls, then the instance falls out of its link.
    wait(secs(200)).await;
    s.sim.logout(FIRST_ID);
    wait(secs(70)).await;
    assert_eq!(s.hook.events("code").len(), 1, "the scenario ran");
    let logs = captured(&capture);
    for message in ["instance state changed", "linking code received"] {
        let line = logs
            .lines()
            .find(|l| l.contains(message))
            .unwrap_or_else(|| panic!("no {message:?} line in:\n{logs}"));
        assert!(
            line.contains("supervisor{wa_instance=1101000001 instance=line-0}"),
            "{line}"
        );
    }
}
