//! Tokens, channel secrets and codes never reach anything relinkd writes:
//! logs at any level (text and JSON), /metrics, the status API, `relinkd
//! status`, the state file, `STATUS=` lines; whatever fails. Every check
//! goes through one [`Sweep`] of every secret the config holds and every
//! code issued.
//!
//! The in-process tests capture logs with a thread-local subscriber
//! (`common::capture_logs`).

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use relinkd::sim::{Fault, FaultKind};

/// Instance 0 with channels `names`, and the channel definitions.
fn channel_config(sim: std::net::SocketAddr, channels: &str, names: &str) -> String {
    format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\n[defaults]\ncode_ttl = \"150s\"\n{channels}\n\
         [[instance]]\nid = {FIRST_ID}\nname = \"line-0\"\napi_url = \"http://{sim}\"\n\
         api_token_env = \"GREENAPI_TOKEN\"\nphone = 441234500000\nchannels = [{names}]\n"
    )
}

/// A port nothing listens on now.
fn closed_port() -> std::net::SocketAddr {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    closed.local_addr().unwrap()
}

#[tokio::test(start_paused = true)]
async fn no_token_or_code_appears_in_logs_at_any_level() {
    let (capture, _guard) = capture_logs();
    // An unlinked instance (codes flow), one whose vendor fails in every way,
    // and one whose API host refuses connections (transport errors).
    let gone = closed_port();
    let s = Scenario::new(&["notAuthorized", "authorized"])
        .vendor_code_ttl(secs(20))
        .prepare(|sim, hook| {
            for kind in [
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
            ] {
                sim.add_fault(FIRST_ID + 1, Fault::new(kind).times(1));
            }
            hook.answer_with(&[500, 401]);
        })
        .config(move |a| {
            let mut toml = fleet_toml(
                a.sim,
                a.hook,
                2,
                "code_ttl = \"20s\"\nlinking_poll_interval = \"2s\"\npoll_interval = \"5s\"\n\
                 request_timeout = \"3s\"",
            );
            toml.push_str(&format!(
                "\n[[instance]]\nid = 1101000099\nname = \"gone\"\napi_url = \"http://{gone}\"\n\
                 api_token_env = \"GREENAPI_TOKEN\"\nphone = 441234599999\nchannels = [\"hook\"]\n"
            ));
            toml
        })
        .start()
        .await;
    // Codes at about 0 s, 20 s and 40 s (the first meets a 500 then a 401).
    wait(secs(50)).await;
    let code = s.hook.codes().pop().expect("codes were delivered");
    s.sim.enter_code(FIRST_ID, &code).unwrap();
    wait(secs(120)).await;
    let codes: Vec<String> = s
        .hook
        .all()
        .iter()
        .filter_map(|r| r.json["code"].as_str().map(str::to_owned))
        .collect();
    s.stop().await;

    let logs = captured(&capture);
    assert!(logs.contains("linking code received"), "the scenario ran");
    assert!(logs.contains("state poll failed"), "faults were logged");
    assert!(logs.len() > 10_000, "trace level was captured");
    assert!(codes.len() >= 3);
    Sweep::default()
        .codes(codes)
        .assert_clean("the logs", &logs);
}

#[tokio::test(start_paused = true)]
async fn bot_tokens_and_webhook_urls_never_reach_the_logs() {
    let (capture, _guard) = capture_logs();
    let gone = closed_port();
    // The hook plays both the Telegram API (500, then 401) and the Slack
    // webhook (then 500, 403); the third channel's host refuses connections.
    let s = Scenario::new(&["notAuthorized"])
        .prepare(|_, hook| {
            hook.script(vec![
                Answer::status(500),
                Answer::status(401),
                Answer::status(500),
                Answer::status(403),
            ])
        })
        .file("tg-token", TG_TOKEN)
        .file_for("url", |a| {
            format!("http://{}/services/T/B/slack-url-secret", a.hook)
        })
        .file(
            "gone-url",
            &format!("http://{gone}/services/T/B/gone-url-secret"),
        )
        .config(|a| {
            let channels = format!(
                "[[channel]]\nname = \"tg\"\ntype = \"telegram\"\nbot_token_file = \"tg-token\"\n\
                 chat_id = -1001234567890\napi_base = \"http://{}\"\n\
                 [[channel]]\nname = \"slack\"\ntype = \"slack\"\nurl_file = \"url\"\n\
                 [[channel]]\nname = \"gone\"\ntype = \"slack\"\nurl_file = \"gone-url\"\n",
                a.hook
            );
            channel_config(a.sim, &channels, "\"tg\", \"slack\", \"gone\"")
        })
        .start()
        .await;
    wait(secs(200)).await;
    s.stop().await;
    let logs = captured(&capture);
    assert!(
        logs.contains("notification not delivered"),
        "the failures were logged"
    );
    Sweep::default()
        .secret("a Slack webhook path", "/services/T/B/slack-url-secret")
        .secret("a Slack webhook path", "/services/T/B/gone-url-secret")
        .assert_clean("the logs", &logs);
}

