//! The linking loop end to end: simulator → daemon → webhook receiver, on
//! 127.0.0.1, with tokio's paused clock.

mod common;

use common::*;
use relinkd::greenapi::MIN_CALL_GAP;
use relinkd::sim::{Fault, FaultKind};

const LINKING: &str = "poll_interval = \"60s\"\nlinking_poll_interval = \"5s\"\n\
                       code_ttl = \"150s\"\ncodes_per_episode = 3\ncooldown = \"1h\"";

fn code_calls(sim: &relinkd::sim::Simulator, id: u64) -> Vec<tokio::time::Instant> {
    sim.calls(id)
        .into_iter()
        .filter(|c| c.method == "getAuthorizationCode")
        .map(|c| c.at)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn an_unlinked_instance_gets_a_code_delivered_before_expiry_and_a_fresh_one_only_after_expiry()
 {
    let (sim, sim_addr) = start_sim(secs(150), &["notAuthorized"]).await;
    let (hook, hook_addr) = Receiver::start().await;
    let (config, _dir) = load_config(&fleet_toml(sim_addr, hook_addr, 1, LINKING));
    let daemon = Daemon::start(config).await;

    wait(secs(10)).await;
    let codes = hook.events("code");
    assert_eq!(codes.len(), 1, "one code delivered in the first seconds");
    let delivered = &codes[0];
    assert_eq!(
        delivered.json["code"].as_str(),
        sim.current_code(FIRST_ID).as_deref()
    );
    assert_eq!(delivered.json["instance"]["id"], FIRST_ID);
    assert_eq!(delivered.json["instance"]["name"], "line-0");
    assert!(
        delivered.json["expires_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let first_request = code_calls(&sim, FIRST_ID)[0];
    assert!(
        delivered.at < first_request + secs(150),
        "delivered before expiry"
    );

    // While the code is valid: no new code, whatever the polls say.
    wait(secs(130)).await;
    assert_eq!(sim.codes_issued(FIRST_ID), 1);
    assert_eq!(hook.events("code").len(), 1);

    // After expiry: the next code, requested no earlier than expiry.
    wait(secs(20)).await;
    let requests = code_calls(&sim, FIRST_ID);
    assert_eq!(requests.len(), 2);
    assert!(requests[1] - requests[0] >= secs(150));
    assert!(requests[1] - requests[0] <= secs(150) + 2 * MIN_CALL_GAP);
    assert_eq!(hook.codes().len(), 2);
    assert_ne!(hook.codes()[0], hook.codes()[1]);
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_budget_pauses_the_episode_with_exactly_one_notice() {
    let (sim, sim_addr) = start_sim(secs(20), &["notAuthorized"]).await;
    let (hook, hook_addr) = Receiver::start().await;
    let defaults = "linking_poll_interval = \"5s\"\ncode_ttl = \"20s\"\n\
                    codes_per_episode = 3\ncooldown = \"1h\"";
    let (config, _dir) = load_config(&fleet_toml(sim_addr, hook_addr, 1, defaults));
    let daemon = Daemon::start(config).await;

    wait(secs(30 * 60)).await;
    assert_eq!(sim.codes_issued(FIRST_ID), 3, "exactly the budget");
    assert_eq!(hook.events("code").len(), 3);
    let paused = hook.events("paused");
    assert_eq!(paused.len(), 1, "one paused notice");
    assert!(paused[0].json["text"].as_str().unwrap().contains("relink"));
    let metrics = daemon.scrape().await;
    assert!(metrics.contains(&format!(
        "relinkd_episodes_paused_total{{wa_instance=\"{FIRST_ID}\"}} 1"
    )));
    assert!(metrics.contains(&format!(
        "relinkd_instance_paused{{wa_instance=\"{FIRST_ID}\"}} 1"
    )));

    // After the cooldown, a fresh budget.
    wait(secs(35 * 60)).await;
    assert!(sim.codes_issued(FIRST_ID) >= 4);
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn entering_a_code_ends_the_episode_with_one_linked_notice_and_no_further_code_requests() {
    let (sim, sim_addr) = start_sim(secs(150), &["notAuthorized"]).await;
    let (hook, hook_addr) = Receiver::start().await;
    let (config, _dir) = load_config(&fleet_toml(sim_addr, hook_addr, 1, LINKING));
    let daemon = Daemon::start(config).await;

    wait(secs(10)).await;
    let code = hook.codes().pop().expect("a code was delivered");
    let metrics = daemon.scrape().await;
    assert!(metrics.contains("relinkd_codes_delivered_total{outcome=\"delivered\"} 1"));
    assert!(metrics.contains("relinkd_code_delivery_latency_seconds_count 1"));
    assert!(!metrics.contains(&format!(
        "relinkd_instance_unlinked_since_timestamp_seconds{{wa_instance=\"{FIRST_ID}\"}} 0"
    )));
    assert!(!metrics.contains(&format!(
        "relinkd_last_successful_poll_timestamp_seconds{{wa_instance=\"{FIRST_ID}\"}} 0"
    )));
    sim.enter_code(FIRST_ID, &code).unwrap();
    wait(secs(60)).await;
    assert_eq!(hook.events("linked").len(), 1);
    let metrics = daemon.scrape().await;
    assert!(metrics.contains(&format!(
        "relinkd_relinks_total{{wa_instance=\"{FIRST_ID}\"}} 1"
    )));
    assert!(metrics.contains(&format!(
        "relinkd_instance_unlinked_since_timestamp_seconds{{wa_instance=\"{FIRST_ID}\"}} 0"
    )));
    assert!(metrics.contains(&format!(
        "relinkd_instance_state{{state=\"authorized\",wa_instance=\"{FIRST_ID}\"}} 1"
    )));

    let calls_before = sim.calls(FIRST_ID).len();
    wait(secs(3600)).await;
    assert_eq!(sim.codes_issued(FIRST_ID), 1);
    assert_eq!(hook.events("linked").len(), 1);
    let later: Vec<_> = sim.calls(FIRST_ID).into_iter().skip(calls_before).collect();
    assert!(later.iter().all(|c| c.method == "getStateInstance"));
    assert!(
        later.len() <= 66,
        "polls at the 60s interval, got {}",
        later.len()
    );
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_authorized_instance_is_never_asked_for_a_code() {
    let (sim, sim_addr) = start_sim(secs(150), &["authorized", "authorized"]).await;
    let (hook, hook_addr) = Receiver::start().await;
    let (config, _dir) = load_config(&fleet_toml(sim_addr, hook_addr, 2, LINKING));
    let daemon = Daemon::start(config).await;
    wait(secs(6 * 3600)).await;
    for id in [FIRST_ID, FIRST_ID + 1] {
        assert!(code_calls(&sim, id).is_empty());
        assert!(sim.calls(id).len() >= 300, "still polled");
    }
    assert!(hook.all().is_empty(), "nothing to tell anyone");
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn vendor_faults_neither_crash_the_daemon_nor_trigger_a_code() {
    let faults = [
        FaultKind::Status {
            code: 500,
            body: "oops".into(),
        },
        FaultKind::Status {
            code: 502,
            body: "<html><body>502 Bad Gateway</body></html>".into(),
        },
        FaultKind::Status {
            code: 400,
            body: "instance in starting process try later".into(),
        },
        FaultKind::RateLimited {
            retry_after: Some(30),
        },
        FaultKind::RateLimited { retry_after: None },
        FaultKind::Hang,
        FaultKind::Malformed,
        FaultKind::NullBody,
        FaultKind::Unauthorized,
        FaultKind::ErrorIn200,
        FaultKind::QuotaExceeded,
    ];
    // Faulty instances are authorized underneath; a code request would be a bug.
    let states = vec!["authorized"; faults.len()];
    let (sim, sim_addr) = start_sim(secs(150), &states).await;
    for (i, kind) in faults.iter().enumerate() {
        sim.set_fault(
            FIRST_ID + i as u64,
            Fault {
                method: None,
                latency: None,
                kind: kind.clone(),
                times: None,
            },
        );
    }
    let (hook, hook_addr) = Receiver::start().await;
    let defaults = "request_timeout = \"10s\"\nbackoff_max = \"2m\"";
    let (config, _dir) = load_config(&fleet_toml(sim_addr, hook_addr, faults.len(), defaults));
    let daemon = Daemon::start(config).await;

    wait(secs(30 * 60)).await;
    let metrics = daemon.scrape().await;
    for (i, kind) in faults.iter().enumerate() {
        let id = FIRST_ID + i as u64;
        assert!(code_calls(&sim, id).is_empty(), "{kind:?} triggered a code");
        assert!(
            !metrics.contains(&format!(
                "relinkd_state_polls_total{{outcome=\"failure\",wa_instance=\"{id}\"}} 0"
            )),
            "{kind:?} was not counted as a failed poll"
        );
    }
    assert!(hook.all().is_empty());
    // Errors are classified, not lumped together.
    for outcome in [
        "server",
        "client",
        "rate_limited",
        "timeout",
        "bad_body",
        "unauthorized",
        "quota",
    ] {
        assert!(
            !metrics.contains(&format!(
                "relinkd_api_requests_total{{method=\"getStateInstance\",outcome=\"{outcome}\"}} 0"
            )),
            "no {outcome} error counted"
        );
    }
    // Still serving, and recovers once the vendor does.
    for i in 0..faults.len() {
        sim.clear_faults(FIRST_ID + i as u64);
    }
    wait(secs(10 * 60)).await;
    let metrics = daemon.scrape().await;
    for i in 0..faults.len() {
        let id = FIRST_ID + i as u64;
        assert!(metrics.contains(&format!(
            "relinkd_instance_state{{state=\"authorized\",wa_instance=\"{id}\"}} 1"
        )));
    }
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn status_false_and_code_errors_deliver_nothing_and_back_off() {
    let (sim, sim_addr) = start_sim(secs(150), &["notAuthorized", "notAuthorized"]).await;
    let for_codes = |kind| Fault {
        method: Some("getAuthorizationCode".into()),
        latency: None,
        kind,
        times: None,
    };
    sim.set_fault(FIRST_ID, for_codes(FaultKind::StatusFalse));
    sim.set_fault(
        FIRST_ID + 1,
        for_codes(FaultKind::Status {
            code: 503,
            body: "busy".into(),
        }),
    );
    let (hook, hook_addr) = Receiver::start().await;
    let (config, _dir) = load_config(&fleet_toml(sim_addr, hook_addr, 2, LINKING));
    let daemon = Daemon::start(config).await;
    wait(secs(3600)).await;
    assert!(hook.events("code").is_empty());
    for id in [FIRST_ID, FIRST_ID + 1] {
        let calls = code_calls(&sim, id);
        assert!(calls.len() >= 3, "retried");
        assert!(
            calls.len() <= 20,
            "backed off, got {} requests",
            calls.len()
        );
        let gaps: Vec<_> = calls.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps[1] > gaps[0], "{gaps:?}");
    }
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn poll_backoff_gaps_grow_up_to_the_cap() {
    let (sim, sim_addr) = start_sim(secs(150), &["authorized"]).await;
    sim.set_fault(
        FIRST_ID,
        Fault {
            method: None,
            latency: None,
            kind: FaultKind::Status {
                code: 500,
                body: "down".into(),
            },
            times: None,
        },
    );
    let (_hook, hook_addr) = Receiver::start().await;
    let defaults = "poll_interval = \"10s\"\nbackoff_max = \"5m\"";
    let (config, _dir) = load_config(&fleet_toml(sim_addr, hook_addr, 1, defaults));
    let daemon = Daemon::start(config).await;
    wait(secs(3 * 3600)).await;
    let times: Vec<_> = sim.calls(FIRST_ID).into_iter().map(|c| c.at).collect();
    let gaps: Vec<_> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // 20s, 40s, 80s, 160s, then the 300s cap (±10% jitter each).
    for w in gaps[..4].windows(2) {
        assert!(w[1] > w[0], "gaps must grow: {gaps:?}");
    }
    for gap in &gaps[5..] {
        assert!(*gap >= secs(270) && *gap <= secs(330), "capped: {gaps:?}");
    }
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_one_call_per_second_limit_holds_under_a_config_that_asks_for_faster_polling() {
    let (sim, sim_addr) = start_sim(secs(1), &["notAuthorized", "authorized"]).await;
    let (hook, hook_addr) = Receiver::start().await;
    let defaults = "poll_interval = \"100ms\"\nlinking_poll_interval = \"10ms\"\n\
                    code_ttl = \"1s\"\ncodes_per_episode = 7\ncooldown = \"2s\"\n\
                    backoff_max = \"1s\"";
    let (config, _dir) = load_config(&fleet_toml(sim_addr, hook_addr, 2, defaults));
    assert!(
        config.warnings.iter().any(|w| w.contains("poll_interval")),
        "sub-second intervals are clamped with a warning: {:?}",
        config.warnings
    );
    let daemon = Daemon::start(config).await;
    wait(secs(120)).await;
    for id in [FIRST_ID, FIRST_ID + 1] {
        let calls = sim.calls(id);
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
    assert!(hook.events("code").len() >= 7);
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn webhook_deliveries_are_signed_per_standard_webhooks() {
    let (_sim, sim_addr) = start_sim(secs(150), &["notAuthorized"]).await;
    let (hook, hook_addr) = Receiver::start().await;
    let (config, _dir) = load_config(&fleet_toml(sim_addr, hook_addr, 1, LINKING));
    let daemon = Daemon::start(config).await;
    wait(secs(10)).await;
    let all = hook.all();
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
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn failed_deliveries_are_retried_and_a_late_code_is_counted_not_sent() {
    let (_sim, sim_addr) = start_sim(secs(20), &["notAuthorized"]).await;
    let (hook, hook_addr) = Receiver::start().await;
    // Two failures then success for the first code; the second code meets
    // only 503s until it expires.
    hook.answer_with(&[503, 429, 200]);
    let defaults = "code_ttl = \"20s\"\nlinking_poll_interval = \"5s\"\ncodes_per_episode = 2";
    let (config, _dir) = load_config(&fleet_toml(sim_addr, hook_addr, 1, defaults));
    let daemon = Daemon::start(config).await;
    wait(secs(15)).await;
    assert_eq!(
        hook.events("code").len(),
        1,
        "delivered on the third attempt"
    );
    assert_eq!(
        daemon.metrics.deliveries.count("hook", "success", "none"),
        1
    );

    hook.answer_with(&[503; 100]);
    wait(secs(30)).await;
    assert_eq!(hook.events("code").len(), 1);
    assert_eq!(
        daemon
            .metrics
            .deliveries
            .count("hook", "failure", "expired"),
        1
    );
    let first_code = hook.codes()[0].clone();
    let second_code_attempts = hook
        .all()
        .into_iter()
        .filter(|r| r.json["event"] == "code" && r.json["code"] != first_code.as_str())
        .count();
    assert!(
        second_code_attempts >= 3,
        "retried while the code was valid"
    );
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_4xx_from_a_channel_is_not_retried() {
    let (_sim, sim_addr) = start_sim(secs(150), &["notAuthorized"]).await;
    let (hook, hook_addr) = Receiver::start().await;
    hook.answer_with(&[400]);
    let (config, _dir) = load_config(&fleet_toml(sim_addr, hook_addr, 1, LINKING));
    let daemon = Daemon::start(config).await;
    wait(secs(60)).await;
    assert_eq!(hook.all().len(), 1);
    assert_eq!(
        daemon.metrics.deliveries.count("hook", "failure", "client"),
        1
    );
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_blocked_instance_gets_one_alert_and_no_codes() {
    let (sim, sim_addr) = start_sim(secs(150), &["blocked"]).await;
    let (hook, hook_addr) = Receiver::start().await;
    let (config, _dir) = load_config(&fleet_toml(sim_addr, hook_addr, 1, LINKING));
    let daemon = Daemon::start(config).await;
    wait(secs(3600)).await;
    assert!(code_calls(&sim, FIRST_ID).is_empty());
    let alerts = hook.events("alert");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].json["state"], "blocked");
    assert_eq!(hook.all().len(), 1);
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn starting_and_unknown_states_get_no_codes() {
    let (sim, sim_addr) = start_sim(secs(150), &["starting", "pendingCode"]).await;
    let (hook, hook_addr) = Receiver::start().await;
    let (config, _dir) = load_config(&fleet_toml(sim_addr, hook_addr, 2, LINKING));
    let daemon = Daemon::start(config).await;
    wait(secs(3600)).await;
    assert!(code_calls(&sim, FIRST_ID).is_empty());
    assert!(code_calls(&sim, FIRST_ID + 1).is_empty());
    assert!(hook.all().is_empty());
    let metrics = daemon.scrape().await;
    assert!(metrics.contains(&format!(
        "relinkd_instance_state{{state=\"unknown\",wa_instance=\"{}\"}} 1",
        FIRST_ID + 1
    )));
    daemon.stop().await;
}
