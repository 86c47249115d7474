//! Tokens and codes never reach the logs, at any level, whatever fails.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use relinkd::sim::{Fault, FaultKind};
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

const TG_TOKEN: &str = "123456:tg-secret-token-AAAA";

/// Instance 0 with channels `names`, and the channel definitions.
fn channel_config(sim: std::net::SocketAddr, channels: &str, names: &str) -> String {
    format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\n[defaults]\ncode_ttl = \"150s\"\n{channels}\n\
         [[instance]]\nid = {FIRST_ID}\nname = \"line-0\"\napi_url = \"http://{sim}\"\n\
         api_token_env = \"GREENAPI_TOKEN\"\nphone = 441234500000\nchannels = [{names}]\n"
    )
}

#[tokio::test(start_paused = true)]
async fn no_token_or_code_appears_in_logs_at_any_level() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // An unlinked instance (codes flow), one whose vendor fails in every way,
    // and one whose API host refuses connections (transport errors).
    let (sim, sim_addr) = start_sim(secs(20), &["notAuthorized", "authorized"]).await;
    let kinds = [
        FaultKind::Status {
            code: 500,
            body: "x".into(),
        },
        FaultKind::Status {
            code: 400,
            body: "bad request data".into(),
        },
        FaultKind::Unauthorized,
        FaultKind::Malformed,
        FaultKind::NullBody,
        FaultKind::ErrorIn200,
        FaultKind::Hang,
    ];
    for kind in kinds {
        sim.add_fault(
            FIRST_ID + 1,
            Fault {
                method: None,
                latency: None,
                kind,
                times: Some(1),
            },
        );
    }
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let (hook, hook_addr) = Receiver::start().await;
    hook.answer_with(&[500, 401]);
    let mut toml = fleet_toml(
        sim_addr,
        hook_addr,
        2,
        "code_ttl = \"20s\"\nlinking_poll_interval = \"2s\"\npoll_interval = \"5s\"\nrequest_timeout = \"3s\"",
    );
    toml.push_str(&format!(
        "\n[[instance]]\nid = 1101000099\nname = \"gone\"\napi_url = \"http://{closed_addr}\"\n\
         api_token_env = \"GREENAPI_TOKEN\"\nphone = 441234599999\nchannels = [\"hook\"]\n"
    ));
    let (config, _dir) = load_config(&toml);
    let daemon = Daemon::start(config).await;
    // Codes at about 0 s, 20 s and 40 s (the first meets a 500 then a 401).
    wait(secs(50)).await;
    let code = hook.codes().pop().expect("codes were delivered");
    sim.enter_code(FIRST_ID, &code).unwrap();
    wait(secs(120)).await;
    daemon.stop().await;

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("linking code received"), "the scenario ran");
    assert!(logs.contains("state poll failed"), "faults were logged");
    assert!(logs.len() > 10_000, "trace level was captured");
    assert!(!logs.contains(TOKEN), "a token leaked into the logs");
    let codes: Vec<String> = hook
        .all()
        .iter()
        .filter_map(|r| r.json["code"].as_str().map(str::to_owned))
        .collect();
    assert!(codes.len() >= 3);
    for code in codes {
        assert!(!logs.contains(&code), "a code leaked into the logs");
    }
}

#[tokio::test(start_paused = true)]
async fn bot_tokens_and_webhook_urls_never_reach_the_logs() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (_sim, sim_addr) = start_sim(secs(150), &["notAuthorized"]).await;
    let (api, api_addr) = Receiver::start().await;
    api.script(vec![Answer::status(500), Answer::status(401)]);
    let (hooks, hooks_addr) = Receiver::start().await;
    hooks.script(vec![Answer::status(500), Answer::status(403)]);
    let slack_url = format!("http://{hooks_addr}/services/T/B/slack-url-secret");
    // A closed port: transport errors carry no URL either.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let gone_url = format!("http://{closed_addr}/services/T/B/gone-url-secret");
    let channels = format!(
        "[[channel]]\nname = \"tg\"\ntype = \"telegram\"\nbot_token_file = \"tg-token\"\n\
         chat_id = -1001234567890\napi_base = \"http://{api_addr}\"\n\
         [[channel]]\nname = \"slack\"\ntype = \"slack\"\nurl_file = \"url\"\n\
         [[channel]]\nname = \"gone\"\ntype = \"slack\"\nurl_file = \"gone-url\"\n"
    );
    let toml = channel_config(sim_addr, &channels, "\"tg\", \"slack\", \"gone\"");
    let (config, _dir) = load_config_with_files(
        &toml,
        &[
            ("tg-token", TG_TOKEN),
            ("url", &slack_url),
            ("gone-url", &gone_url),
        ],
    );
    let daemon = Daemon::start(config).await;
    wait(secs(200)).await;
    daemon.stop().await;
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("notification not delivered"),
        "the failures were logged"
    );
    for secret in [TG_TOKEN, "slack-url-secret", "gone-url-secret", TOKEN] {
        assert!(!logs.contains(secret), "{secret} leaked into the logs");
    }
}

