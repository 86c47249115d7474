//! What an operator sees while a delivery fails, not only after: each
//! failed attempt in the log (a few lines a minute per channel, with the
//! real reason), each instance's last error per channel in the status, and
//! a line when things work again.

mod common;

use common::*;
use relinkd::sim::{Fault, FaultKind};

fn lines_with<'a>(logs: &'a str, needle: &str) -> Vec<&'a str> {
    logs.lines().filter(|l| l.contains(needle)).collect()
}

#[tokio::test(start_paused = true)]
async fn a_failing_channel_logs_its_attempts_with_the_real_reason_a_few_lines_a_minute() {
    let (capture, _guard) = capture_logs();
    let s = Scenario::new(&["notAuthorized"; 4])
        .vendor_code_ttl(secs(150))
        .prepare(|_, hook| hook.fail_for(secs(100), 503))
        .start()
        .await;
    wait(secs(90)).await;
    let logs = captured(&capture);
    let attempts = s.hook.all().len();
    let lines = lines_with(&logs, "delivery attempt failed");
    // Four codes retried for 90 s: far more attempts than lines, and no
    // more than 5 lines in each of the two minutes begun.
    assert!(attempts >= 20, "{attempts} attempts");
    assert!(
        (5..=10).contains(&lines.len()),
        "{} lines:\n{}",
        lines.len(),
        lines.join("\n")
    );
    let first = lines[0];
    for field in [
        "channel=\"hook\"",
        "attempt=1",
        "reason=\"server\"",
        "detail=\"HTTP 503\"",
        "retry_in=",
        "supervisor{wa_instance=",
        "instance=line-",
    ] {
        assert!(first.contains(field), "{field} missing in: {first}");
    }
    assert!(
        lines.iter().any(|l| !l.contains("suppressed=0")),
        "the lines held back are counted:\n{}",
        lines.join("\n")
    );

    // The hook answers again: one line says the channel recovered.
    wait(secs(60)).await;
    let logs = captured(&capture);
    let recovered = lines_with(&logs, "channel delivers again");
    assert_eq!(recovered.len(), 1, "{logs}");
    assert!(
        recovered[0].contains("failed_attempts="),
        "{}",
        recovered[0]
    );
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_status_shows_a_channels_last_error_while_it_fails_and_drops_it_once_it_delivers() {
    let s = Scenario::new(&["notAuthorized"])
        .vendor_code_ttl(secs(150))
        .prepare(|_, hook| hook.fail_for(secs(20), 503))
        .start()
        .await;
    wait(secs(8)).await;
    let status = s.daemon.instance_status(FIRST_ID).await;
    let failed = &status["delivery_errors"]["hook"];
    assert_eq!(failed["error"], "server (HTTP 503)", "{status}");
    assert!(failed["attempt"].as_u64().unwrap() >= 2, "{status}");
    assert!(failed["at"].as_str().unwrap().ends_with('Z'), "{status}");

    wait(secs(60)).await;
    assert_eq!(s.hook.codes().len(), 1, "delivered once the hook answered");
    let status = s.daemon.instance_status(FIRST_ID).await;
    assert_eq!(status["delivery_errors"], serde_json::json!({}), "{status}");
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn polls_that_work_again_after_failing_say_so_once() {
    let (capture, _guard) = capture_logs();
    let s = Scenario::new(&["authorized"])
        .defaults("poll_interval = \"10s\"\nbackoff_max = \"20s\"")
        .start()
        .await;
    s.sim.set_fault(
        FIRST_ID,
        Fault::new(FaultKind::Status {
            code: 502,
            body: "bad gateway".into(),
        })
        .times(3),
    );
    wait(secs(120)).await;
    let logs = captured(&capture);
    assert_eq!(lines_with(&logs, "state poll failed").len(), 3, "{logs}");
    let recovered = lines_with(&logs, "state polls succeed again");
    assert_eq!(recovered.len(), 1, "{logs}");
    assert!(recovered[0].contains("failures=3"), "{}", recovered[0]);
    s.stop().await;
}
