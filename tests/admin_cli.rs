//! `relinkd status` and `relinkd relink` against a running daemon.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use tokio::net::TcpListener;

/// The daemon on a listener whose address is in its config (the CLI reads it
/// there), with instance 0 linked and instance 1 unlinked, whose one code
/// per episode lives `ttl` seconds; returns once instance 1's code is out.
async fn daemon_with_config_file(
    ttl: u64,
) -> (Daemon, tempfile::TempDir, relinkd::sim::Simulator, Receiver) {
    let started = start_daemon(ttl, |_| {}).await;
    eventually(
        Duration::from_secs(10),
        "instance 1's code is delivered",
        || !started.3.codes().is_empty(),
    )
    .await;
    started
}

/// The daemon of `daemon_with_config_file`, its hook set up by `hook_setup`
/// first; returns at once.
async fn start_daemon(
    ttl: u64,
    hook_setup: impl FnOnce(&Receiver),
) -> (Daemon, tempfile::TempDir, relinkd::sim::Simulator, Receiver) {
    let (sim, sim_addr) = start_sim(secs(ttl), &["authorized", "notAuthorized"]).await;
    let (hook, hook_addr) = Receiver::start().await;
    hook_setup(&hook);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let toml = edit(
        &fleet_toml(
            sim_addr,
            hook_addr,
            2,
            &format!("poll_interval = \"1s\"\ncodes_per_episode = 1\ncode_ttl = \"{ttl}s\""),
        ),
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"{addr}\""),
    );
    let (config, dir) = load_config(&toml);
    let daemon = Daemon::start_on(config, listener).await;
    (daemon, dir, sim, hook)
}

fn relinkd(dir: &tempfile::TempDir, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_relinkd"))
        .args(args)
        .arg("--config")
        .arg(dir.path().join("relinkd.toml"))
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .env_remove("RELINKD_ADMIN_TOKEN_FILE")
        .output()
        .unwrap()
}

async fn run(dir: &std::sync::Arc<tempfile::TempDir>, args: &[&str]) -> std::process::Output {
    let (dir, args): (_, Vec<String>) =
        (dir.clone(), args.iter().map(|a| (*a).to_owned()).collect());
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        relinkd(&dir, &args)
    })
    .await
    .unwrap()
}