#[tokio::test(start_paused = true)]
async fn a_receiver_that_echoes_its_secret_url_or_token_in_an_error_cannot_leak_it() {
    let (capture, _guard) = capture_logs();
    // Telegram's `description` quoting the bot token, and a Slack-shaped
    // hook that quotes the path it was called on (the secret part of its URL).
    let s = Scenario::new(&["notAuthorized"])
        .prepare(|_, hook| {
            hook.script(vec![
                Answer::with_body(
                    400,
                    &format!(
                        r#"{{"ok":false,"description":"Bad Request: bot{TG_TOKEN} was blocked"}}"#
                    ),
                ),
                Answer::echoing_path(404, "no_service: "),
            ])
        })
        .file("tg-token", TG_TOKEN)
        .file_for("url", |a| {
            format!("http://{}/services/T0/B0/echoed-url-secret", a.hook)
        })
        .config(|a| {
            let channels = format!(
                "[[channel]]\nname = \"tg\"\ntype = \"telegram\"\nbot_token_file = \"tg-token\"\n\
                 chat_id = -1001234567890\napi_base = \"http://{}\"\n\
                 [[channel]]\nname = \"slack\"\ntype = \"slack\"\nurl_file = \"url\"\n",
                a.hook
            );
            channel_config(a.sim, &channels, "\"tg\", \"slack\"")
        })
        .start()
        .await;
    wait(secs(20)).await;
    s.stop().await;
    let logs = captured(&capture);
    assert!(logs.contains("no_service: [redacted]"), "{logs}");
    assert!(
        logs.contains("Bad Request: bot[redacted] was blocked"),
        "{logs}"
    );
    Sweep::default()
        .secret("a Slack webhook path", "/services/T0/B0/echoed-url-secret")
        .secret("a Slack webhook path", "/services/T0/B0")
        .assert_clean("the logs", &logs);
}

#[tokio::test(start_paused = true)]
async fn a_state_with_a_newline_cannot_forge_a_log_line() {
    let (capture, _guard) = capture_logs();
    let s = Scenario::new(&["authorized"])
        .prepare(|sim, _| {
            sim.set_state(FIRST_ID, "weird\nFORGED ERROR relinkd: all instances lost")
        })
        .start()
        .await;
    wait(secs(5)).await;
    s.stop().await;
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
    let s = Scenario::new(&["notAuthorized"])
        .prepare(|sim, _| {
            sim.set_fault(
                FIRST_ID,
                Fault::new(FaultKind::Status {
                    code: 400,
                    body: r#"{"status":true,"code":"LEAKED42"}"#.into(),
                })
                .on("getAuthorizationCode")
                .times(1),
            )
        })
        .start()
        .await;
    wait(secs(5)).await;
    s.stop().await;
    let logs = captured(&capture);
    assert!(logs.contains("code request failed"), "{logs}");
    Sweep::default()
        .codes(["LEAKED42".to_owned()])
        .assert_clean("the logs", &logs);
}

