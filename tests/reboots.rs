//! An instance stuck in `starting` gets one reboot (opt-in), end to end.

mod common;

use common::*;

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
