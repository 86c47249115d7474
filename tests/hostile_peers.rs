//! Vendors and receivers that answer what no honest one would: redirects to
//! elsewhere, endless bodies, control characters, codes where none belong.
//! relinkd stays bounded, says what happened, and never leaks a secret.

mod common;

use common::*;
use relinkd::sim::{Fault, FaultKind};

const LINKING: &str = "code_ttl = \"150s\"\nlinking_poll_interval = \"5s\"";

fn status_body(code: u16, body: &str) -> FaultKind {
    FaultKind::Status {
        code,
        body: body.to_owned(),
    }
}

/// An unlinked instance whose vendor answers its code request once with
/// `code` and `body`.
fn code_answer(code: u16, body: String) -> Scenario {
    Scenario::new(&["notAuthorized"])
        .defaults(LINKING)
        .prepare(move |sim, _| {
            sim.set_fault(
                FIRST_ID,
                Fault::new(status_body(code, &body))
                    .on("getAuthorizationCode")
                    .times(1),
            )
        })
}

#[tokio::test(start_paused = true)]
async fn a_redirect_is_a_failure_with_reason_redirect_and_the_code_goes_nowhere_else() {
    for status in [301u16, 302, 307, 308] {
        let (elsewhere, elsewhere_addr) = Receiver::start().await;
        let s = Scenario::new(&["notAuthorized"])
            .defaults(LINKING)
            .prepare(move |_, hook| {
                hook.script(vec![
                    Answer::status(status)
                        .header("location", &format!("http://{elsewhere_addr}/steal")),
                ])
            })
            .start()
            .await;
        wait(secs(30)).await;
        assert!(elsewhere.all().is_empty(), "{status}: the code was re-sent");
        assert_eq!(s.hook.all().len(), 1, "{status}: a redirect is not retried");
        let scrape = s.daemon.scrape().await;
        let count = |outcome, reason| {
            series_value(
                &scrape,
                "relinkd_deliveries_total",
                &delivery("hook", outcome, reason),
            )
        };
        assert_eq!(count("failure", "redirect"), Some(1.0), "{status}");
        assert_eq!(
            count("success", "none"),
            Some(0.0),
            "{status}: a redirect is never counted as delivered"
        );
        s.stop().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_vendor_answer_over_64_kib_is_a_bad_body_and_is_not_read_to_its_end() {
    for kind in [BigBody::Declared, BigBody::Chunked] {
        let (vendor, _) = start_big_body_server(kind).await;
        let s = Scenario::new(&[])
            .config(move |a| fleet_toml(vendor, a.hook, 1, "request_timeout = \"40s\""))
            .start()
            .await;
        wait(secs(5)).await;
        let status = s.daemon.instance_status(FIRST_ID).await;
        let error = status["last_error"].as_str().unwrap_or_default();
        assert!(error.contains("larger than 64 KiB"), "{kind:?}: {status}");
        assert_eq!(
            s.daemon
                .metric(
                    "relinkd_api_requests_total",
                    &[("method", "getStateInstance"), ("outcome", "bad_body")]
                )
                .await,
            Some(1.0),
            "{kind:?}: the first poll ended as a bad body, not a timeout"
        );
        s.stop().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_channel_answer_over_64_kib_fails_the_attempt_without_reading_it_all() {
    let (api, attempts) = start_big_body_server(BigBody::Chunked).await;
    let s = Scenario::new(&["notAuthorized"])
        .config(move |a| {
            format!(
                "[daemon]\nlisten = \"127.0.0.1:0\"\n[defaults]\n{LINKING}\n\
                 [[channel]]\nname = \"tg\"\ntype = \"telegram\"\nbot_token_env = \"HOOK_SECRET\"\n\
                 chat_id = -100123\napi_base = \"http://{api}\"\ntimeout = \"5s\"\n\
                 [[instance]]\nid = {FIRST_ID}\nname = \"line-0\"\napi_url = \"http://{}\"\n\
                 api_token_env = \"GREENAPI_TOKEN\"\nphone = 441234500000\nchannels = [\"tg\"]\n",
                a.sim
            )
        })
        .start()
        .await;
    wait(secs(20)).await;
    // Each attempt failed as soon as 64 KiB had come, not at the 5 s
    // attempt timeout: the retry came after the first backoff (1 s ±20%).
    let attempts = attempts.lock().unwrap().clone();
    assert!(attempts.len() >= 2, "{attempts:?}");
    assert!(attempts[1] - attempts[0] < secs(3), "{attempts:?}");
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_unknown_state_with_control_characters_is_shown_as_one_bounded_line() {
    let forged = format!(
        "weird\n2026-12-01T00:00:00Z ERROR relinkd: forged{}",
        "s".repeat(60_000)
    );
    let s = Scenario::new(&["authorized"])
        .defaults(LINKING)
        .prepare(move |sim, _| sim.set_state(FIRST_ID, &forged))
        .start()
        .await;
    wait(secs(5)).await;
    let status = s.daemon.instance_status(FIRST_ID).await;
    let state = status["state"].as_str().unwrap();
    assert!(state.starts_with("weird\\n2026"), "{state}");
    assert!(!state.contains('\n'));
    assert!(state.chars().count() <= 65, "{} characters", state.len());
    assert_eq!(
        s.daemon
            .metric(
                "relinkd_instance_state",
                &[("state", "unknown"), ("wa_instance", &FIRST_ID.to_string())]
            )
            .await,
        Some(1.0)
    );
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_token_straddling_the_length_cut_of_an_error_text_leaks_no_part_of_itself() {
    // The cut at 200 characters falls just before the token's last one.
    let body = format!("{}{TOKEN}", "x".repeat(200 - TOKEN.len() + 1));
    let s = Scenario::new(&["authorized"])
        .defaults(LINKING)
        .prepare(move |sim, _| {
            sim.set_fault(
                FIRST_ID,
                Fault::new(status_body(400, &body)).on("getStateInstance"),
            )
        })
        .start()
        .await;
    wait(secs(5)).await;
    let status = s.daemon.instance_status(FIRST_ID).await;
    let error = status["last_error"].as_str().unwrap();
    assert!(error.contains("xxxxx"), "{error}");
    assert!(!error.contains(&TOKEN[..TOKEN.len() - 1]), "{error}");
    assert!(!error.contains(&TOKEN[..6]), "{error}");
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_numeric_code_is_delivered_as_its_digits_and_counted_as_received() {
    let s = code_answer(200, r#"{"status":true,"code":12345678}"#.into())
        .start()
        .await;
    wait(secs(10)).await;
    assert_eq!(s.hook.codes(), vec!["12345678".to_owned()]);
    let id = FIRST_ID.to_string();
    assert_eq!(
        s.daemon
            .metric(
                "relinkd_codes_requested_total",
                &[("outcome", "received"), ("wa_instance", &id)]
            )
            .await,
        Some(1.0)
    );
    assert_eq!(s.daemon.instance_status(FIRST_ID).await["codes_used"], 1);
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_code_longer_than_16_characters_is_a_bad_body_never_delivered_and_spends_the_budget() {
    let huge = format!(r#"{{"status":true,"code":"{}"}}"#, "A".repeat(10_000));
    let s = code_answer(200, huge).start().await;
    wait(secs(3)).await;
    assert!(s.hook.all().is_empty(), "nothing was delivered");
    let status = s.daemon.instance_status(FIRST_ID).await;
    assert_eq!(status["codes_used"], 1, "{status}");
    assert!(
        status["last_error"]
            .as_str()
            .unwrap()
            .contains("not a linking code"),
        "{status}"
    );
    let id = FIRST_ID.to_string();
    assert_eq!(
        s.daemon
            .metric(
                "relinkd_codes_requested_total",
                &[("outcome", "error"), ("wa_instance", &id)]
            )
            .await,
        Some(1.0)
    );
    assert_eq!(
        s.daemon
            .metric(
                "relinkd_api_requests_total",
                &[("method", "getAuthorizationCode"), ("outcome", "bad_body")]
            )
            .await,
        Some(1.0)
    );
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_code_inside_an_error_body_never_reaches_the_status_api() {
    for body in [
        r#"{"status":true,"code":"LEAKED42"}"#,
        "your code is LEAKED42",
    ] {
        let s = code_answer(400, body.to_owned()).start().await;
        wait(secs(3)).await;
        let status = s.daemon.instance_status(FIRST_ID).await;
        let error = status["last_error"].as_str().unwrap();
        assert!(error.contains("HTTP 400"), "{status}");
        Sweep::default()
            .codes(["LEAKED42".to_owned()])
            .assert_clean("the status API", &status.to_string());
        s.stop().await;
    }
}
