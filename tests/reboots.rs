//! An instance stuck in `starting` gets one reboot (opt-in), end to end.

mod common;

use common::*;
use relinkd::sim::{Fault, FaultKind};

fn reboots(s: &Running, id: u64) -> usize {
    calls_to(&s.sim, id, "reboot").len()
}

#[tokio::test(start_paused = true)]
async fn a_stuck_instance_is_rebooted_once_and_then_relinked_and_no_other_state_is_rebooted() {
    let s = Scenario::new(&["starting", "sleepMode"])
        .defaults(
            "poll_interval = \"30s\"\nlinking_poll_interval = \"5s\"\nreboot_stuck_after = \"5m\"",
        )
        .start()
        .await;

    wait(secs(4 * 60)).await;
    assert_eq!(reboots(&s, FIRST_ID), 0, "not before reboot_stuck_after");
    wait(secs(2 * 60)).await;
    assert_eq!(reboots(&s, FIRST_ID), 1);
    let alerts = s.hook.events("alert");
    assert_eq!(alerts.len(), 1, "one notice");
    assert_eq!(alerts[0].json["reason"], "rebooted");
    assert_eq!(alerts[0].json["state"], "starting");
    assert!(
        alerts[0].json["text"]
            .as_str()
            .unwrap()
            .contains("rebooted"),
        "{}",
        alerts[0].json
    );
    let id = FIRST_ID.to_string();
    assert_eq!(
        s.daemon
            .metric("relinkd_reboots_total", &[("wa_instance", id.as_str())])
            .await,
        Some(1.0)
    );
    // The simulator's reboot clears the stuck start: the instance comes back
    // notAuthorized, and the usual episode gets it a code.
    wait(secs(60)).await;
    assert_eq!(s.hook.events("code").len(), 1);

    // sleepMode for the whole time: never rebooted.
    wait(secs(60 * 60)).await;
    assert_eq!(reboots(&s, FIRST_ID + 1), 0);
    assert_eq!(reboots(&s, FIRST_ID), 1);
    s.stop().await;
}

/// The simulator answering `reboot` with `code` and `body`.
fn reboot_answered(code: u16, body: &str) -> Fault {
    Fault::new(FaultKind::Status {
        code,
        body: body.into(),
    })
    .on("reboot")
}

/// A `reboot` the simulator confirms without rebooting: the instance stays
/// `starting`, as a really stuck one does.
fn confirmed_but_still_stuck() -> Fault {
    reboot_answered(200, r#"{"isReboot":true}"#)
}

/// One instance stuck in `starting`, rebooted after a minute at most once
/// an hour, its `reboot` calls answered by `fault`.
async fn stuck_instance(fault: Fault) -> Running {
    Scenario::new(&["starting"])
        .defaults("poll_interval = \"30s\"\nreboot_stuck_after = \"1m\"\ncooldown = \"1h\"")
        .prepare(move |sim, _| sim.set_fault(FIRST_ID, fault))
        .start()
        .await
}

#[tokio::test(start_paused = true)]
async fn a_restart_does_not_reboot_again_within_the_cooldown() {
    let s = stuck_instance(confirmed_but_still_stuck()).await;
    wait(secs(3 * 60)).await;
    let first = calls_to(&s.sim, FIRST_ID, "reboot");
    assert_eq!(first.len(), 1);
    assert!(
        s.state_file().contains("last_reboot_ms"),
        "{}",
        s.state_file()
    );
    let s = s.restart().await;
    // Within the cooldown: still stuck, never rebooted again.
    wait(secs(50 * 60)).await;
    assert_eq!(calls_to(&s.sim, FIRST_ID, "reboot").len(), 1);
    assert_eq!(s.hook.events("alert").len(), 1);
    // After it: once more.
    wait(secs(15 * 60)).await;
    let reboots = calls_to(&s.sim, FIRST_ID, "reboot");
    assert_eq!(reboots.len(), 2);
    assert!(
        reboots[1] - reboots[0] >= secs(3600),
        "{:?}",
        reboots[1] - reboots[0]
    );
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_refused_reboot_is_counted_not_announced_and_retried_until_it_succeeds() {
    let s = stuck_instance(reboot_answered(400, "Bad Request").times(2)).await;
    let statuses = |s: &Running| -> Vec<u16> {
        s.sim
            .calls(FIRST_ID)
            .into_iter()
            .filter(|c| c.method == "reboot")
            .map(|c| c.status)
            .collect()
    };
    wait(secs(2 * 60)).await;
    assert_eq!(statuses(&s), vec![400], "the first attempt was refused");
    assert!(
        s.hook.events("alert").is_empty(),
        "a failed reboot is not announced"
    );
    assert_eq!(
        s.daemon.metric("relinkd_reboot_failures_total", &[]).await,
        Some(1.0)
    );
    let id = FIRST_ID.to_string();
    let reboots = [("wa_instance", id.as_str())];
    assert_eq!(
        s.daemon.metric("relinkd_reboots_total", &reboots).await,
        None
    );
    // Retried at the error backoff (about 1 then 2 minutes), not after the
    // one-hour cooldown.
    wait(secs(6 * 60)).await;
    assert_eq!(statuses(&s), vec![400, 400, 200]);
    let alerts = s.hook.events("alert");
    assert_eq!(alerts.len(), 1, "the reboot that worked is announced once");
    assert_eq!(alerts[0].json["reason"], "rebooted");
    assert_eq!(
        s.daemon.metric("relinkd_reboot_failures_total", &[]).await,
        Some(2.0)
    );
    assert_eq!(
        s.daemon.metric("relinkd_reboots_total", &reboots).await,
        Some(1.0)
    );
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_reboot_answered_by_a_server_error_may_have_happened_so_it_waits_for_the_cooldown() {
    let s = stuck_instance(reboot_answered(500, "Internal Server Error")).await;
    wait(secs(2 * 60)).await;
    assert_eq!(calls_to(&s.sim, FIRST_ID, "reboot").len(), 1);
    assert_eq!(
        s.daemon.metric("relinkd_reboot_failures_total", &[]).await,
        Some(1.0)
    );
    // Still `starting` for most of an hour: not asked again, not announced.
    wait(secs(50 * 60)).await;
    assert_eq!(calls_to(&s.sim, FIRST_ID, "reboot").len(), 1);
    assert!(s.hook.events("alert").is_empty());
    // After the cooldown it is asked again.
    wait(secs(15 * 60)).await;
    assert_eq!(calls_to(&s.sim, FIRST_ID, "reboot").len(), 2);
    s.stop().await;
}
