//! Forwarded GREEN-API notifications on `POST /hooks/greenapi`: a hint that
//! makes the instance's supervisor poll now; the poll stays the truth.

mod common;

use common::*;

const HOOK_TOKEN: &str = "wh-5d1f9a3e77c0";

fn state_changed(id: u64, state: &str) -> String {
    format!(
        r#"{{"typeWebhook":"stateInstanceChanged","instanceData":{{"idInstance":{id},"wid":"79001234567@c.us","typeInstance":"whatsapp"}},"timestamp":1586700690,"stateInstance":"{state}"}}"#
    )
}

async fn forward(
    daemon: &Daemon,
    token: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> (u16, serde_json::Value) {
    let mut request = common::http()
        .post(format!("http://{}/hooks/greenapi", daemon.addr))
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

async fn outcome(daemon: &Daemon, outcome: &str) -> f64 {
    daemon
        .metric("relinkd_forwarded_webhooks_total", &[("outcome", outcome)])
        .await
        .unwrap_or(-1.0)
}

fn with_hooks() -> Scenario {
    Scenario::new(&["authorized", "authorized"])
        .defaults("poll_interval = \"60s\"\nlinking_poll_interval = \"5s\"")
        .daemon_keys("greenapi_webhook_token_file = \"hook-token\"")
        .file("hook-token", HOOK_TOKEN)
}

#[tokio::test(start_paused = true)]
async fn a_forwarded_not_authorized_leads_to_a_code_within_seconds_despite_a_long_poll_interval() {
    let s = with_hooks().start().await;
    // Both first polls are done; the next is about a minute away.
    wait(secs(5)).await;
    s.sim.logout(FIRST_ID);
    let (status, body) = forward(
        &s.daemon,
        Some(HOOK_TOKEN),
        state_changed(FIRST_ID, "notAuthorized"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "accepted");
    wait(secs(3)).await;
    assert_eq!(
        s.hook.events("code").len(),
        1,
        "a code within 3 s of the hint"
    );
    assert_eq!(outcome(&s.daemon, "accepted").await, 1.0);
    assert_eq!(
        s.daemon
            .metric("relinkd_forwarded_state_mismatch_total", &[])
            .await,
        Some(0.0)
    );
    // The other instance was not polled for it.
    assert_eq!(calls_to(&s.sim, FIRST_ID + 1, "getStateInstance").len(), 1);
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_forwarded_state_the_poll_contradicts_is_counted_and_the_poll_decides() {
    let s = with_hooks().start().await;
    wait(secs(5)).await;
    let (status, _) = forward(
        &s.daemon,
        Some(HOOK_TOKEN),
        state_changed(FIRST_ID, "notAuthorized"),
    )
    .await;
    assert_eq!(status, 200);
    wait(secs(3)).await;
    assert!(s.hook.events("code").is_empty(), "the poll said authorized");
    assert_eq!(
        s.daemon
            .metric("relinkd_forwarded_state_mismatch_total", &[])
            .await,
        Some(1.0)
    );
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn bad_tokens_bodies_and_unknown_instances_are_answered_and_counted() {
    let s = with_hooks().start().await;
    wait(secs(2)).await;
    let body = state_changed(FIRST_ID, "notAuthorized");

    let (status, _) = forward(&s.daemon, None, body.clone()).await;
    assert_eq!(status, 401);
    let (status, _) = forward(&s.daemon, Some("wrong"), body.clone()).await;
    assert_eq!(status, 401);
    assert_eq!(outcome(&s.daemon, "unauthorized").await, 2.0);

    let (status, answer) = forward(&s.daemon, Some(HOOK_TOKEN), "{not json").await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"], "the body is not JSON");
    let (status, answer) = forward(
        &s.daemon,
        Some(HOOK_TOKEN),
        r#"{"typeWebhook":"stateInstanceChanged"}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        answer["error"].as_str().unwrap().contains("idInstance"),
        "{answer}"
    );
    let (status, _) = forward(&s.daemon, Some(HOOK_TOKEN), vec![b' '; 65 * 1024]).await;
    assert_eq!(status, 413);
    assert_eq!(outcome(&s.daemon, "malformed").await, 3.0);

    let (status, answer) = forward(
        &s.daemon,
        Some(HOOK_TOKEN),
        state_changed(42, "notAuthorized"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer["outcome"], "unknown_instance");
    assert_eq!(outcome(&s.daemon, "unknown_instance").await, 1.0);

    let (status, answer) = forward(
        &s.daemon,
        Some(HOOK_TOKEN),
        r#"{"typeWebhook":"incomingMessageReceived","instanceData":{"idInstance":1101000001}}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer["outcome"], "ignored");
    assert_eq!(outcome(&s.daemon, "ignored").await, 1.0);

    // None of it made anyone poll.
    assert_eq!(calls_to(&s.sim, FIRST_ID, "getStateInstance").len(), 1);
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn without_a_token_the_endpoint_is_off() {
    let s = Scenario::new(&["authorized"]).start().await;
    let (status, answer) = forward(
        &s.daemon,
        Some(HOOK_TOKEN),
        state_changed(FIRST_ID, "notAuthorized"),
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("greenapi_webhook_token_file")
    );
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_forwarded_hints_never_makes_two_calls_a_second_to_an_instance() {
    let s = with_hooks().start().await;
    wait(secs(5)).await;
    let before = s.sim.calls(FIRST_ID).len();
    // 60 hints in 3 s, alternating states, as a chatty handler might send.
    for i in 0..60 {
        let state = if i % 2 == 0 {
            "notAuthorized"
        } else {
            "authorized"
        };
        let (status, body) =
            forward(&s.daemon, Some(HOOK_TOKEN), state_changed(FIRST_ID, state)).await;
        assert_eq!(status, 200, "{body}");
        wait(std::time::Duration::from_millis(50)).await;
    }
    wait(secs(2)).await;
    assert_eq!(outcome(&s.daemon, "accepted").await, 60.0);
    let calls = s.sim.calls(FIRST_ID);
    let burst = &calls[before..];
    assert!(burst.len() >= 2, "the hints were acted on: {burst:?}");
    assert!(burst.len() <= 6, "at most one call a second: {burst:?}");
    for pair in calls.windows(2) {
        assert!(
            pair[1].at - pair[0].at >= secs(1),
            "{} then {} {:?} apart",
            pair[0].method,
            pair[1].method,
            pair[1].at - pair[0].at
        );
    }
    s.stop().await;
}