fn capture_logs() -> (Capture, tracing::subscriber::DefaultGuard) {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .with_ansi(false)
        .finish();
    (
        capture.clone(),
        tracing::subscriber::set_default(subscriber),
    )
}

fn captured(capture: &Capture) -> String {
    String::from_utf8(capture.0.lock().unwrap().clone()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_receiver_that_echoes_its_secret_url_or_token_in_an_error_cannot_leak_it() {
    let (capture, _guard) = capture_logs();
    let (_sim, sim_addr) = start_sim(secs(150), &["notAuthorized"]).await;
    let (api, api_addr) = Receiver::start().await;
    // Telegram's `description` quoting the bot token, and a Slack-shaped
    // hook that quotes the path it was called on (the secret part of its URL).
    api.script(vec![Answer::with_body(
        400,
        &format!(r#"{{"ok":false,"description":"Bad Request: bot{TG_TOKEN} was blocked"}}"#),
    )]);
    let (hooks, hooks_addr) = Receiver::start().await;
    hooks.script(vec![Answer::echoing_path(404, "no_service: ")]);
    let slack_url = format!("http://{hooks_addr}/services/T0/B0/echoed-url-secret");
    let channels = format!(
        "[[channel]]\nname = \"tg\"\ntype = \"telegram\"\nbot_token_file = \"tg-token\"\n\
         chat_id = -1001234567890\napi_base = \"http://{api_addr}\"\n\
         [[channel]]\nname = \"slack\"\ntype = \"slack\"\nurl_file = \"url\"\n"
    );
    let toml = channel_config(sim_addr, &channels, "\"tg\", \"slack\"");
    let (config, _dir) =
        load_config_with_files(&toml, &[("tg-token", TG_TOKEN), ("url", &slack_url)]);
    let daemon = Daemon::start(config).await;
    wait(secs(20)).await;
    daemon.stop().await;
    let logs = captured(&capture);
    assert!(logs.contains("no_service: [redacted]"), "{logs}");
    assert!(
        logs.contains("Bad Request: bot[redacted] was blocked"),
        "{logs}"
    );
    for secret in [TG_TOKEN, "echoed-url-secret", "/services/T0/B0"] {
        assert!(!logs.contains(secret), "{secret} leaked into the logs");
    }
}

#[tokio::test(start_paused = true)]
async fn a_state_with_a_newline_cannot_forge_a_log_line() {
    let (capture, _guard) = capture_logs();
    let (sim, sim_addr) = start_sim(secs(150), &["authorized"]).await;
    sim.set_state(FIRST_ID, "weird\nFORGED ERROR relinkd: all instances lost");
    let (_hook, hook_addr) = Receiver::start().await;
    let (config, _dir) = load_config(&fleet_toml(sim_addr, hook_addr, 1, ""));
    let daemon = Daemon::start(config).await;
    wait(secs(5)).await;
    daemon.stop().await;
    let logs = captured(&capture);
    assert!(
        logs.contains("weird\\nFORGED"),
        "the state was logged: {logs}"
    );
    assert!(
        !logs.lines().any(|line| line.starts_with("FORGED")),
        "a vendor string forged a log line: {logs}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_code_inside_a_vendor_error_body_never_reaches_the_logs() {
    let (capture, _guard) = capture_logs();
    let (sim, sim_addr) = start_sim(secs(150), &["notAuthorized"]).await;
    sim.set_fault(
        FIRST_ID,
        Fault::new(FaultKind::Status {
            code: 400,
            body: r#"{"status":true,"code":"LEAKED42"}"#.into(),
        })
        .on("getAuthorizationCode")
        .times(1),
    );
    let (_hook, hook_addr) = Receiver::start().await;
    let (config, _dir) = load_config(&fleet_toml(sim_addr, hook_addr, 1, ""));
    let daemon = Daemon::start(config).await;
    wait(secs(5)).await;
    daemon.stop().await;
    let logs = captured(&capture);
    assert!(logs.contains("code request failed"), "{logs}");
    assert!(
        !logs.contains("LEAKED42"),
        "a code in an error body was logged"
    );
}
