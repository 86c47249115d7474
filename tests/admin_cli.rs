//! `relinkd status` and `relinkd relink` against a running daemon.

mod common;

use std::process::Command;

use common::*;
use tokio::net::TcpListener;

async fn daemon_with_config_file() -> (Daemon, tempfile::TempDir, relinkd::sim::Simulator) {
    let (sim, sim_addr) = start_sim(secs(150), &["authorized", "notAuthorized"]).await;
    let (_hook, hook_addr) = Receiver::start().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let toml = fleet_toml(sim_addr, hook_addr, 2, "poll_interval = \"1s\"")
        .replace("listen = \"127.0.0.1:0\"", &format!("listen = \"{addr}\""));
    let (config, dir) = load_config(&toml);
    let daemon = Daemon::start_on(config, listener).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    (daemon, dir, sim)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_prints_a_table_of_the_fleet_without_secrets() {
    let (daemon, dir, sim) = daemon_with_config_file().await;
    let out = tokio::task::spawn_blocking(move || relinkd(&dir, &["status"]))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    assert!(!stdout.contains(TOKEN) && !stdout.contains(ADMIN_TOKEN));
    if let Some(code) = sim.current_code(FIRST_ID + 1) {
        assert!(!stdout.contains(&code), "status shows a code");
    }
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relink_asks_the_daemon_and_a_wrong_token_is_refused() {
    let (daemon, dir, _sim) = daemon_with_config_file().await;
    let dir = std::sync::Arc::new(dir);
    let d = dir.clone();
    let ok = tokio::task::spawn_blocking(move || relinkd(&d, &["relink", &FIRST_ID.to_string()]))
        .await
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let d = dir.clone();
    let unknown = tokio::task::spawn_blocking(move || relinkd(&d, &["relink", "42"]))
        .await
        .unwrap();
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("404"));

    let wrong = dir.path().join("wrong-token");
    std::fs::write(&wrong, "not-the-token\n").unwrap();
    let d = dir.clone();
    let refused = tokio::task::spawn_blocking(move || {
        relinkd(
            &d,
            &["status", "--admin-token-file", wrong.to_str().unwrap()],
        )
    })
    .await
    .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("401"), "{stderr}");
    assert!(!stderr.contains("not-the-token"));
    daemon.stop().await;
}
