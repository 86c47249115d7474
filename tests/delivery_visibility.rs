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
async fn a_failing_channel_logs_its_attempts_and_give_ups_with_the_real_reason_a_few_lines_a_minute()
 {
    let (capture, _guard) = capture_logs();
    // Eight codes, each given up when it expires at 150 s: more give-ups
    // than a minute's lines.
    let s = Scenario::new(&["notAuthorized"; 8])
        .vendor_code_ttl(secs(150))
        .prepare(|_, hook| hook.fail_for(secs(200), 503))
        .start()
        .await;
    wait(secs(90)).await;
    let logs = captured(&capture);
    let attempts = s.hook.all().len();
    let lines = lines_with(&logs, "delivery attempt failed");
    // Eight codes retried for 90 s: far more attempts than lines, and no
    // more than 5 lines in each of the two minutes begun.
    assert!(attempts >= 40, "{attempts} attempts");
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
    assert!(lines_with(&logs, "notification not delivered").is_empty());

    // Every code expires within the same minute: all are counted, at most
    // 5 are logged, each with the real reason.
    wait(secs(80)).await;
    let logs = captured(&capture);
    let gave_up = lines_with(&logs, "notification not delivered");
    let failed = s
        .daemon
        .metric(
            "relinkd_deliveries_total",
            &delivery("hook", "failure", "server"),
        )
        .await;
    assert_eq!(failed, Some(8.0), "every give-up is counted");
    assert_eq!(gave_up.len(), 5, "{}", gave_up.join("\n"));
    for line in &gave_up {
        assert!(
            line.contains("reason=\"server\"") && line.contains("expired=true"),
            "{line}"
        );
    }

    // The hook answers again: one line says the channel recovered.
    wait(secs(90)).await;
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
    assert_eq!(failed["reason"], "server", "{status}");
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

#[tokio::test(start_paused = true)]
async fn a_channel_whose_receiver_refuses_connections_fails_for_a_transport_reason() {
    let (capture, _guard) = capture_logs();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let s = Scenario::new(&["notAuthorized"])
        .config(move |addrs| {
            edit(
                &fleet_toml(addrs.sim, addrs.hook, 1, ""),
                &format!("http://{}/hook", addrs.hook),
                &format!("http://{closed}/hook"),
            )
        })
        .start()
        .await;
    // Past the code's 150 s: the notification is given up.
    wait(secs(170)).await;
    let logs = captured(&capture);
    let attempt = lines_with(&logs, "delivery attempt failed");
    assert!(!attempt.is_empty(), "{logs}");
    assert!(
        attempt[0].contains("reason=\"transport\""),
        "{}",
        attempt[0]
    );
    let gave_up = lines_with(&logs, "notification not delivered");
    assert!(
        gave_up
            .first()
            .is_some_and(|l| l.contains("reason=\"transport\"")),
        "{logs}"
    );
    let status = s.daemon.instance_status(FIRST_ID).await;
    assert_eq!(
        status["delivery_errors"]["hook"]["reason"], "transport",
        "{status}"
    );
    let scrape = s.daemon.scrape().await;
    let failed = |reason| {
        series_value(
            &scrape,
            "relinkd_deliveries_total",
            &delivery("hook", "failure", reason),
        )
    };
    assert!(failed("transport") >= Some(1.0), "{scrape}");
    assert_eq!(failed("other"), Some(0.0), "{scrape}");
    s.stop().await;
}
