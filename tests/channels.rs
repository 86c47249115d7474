//! Each channel against a local server that speaks its protocol: a
//! Telegram-shaped Bot API, Slack- and Mattermost-shaped webhooks, the
//! simulator's sendMessage, a real SMTP server.

mod common;

use std::net::SocketAddr;

use common::*;

const TG_TOKEN: &str = "123456:tg-secret-token-AAAA";

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

const LINKING: &str = "code_ttl = \"150s\"\nlinking_poll_interval = \"5s\"";

#[tokio::test(start_paused = true)]
async fn telegram_gets_the_code_in_html_with_escaping_in_a_code_element() {
    let (sim, sim_addr) = start_sim(secs(150), &["notAuthorized"]).await;
    let (api, api_addr) = Receiver::start().await;
    let toml = config_toml(sim_addr, LINKING, &telegram(api_addr), &[(0, "\"tg\"")]);
    let (config, _dir) = load_config_with_files(&toml, &[("tg-token", TG_TOKEN)]);
    let daemon = Daemon::start(config).await;
    wait(secs(10)).await;

    let sent = api.accepted();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].path, format!("/bot{TG_TOKEN}/sendMessage"));
    let body = &sent[0].json;
    assert_eq!(body["chat_id"], -1001234567890i64);
    assert_eq!(body["parse_mode"], "HTML");
    let text = body["text"].as_str().unwrap();
    let code = sim.current_code(FIRST_ID).unwrap();
    assert!(text.contains(&format!("<code>{code}</code>")), "{text}");
    assert!(text.contains("<b>R&amp;D &lt;ops&gt;</b>"), "{text}");
    assert!(text.contains("Link with phone number instead"), "{text}");
    assert_eq!(daemon.metrics.deliveries.count("tg", "success", "none"), 1);
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn telegram_429_honours_retry_after_and_5xx_is_retried() {
    let (_sim, sim_addr) = start_sim(secs(150), &["notAuthorized"]).await;
    let (api, api_addr) = Receiver::start().await;
    api.script(vec![
        Answer::with_body(
            429,
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#,
        ),
        Answer::with_body(502, "<html>Bad Gateway</html>"),
    ]);
    let toml = config_toml(sim_addr, LINKING, &telegram(api_addr), &[(0, "\"tg\"")]);
    let (config, _dir) = load_config_with_files(&toml, &[("tg-token", TG_TOKEN)]);
    let daemon = Daemon::start(config).await;
    wait(secs(30)).await;
    let all = api.all();
    assert_eq!(all.len(), 3, "429, 502, then success");
    assert!(all[1].at - all[0].at >= secs(7), "retry_after honoured");
    assert_eq!(api.accepted().len(), 1);
    assert_eq!(daemon.metrics.deliveries.count("tg", "success", "none"), 1);
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn telegram_4xx_is_not_retried_and_counted_as_client() {
    let (_sim, sim_addr) = start_sim(secs(150), &["notAuthorized"]).await;
    let (api, api_addr) = Receiver::start().await;
    api.script(vec![Answer::with_body(
        400,
        r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#,
    )]);
    let toml = config_toml(sim_addr, LINKING, &telegram(api_addr), &[(0, "\"tg\"")]);
    let (config, _dir) = load_config_with_files(&toml, &[("tg-token", TG_TOKEN)]);
    let daemon = Daemon::start(config).await;
    wait(secs(60)).await;
    assert_eq!(api.all().len(), 1);
    assert_eq!(
        daemon.metrics.deliveries.count("tg", "failure", "client"),
        1
    );
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_telegram_delivery_that_cannot_succeed_before_expiry_is_dropped_as_expired() {
    let (_sim, sim_addr) = start_sim(secs(10), &["notAuthorized"]).await;
    let (api, api_addr) = Receiver::start().await;
    api.script(vec![Answer::status(503); 50]);
    let defaults = "code_ttl = \"10s\"\ncodes_per_episode = 1\ncooldown = \"1h\"";
    let toml = config_toml(sim_addr, defaults, &telegram(api_addr), &[(0, "\"tg\"")]);
    let (config, _dir) = load_config_with_files(&toml, &[("tg-token", TG_TOKEN)]);
    let daemon = Daemon::start(config).await;
    wait(secs(20)).await;
    let attempts: Vec<_> = api
        .all()
        .into_iter()
        .filter(|r| {
            r.json["text"]
                .as_str()
                .unwrap_or("")
                .contains("linking code")
        })
        .collect();
    assert!(attempts.len() >= 3, "retried while the code was valid");
    let last = attempts.last().unwrap().at;
    assert!(last - attempts[0].at < secs(10), "no attempt after expiry");
    assert_eq!(
        daemon.metrics.deliveries.count("tg", "failure", "expired"),
        1
    );
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn slack_and_mattermost_get_the_same_payload_and_slack_escapes_mrkdwn() {
    let (sim, sim_addr) = start_sim(secs(150), &["notAuthorized"]).await;
    let (hooks, hooks_addr) = Receiver::start().await;
    let slack_url = format!("http://{hooks_addr}/services/T000/B000/slacksecret");
    let mattermost_url = format!("http://{hooks_addr}/hooks/mattermostsecret");
    let channels = format!("{}{}", slack("slack", "slack-url"), slack("mm", "mm-url"));
    let toml = config_toml(sim_addr, LINKING, &channels, &[(0, "\"slack\", \"mm\"")]);
    let (config, _dir) = load_config_with_files(
        &toml,
        &[("slack-url", &slack_url), ("mm-url", &mattermost_url)],
    );
    let daemon = Daemon::start(config).await;
    wait(secs(10)).await;
    let code = sim.current_code(FIRST_ID).unwrap();
    let sent = hooks.accepted();
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
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn slack_retries_429_and_500_but_not_400() {
    let (_sim, sim_addr) = start_sim(secs(150), &["notAuthorized", "notAuthorized"]).await;
    let (hooks, hooks_addr) = Receiver::start().await;
    hooks.script(vec![
        Answer::with_body(429, "rate_limited").retry_after(5),
        Answer::with_body(500, "internal"),
    ]);
    let url = format!("http://{hooks_addr}/services/T/B/x");
    let toml = config_toml(
        sim_addr,
        LINKING,
        &slack("slack", "url"),
        &[(0, "\"slack\"")],
    );
    let (config, _dir) = load_config_with_files(&toml, &[("url", &url)]);
    let daemon = Daemon::start(config).await;
    wait(secs(30)).await;
    let all = hooks.all();
    assert_eq!(all.len(), 3);
    assert!(all[1].at - all[0].at >= secs(5), "Retry-After honoured");
    assert_eq!(
        daemon.metrics.deliveries.count("slack", "success", "none"),
        1
    );
    daemon.stop().await;

    let (hooks, hooks_addr) = Receiver::start().await;
    hooks.script(vec![Answer::with_body(400, "invalid_payload")]);
    let url = format!("http://{hooks_addr}/services/T/B/x");
    let toml = config_toml(
        sim_addr,
        LINKING,
        &slack("slack", "url"),
        &[(1, "\"slack\"")],
    );
    let (config, _dir) = load_config_with_files(&toml, &[("url", &url)]);
    let daemon = Daemon::start(config).await;
    wait(secs(30)).await;
    assert_eq!(hooks.all().len(), 1);
    assert_eq!(
        daemon
            .metrics
            .deliveries
            .count("slack", "failure", "client"),
        1
    );
    daemon.stop().await;
}

fn whatsapp(via: u64) -> String {
    format!(
        "[[channel]]\nname = \"wa\"\ntype = \"whatsapp\"\nvia = {via}\n\
         chat_ids = [\"441234999001@c.us\", \"441234999002@c.us\"]\ntimeout = \"20s\"\n"
    )
}

#[tokio::test(start_paused = true)]
async fn whatsapp_sends_the_code_through_another_authorized_instance() {
    let (sim, sim_addr) = start_sim(secs(150), &["notAuthorized", "authorized"]).await;
    let via = FIRST_ID + 1;
    let toml = config_toml(
        sim_addr,
        LINKING,
        &whatsapp(via),
        &[(0, "\"wa\""), (1, "\"wa\"")],
    );
    let (config, _dir) = load_config(&toml);
    let daemon = Daemon::start(config).await;
    wait(secs(20)).await;
    let code = sim.current_code(FIRST_ID).unwrap();
    let sent = sim.sent_messages(via);
    assert_eq!(sent.len(), 2, "one message per chat id");
    assert_eq!(sent[0].chat_id, "441234999001@c.us");
    assert_eq!(sent[1].chat_id, "441234999002@c.us");
    assert!(sent[0].message.contains(&code));
    assert_eq!(daemon.metrics.deliveries.count("wa", "success", "none"), 1);
    // The sending instance is still never called twice within a second.
    let calls = sim.calls(via);
    for pair in calls.windows(2) {
        assert!(pair[1].at - pair[0].at >= secs(1));
    }
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn whatsapp_skips_an_unlinked_sender_and_the_other_channels_still_deliver() {
    let (sim, sim_addr) = start_sim(secs(150), &["notAuthorized", "notAuthorized"]).await;
    let (hook, hook_addr) = Receiver::start().await;
    let via = FIRST_ID + 1;
    let channels = format!(
        "{}[[channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://{hook_addr}/hook\"\n",
        whatsapp(via)
    );
    let toml = config_toml(
        sim_addr,
        LINKING,
        &channels,
        &[(0, "\"wa\", \"hook\""), (1, "\"wa\", \"hook\"")],
    );
    let (config, _dir) = load_config(&toml);
    let daemon = Daemon::start(config).await;
    wait(secs(20)).await;
    assert!(sim.sent_messages(via).is_empty());
    assert_eq!(hook.events("code").len(), 2, "both codes went by webhook");
    // Instance 0: sender not authorized; instance 1: never through itself.
    assert_eq!(
        daemon.metrics.deliveries.skips("wa", "via_not_authorized"),
        1
    );
    assert_eq!(daemon.metrics.deliveries.skips("wa", "own_instance"), 1);
    assert!(
        daemon
            .scrape()
            .await
            .contains("relinkd_delivery_skips_total{channel=\"wa\",reason=\"own_instance\"} 1")
    );
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_channel_rate_limit_spaces_messages_and_codes_go_first() {
    let (sim, sim_addr) = start_sim(secs(150), &["notAuthorized", "authorized"]).await;
    let (hook, hook_addr) = Receiver::start().await;
    let channels = format!(
        "[[channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://{hook_addr}/hook\"\n\
         rate_limit_per_minute = 1\n"
    );
    let defaults = "poll_interval = \"5s\"\nlinking_poll_interval = \"5s\"\ncode_ttl = \"150s\"";
    let toml = config_toml(
        sim_addr,
        defaults,
        &channels,
        &[(0, "\"hook\""), (1, "\"hook\"")],
    );
    let (config, _dir) = load_config(&toml);
    let daemon = Daemon::start(config).await;
    // Instance 0's code takes the one slot of the first minute.
    wait(secs(4)).await;
    assert_eq!(hook.events("code").len(), 1);
    // Its admin links it: a `linked` notice now waits for the next slot...
    let code = sim.current_code(FIRST_ID).unwrap();
    sim.enter_code(FIRST_ID, &code).unwrap();
    wait(secs(10)).await;
    // ...and then instance 1 loses its link: its code waits too.
    sim.logout(FIRST_ID + 1);
    wait(secs(130)).await;
    let got = hook.accepted();
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
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn whatsapp_retries_a_vendor_5xx_and_does_not_retry_a_4xx() {
    use relinkd::sim::{Fault, FaultKind};
    let (sim, sim_addr) =
        start_sim(secs(150), &["notAuthorized", "authorized", "notAuthorized"]).await;
    let via = FIRST_ID + 1;
    sim.set_fault(
        via,
        Fault {
            method: Some("sendMessage".into()),
            latency: None,
            kind: FaultKind::Status {
                code: 502,
                body: "bad gateway".into(),
            },
            times: Some(1),
        },
    );
    let toml = config_toml(
        sim_addr,
        LINKING,
        &whatsapp(via),
        &[(0, "\"wa\""), (1, "\"wa\"")],
    );
    let (config, _dir) = load_config(&toml);
    let daemon = Daemon::start(config).await;
    wait(secs(20)).await;
    assert_eq!(sim.sent_messages(via).len(), 2, "delivered after the 502");
    assert_eq!(daemon.metrics.deliveries.count("wa", "success", "none"), 1);
    daemon.stop().await;

    sim.set_fault(
        via,
        Fault {
            method: Some("sendMessage".into()),
            latency: None,
            kind: FaultKind::Status {
                code: 400,
                body: "Validation failed. Details: chatId".into(),
            },
            times: None,
        },
    );
    let toml = config_toml(
        sim_addr,
        LINKING,
        &whatsapp(via),
        &[(2, "\"wa\""), (1, "\"wa\"")],
    );
    let (config, _dir) = load_config(&toml);
    let daemon = Daemon::start(config).await;
    wait(secs(20)).await;
    let tries = sim
        .calls(via)
        .iter()
        .filter(|c| c.method == "sendMessage" && c.status == 400)
        .count();
    assert_eq!(tries, 1, "a 4xx is final");
    assert_eq!(
        daemon.metrics.deliveries.count("wa", "failure", "client"),
        1
    );
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_slack_delivery_that_cannot_succeed_before_expiry_is_dropped_as_expired() {
    let (_sim, sim_addr) = start_sim(secs(10), &["notAuthorized"]).await;
    let (hooks, hooks_addr) = Receiver::start().await;
    hooks.script(vec![Answer::with_body(500, "internal"); 6]);
    let url = format!("http://{hooks_addr}/services/T/B/x");
    let defaults = "code_ttl = \"10s\"\ncodes_per_episode = 1\ncooldown = \"1h\"";
    let toml = config_toml(
        sim_addr,
        defaults,
        &slack("slack", "url"),
        &[(0, "\"slack\"")],
    );
    let (config, _dir) = load_config_with_files(&toml, &[("url", &url)]);
    let daemon = Daemon::start(config).await;
    wait(secs(15)).await;
    assert_eq!(
        daemon
            .metrics
            .deliveries
            .count("slack", "failure", "expired"),
        1
    );
    assert!(
        !hooks.accepted().iter().any(|r| r.json["text"]
            .as_str()
            .unwrap_or("")
            .contains("linking code")),
        "no code went out late"
    );
    daemon.stop().await;
}
