//! `relinkd test-channel NAME`: an operator checks a channel before an
//! outage needs it.

mod common;

use std::process::Command;

use common::*;

fn run(dir: &std::path::Path, name: &str) -> std::process::Output {
    without_proxies(&mut Command::new(env!("CARGO_BIN_EXE_relinkd")))
        .args(["test-channel", name, "--config"])
        .arg(dir.join("relinkd.toml"))
        .env("GREENAPI_TOKEN", TOKEN)
        .env("HOOK_SECRET", WHSEC)
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .env_remove("RUST_LOG")
        .env_remove("RELINKD_LOG_FORMAT")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_message_reaches_the_channel_and_a_refusal_says_why() {
    let (hook, hook_addr) = Receiver::start().await;
    let toml = fleet_toml("127.0.0.1:9".parse().unwrap(), hook_addr, 1, "");
    let (_config, dir) = load_config(&toml);
    let path = dir.path().to_owned();

    let p = path.clone();
    let ok = tokio::task::spawn_blocking(move || run(&p, "hook"))
        .await
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("delivered"));
    let got = hook.events("test");
    assert_eq!(got.len(), 1);
    assert!(verify_standard_webhook(
        WHSEC,
        &got[0].headers,
        &got[0].body
    ));
    assert!(got[0].json["text"].as_str().unwrap().contains("hook"));

    hook.script(vec![Answer::with_body(404, "no such hook")]);
    let p = path.clone();
    let refused = tokio::task::spawn_blocking(move || run(&p, "hook"))
        .await
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("client"), "{stderr}");
    assert!(stderr.contains("404"), "{stderr}");

    let p = path.clone();
    let unknown = tokio::task::spawn_blocking(move || run(&p, "nope"))
        .await
        .unwrap();
    assert_eq!(unknown.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("\"nope\"") && stderr.contains("hook"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_that_echoes_the_secret_url_is_printed_without_it() {
    let (hooks, hooks_addr) = Receiver::start().await;
    hooks.script(vec![Answer::echoing_path(404, "no_service: ")]);
    let url = format!("http://{hooks_addr}/services/T0/B0/echoed-url-secret");
    let toml = edit(
        &fleet_toml("127.0.0.1:9".parse().unwrap(), hooks_addr, 1, ""),
        "[[instance]]",
        "[[channel]]\nname = \"slack\"\ntype = \"slack\"\nurl_file = \"url\"\n\n[[instance]]",
    );
    let (_config, dir) = load_config_with_files(&toml, &[("url", &url)]);
    let path = dir.path().to_owned();
    let refused = tokio::task::spawn_blocking(move || run(&path, "slack"))
        .await
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(output.contains("no_service: [redacted]"), "{output}");
    assert!(!output.contains("echoed-url-secret"), "{output}");
    assert!(!output.contains("/services/T0"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failed_attempt_is_printed_once_as_it_happens_and_the_end_names_the_real_reason() {
    let (hook, hook_addr) = Receiver::start().await;
    let toml = fleet_toml("127.0.0.1:9".parse().unwrap(), hook_addr, 1, "");
    let (_config, dir) = load_config(&toml);
    let path = dir.path().to_owned();

    // One 503, then accepted: the retry is shown, the test still passes.
    hook.script(vec![Answer::status(503)]);
    let p = path.clone();
    let retried = tokio::task::spawn_blocking(move || run(&p, "hook"))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&retried.stdout);
    assert!(retried.status.success(), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("channel hook: attempt 1 failed: server (HTTP 503); retrying in "),
        "{stdout}"
    );
    assert_eq!(lines.last(), Some(&"channel hook: test message delivered"));
    let stderr = String::from_utf8_lossy(&retried.stderr);
    assert!(
        !stderr.contains("attempt") && !stderr.contains("delivered"),
        "each attempt is said once, on stdout:\n{stderr}"
    );

    // A final refusal: one attempt, and its reason at the end.
    hook.script(vec![Answer::status(404)]);
    let p = path.clone();
    let refused = tokio::task::spawn_blocking(move || run(&p, "hook"))
        .await
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&refused.stdout),
        "channel hook: attempt 1 failed: client (HTTP 404); no more attempts\n"
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(
        stderr, "relinkd: channel hook: not delivered: client (HTTP 404) after 1 attempt\n",
        "the outcome is said once"
    );
}