/// What `relinkd ARGS` prints on stdout; it must succeed.
async fn stdout_of(dir: &std::sync::Arc<tempfile::TempDir>, args: &[&str]) -> String {
    let out = run(dir, args).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "relinkd {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_prints_a_table_of_the_fleet_without_secrets() {
    let (daemon, dir, _sim, hook) = daemon_with_config_file(150).await;
    let dir = std::sync::Arc::new(dir);
    let stdout = stdout_of(&dir, &["status"]).await;
    assert!(stdout.starts_with("ID "), "{stdout}");
    assert!(
        stdout.contains("line-0") && stdout.contains("authorized"),
        "{stdout}"
    );
    assert!(
        stdout.contains("line-1") && stdout.contains("linking"),
        "{stdout}"
    );
    assert!(stdout.contains("2 instances:"), "{stdout}");
    let codes = hook.codes();
    assert_eq!(codes.len(), 1, "a code exists to leak");
    Sweep::default()
        .codes(codes)
        .assert_clean("relinkd status", &stdout);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_a_failing_channels_last_error_under_the_table_then_the_summary() {
    let (daemon, dir, _sim, hook) = start_daemon(150, |hook| hook.fail_for(secs(600), 503)).await;
    let dir = std::sync::Arc::new(dir);
    let unlinked = FIRST_ID + 1;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while daemon.instance_status(unlinked).await["delivery_errors"]["hook"].is_null() {
        assert!(std::time::Instant::now() < deadline, "no delivery error");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stdout = stdout_of(&dir, &["status"]).await;
    let lines: Vec<&str> = stdout.lines().collect();
    // The table (a header, two instances), the errors, the summary last.
    assert!(lines[0].starts_with("ID "), "{stdout}");
    assert_eq!(
        lines[3], "delivery errors (last failed attempt per channel):",
        "{stdout}"
    );
    assert!(
        lines[4].starts_with(&format!(
            "  line-1 ({unlinked}) via hook: server (HTTP 503), attempt "
        )),
        "{stdout}"
    );
    assert_eq!(
        lines.last(),
        Some(&"2 instances: 1 linked, 1 linking, 0 paused"),
        "the summary ends it, restricted left out at 0:\n{stdout}"
    );
    assert!(hook.codes().is_empty(), "the hook took nothing");
    let json = run(&dir, &["status", "--json"]).await;
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let failed = &json["instances"][1]["delivery_errors"]["hook"];
    assert_eq!(failed["reason"], "server", "{json}");
    assert_eq!(failed["error"], "server (HTTP 503)", "{json}");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relink_ends_a_pause_with_a_fresh_code_and_a_wrong_token_is_refused_everywhere() {
    let (daemon, dir, sim, _hook) = daemon_with_config_file(2).await;
    let dir = std::sync::Arc::new(dir);
    let unlinked = FIRST_ID + 1;
    // Its one code expires after 2 s: the budget is spent, codes pause.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while daemon.instance_status(unlinked).await["phase"] != "paused" {
        assert!(std::time::Instant::now() < deadline, "no pause");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sim.codes_issued(unlinked), 1);

    // A wrong token: refused on every command, nothing done.
    let wrong = dir.path().join("wrong-token");
    std::fs::write(&wrong, "not-the-token\n").unwrap();
    let wrong = wrong.to_str().unwrap().to_owned();
    for args in [
        vec!["status", "--admin-token-file", &wrong],
        vec!["relink", "1101000002", "--admin-token-file", &wrong],
    ] {
        let refused = run(&dir, &args).await;
        assert_eq!(refused.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains("401"), "{args:?}: {stderr}");
        assert!(!stderr.contains("not-the-token"));
    }

    assert_eq!(
        sim.codes_issued(unlinked),
        1,
        "a refused relink did something"
    );
    assert_eq!(daemon.instance_status(unlinked).await["phase"], "paused");

    // The right token: the pause ends with a fresh code.
    let ok = run(&dir, &["relink", &unlinked.to_string()]).await;
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    eventually(Duration::from_secs(10), "relink gets a fresh code", || {
        sim.codes_issued(unlinked) == 2
    })
    .await;

    let unknown = run(&dir, &["relink", "42"]).await;
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("404"));
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relink_takes_a_name_and_says_a_valid_code_is_kept() {
    let (daemon, dir, sim, _hook) = daemon_with_config_file(150).await;
    let dir = std::sync::Arc::new(dir);
    let unlinked = FIRST_ID + 1;
    let stdout = stdout_of(&dir, &["relink", "line-1"]).await;
    assert!(
        stdout.starts_with(&format!(
            "relink requested for line-1 ({unlinked}): a code is still valid until "
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("keeps that code (a valid code is never replaced)"),
        "{stdout}"
    );
    // And it does as it says: polled, no second code.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sim.codes_issued(unlinked), 1);

    let linked = run(&dir, &["relink", "line-0"]).await;
    assert!(linked.status.success());
    assert!(
        String::from_utf8_lossy(&linked.stdout).contains(&format!(
            "relink requested for line-0 ({FIRST_ID}): relinkd polls it now and, if it is still \
             unlinked, requests a code."
        )),
        "{}",
        String::from_utf8_lossy(&linked.stdout)
    );
    let unknown = run(&dir, &["relink", "no such line"]).await;
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("404"));
    daemon.stop().await;
}

#[test]
fn status_from_a_shell_that_cannot_read_the_credential_points_to_admin_token_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("relinkd.toml"),
        "[daemon]\nlisten = \"127.0.0.1:9\"\nadmin_token_credential = \"admin-token\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_relinkd"))
        .args(["status", "--config"])
        .arg(dir.path().join("relinkd.toml"))
        .env_remove("CREDENTIALS_DIRECTORY")
        .env_remove("RELINKD_ADMIN_TOKEN_FILE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("daemon.admin_token_credential"), "{stderr}");
    assert!(stderr.contains("--admin-token-file FILE"), "{stderr}");
    // Both kinds of credential README recommends: a plain file and one
    // encrypted with systemd-creds.
    assert!(
        stderr.contains("--admin-token-file /etc/relinkd/credentials/admin-token"),
        "{stderr}"
    );
    assert!(stderr.contains("systemd-creds decrypt"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_channel_with_digest_sends_the_running_fleets_digest_now() {
    let (daemon, dir, _sim, hook) = daemon_with_config_file(150).await;
    let dir = std::sync::Arc::new(dir);
    assert_eq!(
        stdout_of(&dir, &["test-channel", "hook", "--digest"]).await,
        "channel hook: digest delivered\n"
    );
    let digests = hook.events("digest");
    assert_eq!(digests.len(), 1);
    assert_eq!(digests[0].json["counts"]["instances"], 2);
    assert_eq!(digests[0].json["unlinked"][0]["name"], "line-1");
    let unknown = run(&dir, &["test-channel", "nope", "--digest"]).await;
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no channel named \"nope\""),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
    daemon.stop().await;
}
