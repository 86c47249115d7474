//! The linking loop end to end: simulator → daemon → webhook receiver, on
//! 127.0.0.1, with tokio's paused clock.

mod common;

use common::*;
use relinkd::sim::{Fault, FaultKind, Simulator};

const LINKING: &str = "poll_interval = \"60s\"\nlinking_poll_interval = \"5s\"\n\
                       code_ttl = \"150s\"\ncodes_per_episode = 3\ncooldown = \"1h\"";

fn code_calls(sim: &Simulator, id: u64) -> Vec<tokio::time::Instant> {
    calls_to(sim, id, "getAuthorizationCode")
}

fn wa(id: u64) -> String {
    id.to_string()
}

#[tokio::test(start_paused = true)]
async fn an_unlinked_instance_gets_a_code_delivered_before_expiry_and_a_fresh_one_only_after_expiry()
 {
    let s = Scenario::new(&["notAuthorized"])
        .defaults(LINKING)
        .start()
        .await;

    wait(secs(10)).await;
    let codes = s.hook.events("code");
    assert_eq!(codes.len(), 1, "one code delivered in the first seconds");
    let delivered = &codes[0];
    assert_eq!(
        delivered.json["code"].as_str(),
        s.sim.current_code(FIRST_ID).as_deref()
    );
    assert_eq!(delivered.json["instance"]["id"], FIRST_ID);
    assert_eq!(delivered.json["instance"]["name"], "line-0");
    assert!(
        delivered.json["expires_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let first_request = code_calls(&s.sim, FIRST_ID)[0];
    assert!(
        delivered.at < first_request + secs(150),
        "delivered before expiry"
    );

    // While the code is valid: no new code, whatever the polls say.
    wait(secs(130)).await;
    assert_eq!(s.sim.codes_issued(FIRST_ID), 1);
    assert_eq!(s.hook.events("code").len(), 1);

    // After expiry: the next code, requested no earlier than expiry.
    wait(secs(20)).await;
    let requests = code_calls(&s.sim, FIRST_ID);
    assert_eq!(requests.len(), 2);
    assert!(requests[1] - requests[0] >= secs(150));
    // Two calls' pacing at most: one call a second per instance, plus margin.
    assert!(requests[1] - requests[0] <= secs(150) + 2 * std::time::Duration::from_millis(1100));
    assert_eq!(s.hook.codes().len(), 2);
    assert_ne!(s.hook.codes()[0], s.hook.codes()[1]);
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_budget_pauses_the_episode_with_exactly_one_notice() {
    let s = Scenario::new(&["notAuthorized"])
        .vendor_code_ttl(secs(20))
        .defaults(
            "linking_poll_interval = \"5s\"\ncode_ttl = \"20s\"\ncodes_per_episode = 3\n\
             cooldown = \"1h\"",
        )
        .start()
        .await;

    wait(secs(30 * 60)).await;
    assert_eq!(s.sim.codes_issued(FIRST_ID), 3, "exactly the budget");
    assert_eq!(s.hook.events("code").len(), 3);
    let paused = s.hook.events("paused");
    assert_eq!(paused.len(), 1, "one paused notice");
    assert!(paused[0].json["text"].as_str().unwrap().contains("relink"));
    assert_eq!(paused[0].json["reason"], "budget");
    assert!(
        paused[0].json["resumes_at"]
            .as_str()
            .unwrap()
            .ends_with('Z'),
        "{}",
        paused[0].json
    );
    let id = wa(FIRST_ID);
    let labels = [("wa_instance", id.as_str())];
    assert_eq!(
        s.daemon
            .metric("relinkd_episodes_paused_total", &labels)
            .await,
        Some(1.0)
    );
    assert_eq!(
        s.daemon.metric("relinkd_instance_paused", &labels).await,
        Some(1.0)
    );

    // After the cooldown, a fresh budget.
    wait(secs(35 * 60)).await;
    assert!(s.sim.codes_issued(FIRST_ID) >= 4);
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn entering_a_code_ends_the_episode_with_one_linked_notice_and_no_further_code_requests() {
    let s = Scenario::new(&["notAuthorized"])
        .defaults(LINKING)
        .start()
        .await;
    let id = wa(FIRST_ID);
    let this = [("wa_instance", id.as_str())];

    wait(secs(10)).await;
    let code = s.hook.codes().pop().expect("a code was delivered");
    let d = &s.daemon;
    assert_eq!(
        d.metric("relinkd_codes_delivered_total", &[("outcome", "delivered")])
            .await,
        Some(1.0)
    );
    assert_eq!(
        d.metric("relinkd_code_delivery_latency_seconds_count", &[])
            .await,
        Some(1.0)
    );
    let unlinked_since = d
        .metric("relinkd_instance_unlinked_since_timestamp_seconds", &this)
        .await
        .unwrap();
    let now = relinkd::clock::unix_seconds(relinkd::clock::now()) as f64;
    assert!(
        (now - 15.0..=now).contains(&unlinked_since),
        "unlinked since {unlinked_since}, now {now}"
    );
    let last_poll = d
        .metric("relinkd_last_successful_poll_timestamp_seconds", &this)
        .await
        .unwrap();
    assert!(
        (now - 15.0..=now).contains(&last_poll),
        "last poll {last_poll}"
    );
    s.sim.enter_code(FIRST_ID, &code).unwrap();
    wait(secs(60)).await;
    assert_eq!(s.hook.events("linked").len(), 1);
    assert_eq!(d.metric("relinkd_relinks_total", &this).await, Some(1.0));
    assert_eq!(
        d.metric("relinkd_instance_unlinked_since_timestamp_seconds", &this)
            .await,
        None,
        "exported only during an episode"
    );
    assert_eq!(
        d.metric(
            "relinkd_instance_state",
            &[("state", "authorized"), ("wa_instance", &id)]
        )
        .await,
        Some(1.0)
    );

    let calls_before = s.sim.calls(FIRST_ID).len();
    wait(secs(3600)).await;
    assert_eq!(s.sim.codes_issued(FIRST_ID), 1);
    assert_eq!(s.hook.events("linked").len(), 1);
    let later: Vec<_> = s
        .sim
        .calls(FIRST_ID)
        .into_iter()
        .skip(calls_before)
        .collect();
    assert!(later.iter().all(|c| c.method == "getStateInstance"));
    // An hour at a 60 s interval (±10% jitter): still watched, not hammered.
    assert!(
        (54..=67).contains(&later.len()),
        "polls at the 60s interval, got {}",
        later.len()
    );
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_authorized_instance_is_never_asked_for_a_code() {
    let s = Scenario::new(&["authorized", "authorized"])
        .defaults(LINKING)
        .start()
        .await;
    wait(secs(6 * 3600)).await;
    for id in [FIRST_ID, FIRST_ID + 1] {
        assert!(code_calls(&s.sim, id).is_empty());
        // Six hours at 60 s (±10%).
        let polls = s.sim.calls(id).len();
        assert!((327..=401).contains(&polls), "{polls} polls");
    }
    assert!(s.hook.all().is_empty(), "nothing to tell anyone");
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn each_kind_of_vendor_fault_is_counted_as_itself_and_triggers_no_code() {
    let faults = [
        (status_body(500, "oops"), "server"),
        (
            status_body(502, "<html><body>502 Bad Gateway</body></html>"),
            "server",
        ),
        (
            status_body(400, "instance in starting process try later"),
            "client",
        ),
        (
            FaultKind::RateLimited {
                retry_after: Some(30),
            },
            "rate_limited",
        ),
        (FaultKind::RateLimited { retry_after: None }, "rate_limited"),
        (FaultKind::Hang, "timeout"),
        (FaultKind::Malformed, "bad_body"),
        (FaultKind::NullBody, "bad_body"),
        (FaultKind::Unauthorized, "unauthorized"),
        (FaultKind::ErrorIn200, "unauthorized"),
        (FaultKind::QuotaExceeded, "quota"),
    ];
    let outcomes = [
        "success",
        "transport",
        "timeout",
        "unauthorized",
        "rate_limited",
        "quota",
        "client",
        "server",
        "bad_body",
    ];
    for (kind, expected) in faults {
        // The instance is authorized underneath: a code request would be a bug.
        let s = Scenario::new(&["authorized"])
            .defaults("request_timeout = \"10s\"\nbackoff_max = \"2m\"")
            .start()
            .await;
        s.sim.set_fault(FIRST_ID, Fault::new(kind.clone()));
        wait(secs(30 * 60)).await;
        assert!(
            code_calls(&s.sim, FIRST_ID).is_empty(),
            "{kind:?} triggered a code"
        );
        assert!(s.hook.all().is_empty());
        let scrape = s.daemon.scrape().await;
        let id = wa(FIRST_ID);
        let failed = series_value(
            &scrape,
            "relinkd_instance_poll_failures_total",
            &[("reason", expected), ("wa_instance", &id)],
        )
        .unwrap();
        assert!(failed >= 5.0, "{kind:?}: {failed} failed polls counted");
        let fleet_failed = series_value(
            &scrape,
            "relinkd_state_polls_total",
            &[("outcome", "failure")],
        )
        .unwrap();
        assert_eq!(fleet_failed, failed, "{kind:?}: counted fleet-wide too");
        for other in outcomes[1..].iter().filter(|o| **o != expected) {
            assert!(
                series_value(
                    &scrape,
                    "relinkd_instance_poll_failures_total",
                    &[("reason", other), ("wa_instance", &id)],
                )
                .is_none(),
                "{kind:?}: a series for {other}, which never happened"
            );
        }
        for outcome in &outcomes[1..] {
            let count = series_value(
                &scrape,
                "relinkd_api_requests_total",
                &[("method", "getStateInstance"), ("outcome", outcome)],
            )
            .unwrap();
            if *outcome == expected {
                assert_eq!(count, failed, "{kind:?}: every failure is {expected}");
            } else {
                assert_eq!(count, 0.0, "{kind:?} was counted as {outcome}");
            }
        }
        // Still serving, and recovers once the vendor does.
        s.sim.clear_faults(FIRST_ID);
        wait(secs(10 * 60)).await;
        assert_eq!(
            s.daemon
                .metric(
                    "relinkd_instance_state",
                    &[("state", "authorized"), ("wa_instance", &id)]
                )
                .await,
            Some(1.0),
            "{kind:?}: not recovered"
        );
        s.stop().await;
    }
}

fn status_body(code: u16, body: &str) -> FaultKind {
    FaultKind::Status {
        code,
        body: body.into(),
    }
}

#[tokio::test(start_paused = true)]
async fn status_false_and_code_errors_deliver_nothing_and_back_off() {
    let s = Scenario::new(&["notAuthorized", "notAuthorized"])
        .defaults(LINKING)
        .start()
        .await;
    s.sim.set_fault(
        FIRST_ID,
        Fault::new(FaultKind::StatusFalse).on("getAuthorizationCode"),
    );
    s.sim.set_fault(
        FIRST_ID + 1,
        Fault::new(status_body(503, "busy")).on("getAuthorizationCode"),
    );
    wait(secs(3600)).await;
    assert!(s.hook.events("code").is_empty());
    for id in [FIRST_ID, FIRST_ID + 1] {
        let calls = code_calls(&s.sim, id);
        assert!(calls.len() >= 3, "retried");
        assert!(
            calls.len() <= 20,
            "backed off, got {} requests",
            calls.len()
        );
        let gaps: Vec<_> = calls.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps[1] > gaps[0], "{gaps:?}");
    }
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn poll_backoff_gaps_grow_up_to_the_cap() {
    let s = Scenario::new(&["authorized"])
        .defaults("poll_interval = \"10s\"\nbackoff_max = \"5m\"")
        .start()
        .await;
    s.sim
        .set_fault(FIRST_ID, Fault::new(status_body(500, "down")));
    wait(secs(3 * 3600)).await;
    let times: Vec<_> = s.sim.calls(FIRST_ID).into_iter().map(|c| c.at).collect();
    let gaps: Vec<_> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // 20s, 40s, 80s, 160s, then the 300s cap (±10% jitter each).
    for w in gaps[..4].windows(2) {
        assert!(w[1] > w[0], "gaps must grow: {gaps:?}");
    }
    for gap in &gaps[5..] {
        assert!(*gap >= secs(270) && *gap <= secs(330), "capped: {gaps:?}");
    }
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_one_call_per_second_limit_holds_under_a_config_that_asks_for_faster_polling() {
    let defaults = "poll_interval = \"100ms\"\nlinking_poll_interval = \"10ms\"\n\
                    code_ttl = \"1s\"\ncodes_per_episode = 7\ncooldown = \"2s\"\n\
                    backoff_max = \"1s\"";
    let s = Scenario::new(&["notAuthorized", "authorized"])
        .vendor_code_ttl(secs(1))
        .defaults(defaults)
        .start()
        .await;
    assert!(
        s.warnings.iter().any(|w| w.contains("poll_interval")),
        "sub-second intervals are clamped with a warning: {:?}",
        s.warnings
    );
    wait(secs(120)).await;
    for id in [FIRST_ID, FIRST_ID + 1] {
        let calls = s.sim.calls(id);
        assert!(calls.len() >= 60, "busy instance: {} calls", calls.len());
        for pair in calls.windows(2) {
            assert!(
                pair[1].at - pair[0].at >= secs(1),
                "two calls within a second"
            );
        }
        assert!(
            calls.iter().all(|c| c.status != 429),
            "the vendor never rate-limited"
        );
    }
    assert!(s.hook.events("code").len() >= 7);
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn webhook_deliveries_are_signed_per_standard_webhooks() {
    let s = Scenario::new(&["notAuthorized"])
        .defaults(LINKING)
        .start()
        .await;
    wait(secs(10)).await;
    let all = s.hook.all();
    assert!(!all.is_empty());
    for request in &all {
        assert!(
            request.headers["webhook-id"]
                .to_str()
                .unwrap()
                .starts_with("msg_")
        );
        assert!(verify_standard_webhook(
            WHSEC,
            &request.headers,
            &request.body
        ));
        assert!(!verify_standard_webhook(
            "whsec_d3JvbmctdGVzdC1zZWNyZXQta2V5IQ==",
            &request.headers,
            &request.body
        ));
        assert_eq!(request.headers["content-type"], "application/json");
    }
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn failed_deliveries_are_retried_and_a_late_code_is_counted_not_sent() {
    let s = Scenario::new(&["notAuthorized"])
        .vendor_code_ttl(secs(20))
        .defaults("code_ttl = \"20s\"\nlinking_poll_interval = \"5s\"\ncodes_per_episode = 2")
        .start()
        .await;
    // Two failures then success for the first code.
    s.hook.answer_with(&[503, 429, 200]);
    wait(secs(15)).await;
    assert_eq!(
        s.hook.events("code").len(),
        1,
        "delivered on the third attempt"
    );
    assert_eq!(
        s.daemon
            .metric(
                "relinkd_deliveries_total",
                &delivery("hook", "success", "none")
            )
            .await,
        Some(1.0)
    );

    // The second code meets 503s for longer than it lives, and the hook
    // would take it at once afterwards: a late attempt would be delivered.
    s.hook.fail_for(secs(60), 503);
    wait(secs(60)).await;
    assert_eq!(
        s.daemon
            .metric(
                "relinkd_deliveries_total",
                &delivery("hook", "failure", "server")
            )
            .await,
        Some(1.0)
    );
    assert_eq!(
        s.daemon
            .metric("relinkd_deliveries_expired_total", &[("channel", "hook")])
            .await,
        Some(1.0),
        "the 503s outlived the code"
    );
    let first_code = s.hook.codes()[0].clone();
    let second: Vec<_> = s
        .hook
        .all()
        .into_iter()
        .filter(|r| r.json["event"] == "code" && r.json["code"] != first_code.as_str())
        .collect();
    assert!(second.len() >= 3, "retried while the code was valid");
    let issued = code_calls(&s.sim, FIRST_ID)[1];
    for attempt in &second {
        assert!(
            attempt.at < issued + secs(20),
            "an attempt {:?} after the code was issued, past its 20 s life",
            attempt.at - issued
        );
    }
    assert_eq!(s.hook.events("code").len(), 1, "the late code was not sent");
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_4xx_from_a_channel_is_not_retried() {
    let s = Scenario::new(&["notAuthorized"])
        .defaults(LINKING)
        .start()
        .await;
    s.hook.answer_with(&[400]);
    wait(secs(60)).await;
    assert_eq!(s.hook.all().len(), 1);
    assert_eq!(
        s.daemon
            .metric(
                "relinkd_deliveries_total",
                &delivery("hook", "failure", "client")
            )
            .await,
        Some(1.0)
    );
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn each_restricted_state_gets_one_alert_and_no_codes_also_after_a_restart() {
    for state in ["blocked", "suspended", "yellowCard"] {
        let s = Scenario::new(&[state]).defaults(LINKING).start().await;
        wait(secs(3600)).await;
        assert!(code_calls(&s.sim, FIRST_ID).is_empty(), "{state}");
        let alerts = s.hook.events("alert");
        assert_eq!(alerts.len(), 1, "{state}");
        assert_eq!(alerts[0].json["state"], state);
        assert_eq!(s.hook.all().len(), 1, "{state}: nothing but the alert");
        assert_eq!(
            s.daemon.instance_status(FIRST_ID).await["phase"],
            "restricted"
        );
        // A restart knows the admins were told.
        let s = s.restart().await;
        wait(secs(3600)).await;
        assert_eq!(s.hook.events("alert").len(), 1, "{state}: alerted again");
        assert!(code_calls(&s.sim, FIRST_ID).is_empty(), "{state}");
        s.stop().await;
    }
}

#[tokio::test(start_paused = true)]
async fn starting_and_unknown_states_get_no_codes() {
    let s = Scenario::new(&["starting", "pendingCode"])
        .defaults(LINKING)
        .start()
        .await;
    wait(secs(3600)).await;
    assert!(code_calls(&s.sim, FIRST_ID).is_empty());
    assert!(code_calls(&s.sim, FIRST_ID + 1).is_empty());
    assert!(s.hook.all().is_empty());
    let id = wa(FIRST_ID + 1);
    assert_eq!(
        s.daemon
            .metric(
                "relinkd_instance_state",
                &[("state", "unknown"), ("wa_instance", &id)]
            )
            .await,
        Some(1.0)
    );
    s.stop().await;
}
