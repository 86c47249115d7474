//! Each channel against a local server that speaks its protocol: a
//! Telegram-shaped Bot API, Slack- and Mattermost-shaped webhooks, the
//! simulator's sendMessage. (A real SMTP server: email.rs.)
//!
//! In every "never late" test the receiver fails for longer than the code
//! lives and then accepts at once, so an attempt after expiry would be
//! delivered: the tests can fail.

mod common;

use std::net::SocketAddr;

use common::*;
use relinkd::sim::{Fault, FaultKind, Simulator};

/// A config with `channels` (TOML) and instances `(position, channel names)`.
fn config_toml(
    sim: SocketAddr,
    defaults: &str,
    channels: &str,
    instances: &[(usize, &str)],
) -> String {
    let mut toml =
        format!("[daemon]\nlisten = \"127.0.0.1:0\"\n[defaults]\n{defaults}\n{channels}\n");
    for (i, names) in instances {
        toml.push_str(&format!(
            "\n[[instance]]\nid = {id}\nname = \"{name}\"\napi_url = \"http://{sim}\"\n\
             api_token_env = \"GREENAPI_TOKEN\"\nphone = {phone}\nchannels = [{names}]\n",
            id = FIRST_ID + *i as u64,
            name = if *i == 0 {
                "R&D <ops>".to_owned()
            } else {
                format!("line-{i}")
            },
            phone = 441234500000 + *i as u64,
        ));
    }
    toml
}

fn telegram(api: SocketAddr) -> String {
    format!(
        "[[channel]]\nname = \"tg\"\ntype = \"telegram\"\nbot_token_file = \"tg-token\"\n\
         chat_id = -1001234567890\napi_base = \"http://{api}\"\ntimeout = \"5s\"\n"
    )
}

fn slack(name: &str, url_file: &str) -> String {
    format!("[[channel]]\nname = \"{name}\"\ntype = \"slack\"\nurl_file = \"{url_file}\"\n")
}

fn whatsapp(via: u64) -> String {
    format!(
        "[[channel]]\nname = \"wa\"\ntype = \"whatsapp\"\nvia = {via}\n\
         chat_ids = [\"441234999001@c.us\", \"441234999002@c.us\"]\ntimeout = \"20s\"\n"
    )
}

const LINKING: &str = "code_ttl = \"150s\"\nlinking_poll_interval = \"5s\"";
/// Short-lived codes, one per episode: each test sees one code's deliveries.
const SHORT: &str = "code_ttl = \"20s\"\ncodes_per_episode = 1\ncooldown = \"1h\"";

/// Instance 0 (`R&D <ops>`, unlinked) with the Telegram channel on the hook.
fn telegram_scenario(defaults: &'static str) -> Scenario {
    Scenario::new(&["notAuthorized"])
        .vendor_code_ttl(secs(20))
        .file("tg-token", TG_TOKEN)
        .config(move |a| config_toml(a.sim, defaults, &telegram(a.hook), &[(0, "\"tg\"")]))
}

/// Instance 0 with a Slack channel whose webhook is the hook's `/services/T/B/x`.
fn slack_scenario(defaults: &'static str) -> Scenario {
    Scenario::new(&["notAuthorized"])
        .vendor_code_ttl(secs(20))
        .file_for("url", |a| format!("http://{}/services/T/B/x", a.hook))
        .config(move |a| config_toml(a.sim, defaults, &slack("slack", "url"), &[(0, "\"slack\"")]))
}

fn code_requests(sim: &Simulator, id: u64) -> Vec<tokio::time::Instant> {
    sim.calls(id)
        .into_iter()
        .filter(|c| c.method == "getAuthorizationCode")
        .map(|c| c.at)
        .collect()
}

/// Whether a request to a receiver carried the code (webhook `event`, or a
/// Telegram/Slack text).
fn carries_code(r: &Received) -> bool {
    r.json["event"] == "code"
        || r.json["text"]
            .as_str()
            .unwrap_or("")
            .contains("linking code")
}

/// Every attempt to deliver the first code came before its 20 s had
/// passed, at least `min` of them were made, and none was accepted.
fn assert_never_late(s: &Running, min: usize) {
    let issued = code_requests(&s.sim, FIRST_ID)[0];
    let attempts: Vec<_> = s.hook.all().into_iter().filter(carries_code).collect();
    assert!(attempts.len() >= min, "{} attempts", attempts.len());
    for attempt in &attempts {
        assert!(
            attempt.at < issued + secs(20),
            "an attempt {:?} after the code was issued, past its 20 s life",
            attempt.at - issued
        );
    }
    assert!(
        !s.hook.accepted().iter().any(carries_code),
        "a code was delivered late"
    );
}