/// The real binary, with JSON logs at debug (dependencies included) and a
/// service manager's socket: every secret of a config with every kind of
/// secret, and every code, is searched for in everything it wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_code_reaches_any_place_relinkd_writes() {
    let (sim, sim_addr) = start_sim(secs(150), &["notAuthorized", "authorized"]).await;
    // One instance whose vendor keeps failing, so error paths log too.
    sim.set_fault(
        FIRST_ID + 1,
        Fault::new(FaultKind::Status {
            code: 502,
            body: "<html>bad gateway</html>".into(),
        }),
    );
    let (hook, hook_addr) = Receiver::start().await;
    let (tg, tg_addr) = Receiver::start().await;
    tg.answer_with(&[500]);
    let (slack, slack_addr) = Receiver::start().await;
    slack.answer_with(&[503]);
    let dir = tempfile::tempdir().unwrap();
    let slack_url = format!("http://{slack_addr}/services/T9/B9/sweep-url-secret");
    const SMTP_PASSWORD: &str = "smtp-pass-7e1d";
    const FORWARD_TOKEN: &str = "fwd-token-3b8c61";
    for (name, secret) in [
        ("forward-token", FORWARD_TOKEN),
        ("token", TOKEN),
        ("admin", ADMIN_TOKEN),
        ("whsec", WHSEC),
        ("tg-token", TG_TOKEN),
        ("slack-url", slack_url.as_str()),
        ("smtp-password", SMTP_PASSWORD),
    ] {
        std::fs::write(dir.path().join(name), secret).unwrap();
        let private = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600);
        std::fs::set_permissions(dir.path().join(name), private).unwrap();
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The mail channel is configured (its password loaded) but used by no
    // instance: nothing waits on it at shutdown.
    let smtp = closed_port();
    let mut toml = format!(
        "[daemon]\nlisten = \"127.0.0.1:{port}\"\nstate_dir = \"{state}\"\nlog_format = \"json\"\n\
         admin_token_file = \"admin\"\ngreenapi_webhook_token_file = \"forward-token\"\n\
         [defaults]\npoll_interval = \"1s\"\nlinking_poll_interval = \"1s\"\n\
         [[channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://{hook_addr}/hook\"\nsecret_file = \"whsec\"\n\
         [[channel]]\nname = \"tg\"\ntype = \"telegram\"\nbot_token_file = \"tg-token\"\n\
         chat_id = -100123456\napi_base = \"http://{tg_addr}\"\n\
         [[channel]]\nname = \"slack\"\ntype = \"slack\"\nurl_file = \"slack-url\"\n\
         [[channel]]\nname = \"mail\"\ntype = \"email\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {smtp_port}\n\
         tls = \"none\"\nusername = \"relinkd\"\npassword_file = \"smtp-password\"\n\
         from = \"relinkd@example.com\"\nto = [\"ops@example.com\"]\ntimeout = \"1s\"\n",
        state = dir.path().join("state").display(),
        smtp_port = smtp.port(),
    );
    for i in 0..2 {
        toml.push_str(&format!(
            "[[instance]]\nid = {}\nname = \"line-{i}\"\napi_url = \"http://{sim_addr}\"\n\
             api_token_file = \"token\"\nphone = {}\n\
             channels = [\"hook\", \"tg\", \"slack\"]\n",
            FIRST_ID + i as u64,
            441234500000 + i as u64
        ));
    }
    let config = dir.path().join("relinkd.toml");
    std::fs::write(&config, &toml).unwrap();
    let socket = dir.path().join("notify.sock");
    let notifications = Notifications::bind(&socket);
    let stderr = std::fs::File::create(dir.path().join("stderr")).unwrap();
    let mut child = KillOnDrop(
        relinkd_run(&config)
            .env("NOTIFY_SOCKET", &socket)
            .env("RUST_LOG", "debug")
            .stderr(Stdio::from(stderr))
            .spawn()
            .unwrap(),
    );
    eventually(
        Duration::from_secs(20),
        "a code delivered by webhook",
        || !hook.codes().is_empty() && tg.all().len() >= 2 && slack.all().len() >= 2,
    )
    .await;

    let base = format!("http://127.0.0.1:{port}");
    // Forwarded notifications, with the right token and a wrong one that
    // differs from it by its last character only.
    for token in [
        FORWARD_TOKEN.to_owned(),
        format!("{}x", &FORWARD_TOKEN[..FORWARD_TOKEN.len() - 1]),
    ] {
        let response = common::http()
            .post(format!("{base}/hooks/greenapi"))
            .bearer_auth(&token)
            .body(format!(
                r#"{{"typeWebhook":"stateInstanceChanged","instanceData":{{"idInstance":{FIRST_ID}}},"stateInstance":"notAuthorized"}}"#
            ))
            .send()
            .await
            .unwrap();
        assert!(matches!(response.status().as_u16(), 200 | 401));
    }
    let metrics = common::http()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let status_api = common::http()
        .get(format!("{base}/api/v1/instances"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let cli = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_relinkd"))
                .args(["status", "--config"])
                .arg(&config)
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    signal(&child.0, "TERM");
    assert!(wait_exit(&mut child.0, Duration::from_secs(10)).success());

    let codes: Vec<String> = [&hook, &tg, &slack]
        .iter()
        .flat_map(|r| r.all())
        .filter_map(|r| {
            r.json["code"].as_str().map(str::to_owned).or_else(|| {
                // Telegram and Slack carry the code in their text.
                let text = r.json["text"].as_str()?;
                let code = sim.current_code(FIRST_ID)?;
                text.contains(&code).then_some(code)
            })
        })
        .collect();
    assert!(!codes.is_empty());
    let sweep = Sweep::default()
        .whole("the Slack webhook URL", &slack_url)
        .secret("the Slack webhook path", "/services/T9/B9/sweep-url-secret")
        .secret("the SMTP password", SMTP_PASSWORD)
        .secret("the forwarded webhooks' token", FORWARD_TOKEN)
        .codes(codes);
    let logs = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
    assert!(
        logs.contains("\"level\":\"DEBUG\""),
        "debug logs were written: {logs}"
    );
    assert!(
        logs.lines().all(|l| l.starts_with('{')),
        "JSON lines: {logs}"
    );
    assert!(logs.contains("linking code received"), "{logs}");
    let status_lines = notifications.statuses().join("\n");
    assert!(status_lines.contains("2 instances"), "{status_lines}");
    let state = std::fs::read_to_string(dir.path().join("state/state.json")).unwrap();
    for (place, text) in [
        ("the JSON logs at debug", logs.as_str()),
        ("/metrics", metrics.as_str()),
        ("the status API", status_api.as_str()),
        ("relinkd status", &String::from_utf8_lossy(&cli.stdout)),
        (
            "relinkd status's errors",
            &String::from_utf8_lossy(&cli.stderr),
        ),
        ("the state file", state.as_str()),
        ("STATUS= lines", status_lines.as_str()),
    ] {
        sweep.assert_clean(place, text);
    }
}