/// The requests that carried the code.
fn code_attempts(s: &Running) -> Vec<Received> {
    s.hook.all().into_iter().filter(carries_code).collect()
}

/// `relinkd_deliveries_expired_total{channel}`.
async fn expired(s: &Running, channel: &'static str) -> f64 {
    s.daemon
        .metric("relinkd_deliveries_expired_total", &[("channel", channel)])
        .await
        .unwrap_or_default()
}

async fn deliveries(
    s: &Running,
    channel: &'static str,
    outcome: &'static str,
    reason: &'static str,
) -> f64 {
    s.daemon
        .metric(
            "relinkd_deliveries_total",
            &delivery(channel, outcome, reason),
        )
        .await
        .unwrap_or_else(|| panic!("no series for {channel} {outcome} {reason}"))
}

#[tokio::test(start_paused = true)]
async fn telegram_gets_the_code_in_html_with_escaping_in_a_code_element() {
    let s = telegram_scenario(LINKING)
        .vendor_code_ttl(secs(150))
        .start()
        .await;
    wait(secs(10)).await;

    let sent = s.hook.accepted();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].path, format!("/bot{TG_TOKEN}/sendMessage"));
    let body = &sent[0].json;
    assert_eq!(body["chat_id"], -1001234567890i64);
    assert_eq!(body["parse_mode"], "HTML");
    let text = body["text"].as_str().unwrap();
    let code = s.sim.current_code(FIRST_ID).unwrap();
    assert!(text.contains(&format!("<code>{code}</code>")), "{text}");
    assert!(text.contains("<b>R&amp;D &lt;ops&gt;</b>"), "{text}");
    assert!(text.contains("Link with phone number instead"), "{text}");
    assert_eq!(deliveries(&s, "tg", "success", "none").await, 1.0);
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn telegram_429_honours_retry_after_and_5xx_is_retried() {
    let s = telegram_scenario(LINKING)
        .vendor_code_ttl(secs(150))
        .prepare(|_, hook| {
            hook.script(vec![
                Answer::with_body(
                    429,
                    r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#,
                ),
                Answer::with_body(502, "<html>Bad Gateway</html>"),
            ])
        })
        .start()
        .await;
    wait(secs(30)).await;
    let all = s.hook.all();
    assert_eq!(all.len(), 3, "429, 502, then success");
    assert!(all[1].at - all[0].at >= secs(7), "retry_after honoured");
    assert_eq!(s.hook.accepted().len(), 1);
    assert_eq!(deliveries(&s, "tg", "success", "none").await, 1.0);
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn telegram_4xx_is_not_retried_and_counted_as_client() {
    let s = telegram_scenario(LINKING)
        .vendor_code_ttl(secs(150))
        .prepare(|_, hook| {
            hook.script(vec![Answer::with_body(
                400,
                r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#,
            )])
        })
        .start()
        .await;
    wait(secs(60)).await;
    assert_eq!(s.hook.all().len(), 1);
    assert_eq!(deliveries(&s, "tg", "failure", "client").await, 1.0);
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_telegram_code_is_never_delivered_after_it_expires() {
    let s = telegram_scenario(SHORT)
        .prepare(|_, hook| hook.fail_for(secs(60), 503))
        .start()
        .await;
    wait(secs(90)).await;
    assert_never_late(&s, 3);
    assert_eq!(deliveries(&s, "tg", "failure", "server").await, 1.0);
    assert_eq!(expired(&s, "tg").await, 1.0, "it ran out of time");
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_telegram_retry_after_past_the_codes_life_drops_the_code_at_once() {
    let s = telegram_scenario(SHORT)
        .prepare(|_, hook| {
            hook.script(vec![Answer::with_body(
                429,
                r#"{"ok":false,"error_code":429,"description":"Too Many Requests","parameters":{"retry_after":600}}"#,
            )])
        })
        .start()
        .await;
    wait(secs(90)).await;
    assert_never_late(&s, 1);
    assert_eq!(code_attempts(&s).len(), 1, "no second attempt");
    assert_eq!(deliveries(&s, "tg", "failure", "rate_limited").await, 1.0);
    assert_eq!(expired(&s, "tg").await, 1.0, "it ran out of time");
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn slack_and_mattermost_get_the_same_payload_and_slack_escapes_mrkdwn() {
    let s = Scenario::new(&["notAuthorized"])
        .file_for("slack-url", |a| {
            format!("http://{}/services/T000/B000/slacksecret", a.hook)
        })
        .file_for("mm-url", |a| {
            format!("http://{}/hooks/mattermostsecret", a.hook)
        })
        .config(|a| {
            let channels = format!("{}{}", slack("slack", "slack-url"), slack("mm", "mm-url"));
            config_toml(a.sim, LINKING, &channels, &[(0, "\"slack\", \"mm\"")])
        })
        .start()
        .await;
    wait(secs(10)).await;
    let code = s.sim.current_code(FIRST_ID).unwrap();
    let sent = s.hook.accepted();
    assert_eq!(sent.len(), 2);
    for request in &sent {
        let text = request.json["text"].as_str().unwrap();
        assert!(text.contains(&format!("`{code}`")), "{text}");
        assert!(text.contains("*R&amp;D &lt;ops&gt;*"), "{text}");
        assert_eq!(request.json["blocks"][0]["type"], "section");
        assert_eq!(request.json["blocks"][0]["text"]["type"], "mrkdwn");
        assert_eq!(request.json["blocks"][0]["text"]["text"], text);
    }
    // Mattermost's incoming webhook takes `text` and ignores `blocks`.
    let mattermost = sent
        .iter()
        .find(|r| r.path == "/hooks/mattermostsecret")
        .unwrap();
    assert!(!mattermost.json["text"].as_str().unwrap().is_empty());
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn slack_retries_429_and_500_but_not_400() {
    let s = slack_scenario(LINKING)
        .vendor_code_ttl(secs(150))
        .prepare(|_, hook| {
            hook.script(vec![
                Answer::with_body(429, "rate_limited").retry_after(5),
                Answer::with_body(500, "internal"),
            ])
        })
        .start()
        .await;
    wait(secs(30)).await;
    let all = s.hook.all();
    assert_eq!(all.len(), 3);
    assert!(all[1].at - all[0].at >= secs(5), "Retry-After honoured");
    assert_eq!(deliveries(&s, "slack", "success", "none").await, 1.0);
    s.stop().await;

    let s = slack_scenario(LINKING)
        .vendor_code_ttl(secs(150))
        .prepare(|_, hook| hook.script(vec![Answer::with_body(400, "invalid_payload")]))
        .start()
        .await;
    wait(secs(30)).await;
    assert_eq!(s.hook.all().len(), 1);
    assert_eq!(deliveries(&s, "slack", "failure", "client").await, 1.0);
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_slack_code_is_never_delivered_after_it_expires() {
    let s = slack_scenario(SHORT)
        .prepare(|_, hook| hook.fail_for(secs(60), 500))
        .start()
        .await;
    wait(secs(90)).await;
    assert_never_late(&s, 3);
    assert_eq!(deliveries(&s, "slack", "failure", "server").await, 1.0);
    assert_eq!(expired(&s, "slack").await, 1.0, "it ran out of time");
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_webhook_or_slack_retry_after_past_the_codes_life_drops_the_code_at_once() {
    let too_long = || Answer::status(429).retry_after(600);
    let s = slack_scenario(SHORT)
        .prepare(move |_, hook| hook.script(vec![too_long()]))
        .start()
        .await;
    wait(secs(90)).await;
    assert_never_late(&s, 1);
    assert_eq!(code_attempts(&s).len(), 1, "no second attempt");
    assert_eq!(
        deliveries(&s, "slack", "failure", "rate_limited").await,
        1.0
    );
    assert_eq!(expired(&s, "slack").await, 1.0, "it ran out of time");
    s.stop().await;

    let s = Scenario::new(&["notAuthorized"])
        .vendor_code_ttl(secs(20))
        .defaults(SHORT)
        .prepare(move |_, hook| hook.script(vec![too_long()]))
        .start()
        .await;
    wait(secs(90)).await;
    assert_never_late(&s, 1);
    assert_eq!(code_attempts(&s).len(), 1, "no second attempt");
    assert_eq!(deliveries(&s, "hook", "failure", "rate_limited").await, 1.0);
    assert_eq!(expired(&s, "hook").await, 1.0, "it ran out of time");
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_webhook_code_is_never_delivered_after_it_expires_and_keeps_its_webhook_id() {
    let s = Scenario::new(&["notAuthorized"])
        .vendor_code_ttl(secs(20))
        .defaults(SHORT)
        .prepare(|_, hook| hook.fail_for(secs(60), 503))
        .start()
        .await;
    wait(secs(90)).await;
    let attempts = code_attempts(&s);
    assert_never_late(&s, 3);
    let ids: std::collections::BTreeSet<_> = attempts
        .iter()
        .map(|a| a.headers["webhook-id"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "one webhook-id across the retries: {ids:?}");
    for attempt in &attempts {
        assert!(verify_standard_webhook(
            WHSEC,
            &attempt.headers,
            &attempt.body
        ));
    }
    assert_eq!(deliveries(&s, "hook", "failure", "server").await, 1.0);
    assert_eq!(expired(&s, "hook").await, 1.0, "it ran out of time");
    s.stop().await;
}

/// `webhook-timestamp` is the wall clock of each attempt (receivers reject
/// old ones): real time here, as the signature uses the real clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_webhook_attempt_is_signed_with_a_fresh_timestamp() {
    let s = Scenario::new(&["notAuthorized"])
        .defaults(LINKING)
        .prepare(|_, hook| hook.answer_with(&[503, 503]))
        .start()
        .await;
    eventually(secs(15), "the third attempt is accepted", || {
        !s.hook.accepted().is_empty()
    })
    .await;
    let attempts = s.hook.all();
    assert_eq!(attempts.len(), 3);
    let stamp = |r: &Received| -> u64 {
        r.headers["webhook-timestamp"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let stamps: Vec<u64> = attempts.iter().map(stamp).collect();
    // 1 s and 2 s backoffs (±20%): the third attempt is at least 2.4 s later.
    assert!(stamps.windows(2).all(|w| w[1] >= w[0]), "{stamps:?}");
    assert!(stamps[2] >= stamps[0] + 2, "{stamps:?}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now - stamps[2] <= 5, "the last stamp is fresh");
    for attempt in &attempts {
        assert!(verify_standard_webhook(
            WHSEC,
            &attempt.headers,
            &attempt.body
        ));
    }
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn whatsapp_sends_the_code_through_another_authorized_instance() {
    let via = FIRST_ID + 1;
    let s = Scenario::new(&["notAuthorized", "authorized"])
        .config(move |a| {
            config_toml(
                a.sim,
                LINKING,
                &whatsapp(via),
                &[(0, "\"wa\""), (1, "\"wa\"")],
            )
        })
        .start()
        .await;
    wait(secs(20)).await;
    let code = s.sim.current_code(FIRST_ID).unwrap();
    let sent = s.sim.sent_messages(via);
    assert_eq!(sent.len(), 2, "one message per chat id");
    assert_eq!(sent[0].chat_id, "441234999001@c.us");
    assert_eq!(sent[1].chat_id, "441234999002@c.us");
    assert!(sent[0].message.contains(&code));
    assert_eq!(deliveries(&s, "wa", "success", "none").await, 1.0);
    // The sending instance is still never called twice within a second.
    let calls = s.sim.calls(via);
    for pair in calls.windows(2) {
        assert!(pair[1].at - pair[0].at >= secs(1));
    }
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_whatsapp_code_is_never_delivered_after_it_expires() {
    let via = FIRST_ID + 1;
    // Five failures fit in the code's 20 s (attempts at about 0, 1, 3, 7
    // and 15 s); the sixth send would succeed, but it would be late.
    let s = Scenario::new(&["notAuthorized", "authorized"])
        .vendor_code_ttl(secs(20))
        .prepare(move |sim, _| {
            sim.set_fault(
                via,
                Fault::new(FaultKind::Status {
                    code: 502,
                    body: "bad gateway".into(),
                })
                .on("sendMessage")
                .times(5),
            )
        })
        .config(move |a| {
            let channel = edit(&whatsapp(via), "timeout = \"20s\"", "timeout = \"5s\"");
            config_toml(a.sim, SHORT, &channel, &[(0, "\"wa\""), (1, "\"wa\"")])
        })
        .start()
        .await;
    wait(secs(90)).await;
    let issued = code_requests(&s.sim, FIRST_ID)[0];
    let sends: Vec<_> = s
        .sim
        .calls(via)
        .into_iter()
        .filter(|c| c.method == "sendMessage")
        .collect();
    // The five failed sends were the code's; what came after is the
    // `paused` notice (the budget of one code was spent).
    let failed: Vec<_> = sends.iter().filter(|c| c.status == 502).collect();
    assert_eq!(failed.len(), 5, "{sends:?}");
    for send in &failed {
        assert!(send.at < issued + secs(20), "a send after expiry");
    }
    let late = s
        .sim
        .sent_messages(via)
        .into_iter()
        .filter(|m| m.message.contains("linking code"))
        .count();
    assert_eq!(late, 0, "a code was sent late");
    assert!(
        s.sim
            .sent_messages(via)
            .iter()
            .any(|m| m.message.contains("still not linked")),
        "the notice after it went out: the sender worked again"
    );
    assert_eq!(deliveries(&s, "wa", "failure", "server").await, 1.0);
    assert_eq!(expired(&s, "wa").await, 1.0, "it ran out of time");
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn whatsapp_skips_an_unlinked_sender_and_the_other_channels_still_deliver() {
    let via = FIRST_ID + 1;
    let s = Scenario::new(&["notAuthorized", "notAuthorized"])
        .config(move |a| {
            let channels = format!(
                "{}[[channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://{}/hook\"\n",
                whatsapp(via),
                a.hook
            );
            config_toml(
                a.sim,
                LINKING,
                &channels,
                &[(0, "\"wa\", \"hook\""), (1, "\"wa\", \"hook\"")],
            )
        })
        .start()
        .await;
    wait(secs(20)).await;
    assert!(s.sim.sent_messages(via).is_empty());
    assert_eq!(s.hook.events("code").len(), 2, "both codes went by webhook");
    // Instance 0: sender not authorized; instance 1: never through itself.
    for reason in ["via_not_authorized", "own_instance"] {
        assert_eq!(
            s.daemon
                .metric(
                    "relinkd_delivery_skips_total",
                    &[("channel", "wa"), ("reason", reason)]
                )
                .await,
            Some(1.0),
            "{reason}"
        );
    }
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_channel_rate_limit_spaces_messages_and_codes_go_first() {
    let defaults = "poll_interval = \"5s\"\nlinking_poll_interval = \"5s\"\ncode_ttl = \"150s\"";
    let s = Scenario::new(&["notAuthorized", "authorized"])
        .config(move |a| {
            let channels = format!(
                "[[channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://{}/hook\"\n\
                 rate_limit_per_minute = 1\n",
                a.hook
            );
            config_toml(
                a.sim,
                defaults,
                &channels,
                &[(0, "\"hook\""), (1, "\"hook\"")],
            )
        })
        .start()
        .await;
    // Instance 0's code takes the one slot of the first minute.
    wait(secs(4)).await;
    assert_eq!(s.hook.events("code").len(), 1);
    // Its admin links it: a `linked` notice now waits for the next slot...
    let code = s.sim.current_code(FIRST_ID).unwrap();
    s.sim.enter_code(FIRST_ID, &code).unwrap();
    wait(secs(10)).await;
    // ...and then instance 1 loses its link: its code waits too.
    s.sim.logout(FIRST_ID + 1);
    wait(secs(130)).await;
    let got = s.hook.accepted();
    let events: Vec<_> = got.iter().map(|r| r.json["event"].clone()).collect();
    assert_eq!(
        events,
        ["code", "code", "linked"],
        "the waiting code went first"
    );
    assert_eq!(got[1].json["instance"]["id"], FIRST_ID + 1);
    for pair in got.windows(2) {
        assert!(pair[1].at - pair[0].at >= secs(59), "one a minute");
    }
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn whatsapp_retries_a_vendor_5xx_and_does_not_retry_a_4xx() {
    let via = FIRST_ID + 1;
    let s = Scenario::new(&["notAuthorized", "authorized", "notAuthorized"])
        .prepare(move |sim, _| {
            sim.set_fault(
                via,
                Fault::new(FaultKind::Status {
                    code: 502,
                    body: "bad gateway".into(),
                })
                .on("sendMessage")
                .times(1),
            )
        })
        .config(move |a| {
            config_toml(
                a.sim,
                LINKING,
                &whatsapp(via),
                &[(0, "\"wa\""), (1, "\"wa\"")],
            )
        })
        .start()
        .await;
    wait(secs(20)).await;
    assert_eq!(s.sim.sent_messages(via).len(), 2, "delivered after the 502");
    assert_eq!(deliveries(&s, "wa", "success", "none").await, 1.0);
    s.stop().await;

    let s = Scenario::new(&["notAuthorized", "authorized", "notAuthorized"])
        .prepare(move |sim, _| {
            sim.set_fault(
                via,
                Fault::new(FaultKind::Status {
                    code: 400,
                    body: "Validation failed. Details: chatId".into(),
                })
                .on("sendMessage"),
            )
        })
        .config(move |a| {
            config_toml(
                a.sim,
                LINKING,
                &whatsapp(via),
                &[(2, "\"wa\""), (1, "\"wa\"")],
            )
        })
        .start()
        .await;
    wait(secs(20)).await;
    let tries = s
        .sim
        .calls(via)
        .iter()
        .filter(|c| c.method == "sendMessage" && c.status == 400)
        .count();
    assert_eq!(tries, 1, "a 4xx is final");
    assert_eq!(deliveries(&s, "wa", "failure", "client").await, 1.0);
    s.stop().await;
}
