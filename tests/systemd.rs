//! The real binary under a service manager we play ourselves: the sd_notify
//! messages in order, the watchdog cadence, reloads by SIGHUP, SIGTERM.
//! Real time here (a child process); every wait is for a condition, with a
//! generous deadline, never a fixed sleep.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use relinkd::sim::{Fault, FaultKind};

fn config_for(dir: &Path, sim: std::net::SocketAddr, count: usize) -> String {
    std::fs::write(dir.join("token"), TOKEN).unwrap();
    std::fs::write(dir.join("admin"), ADMIN_TOKEN).unwrap();
    let mut toml = format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{state}\"\nadmin_token_file = \"admin\"\n\
         [defaults]\npoll_interval = \"1s\"\n\
         [[channel]]\nname = \"console\"\ntype = \"console\"\n",
        state = dir.join("state").display()
    );
    for i in 0..count {
        toml.push_str(&format!(
            "[[instance]]\nid = {}\nname = \"line-{i}\"\napi_url = \"http://{sim}\"\n\
             api_token_file = \"token\"\nphone = {}\nchannels = [\"console\"]\n",
            FIRST_ID + i as u64,
            441234500000 + i as u64
        ));
    }
    toml
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_manager_sees_ready_watchdog_reloading_and_stopping_in_order() {
    let (_sim, sim_addr) = start_sim(secs(150), &["authorized", "authorized"]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("relinkd.toml");
    std::fs::write(&config, config_for(dir.path(), sim_addr, 2)).unwrap();
    let socket_path = dir.path().join("notify.sock");
    let notifications = Notifications::bind(&socket_path);

    let mut child = KillOnDrop(
        relinkd_run(&config)
            .env("NOTIFY_SOCKET", &socket_path)
            .env("WATCHDOG_USEC", "2000000")
            .spawn()
            .unwrap(),
    );

    let (ready_at, ready) = notifications.wait_for("READY=1", 0, Duration::from_secs(10));
    assert!(ready.contains("STATUS=2 instances"), "{ready:?}");
    assert!(
        !notifications.all()[..ready_at]
            .iter()
            .any(|(_, m)| m.contains("WATCHDOG=1")),
        "a watchdog ping came before READY"
    );

    // WatchdogSec=2s: a ping every second, never a gap systemd would kill
    // for, never a busy loop.
    let mut after = ready_at;
    let mut pings = Vec::new();
    while pings.len() < 4 {
        let (at, _) = notifications.wait_for("WATCHDOG=1", after + 1, Duration::from_secs(10));
        pings.push(notifications.all()[at].0);
        after = at;
    }
    for pair in pings.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(500) && gap < Duration::from_secs(2),
            "gap {gap:?}"
        );
    }

    // A good reload: RELOADING=1 with MONOTONIC_USEC, then READY=1.
    let before = notifications.len();
    signal(&child.0, "HUP");
    let (at, reloading) = notifications.wait_for("RELOADING=1", before, Duration::from_secs(10));
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading:?}");
    let (_, ready) = notifications.wait_for("READY=1", at, Duration::from_secs(10));
    assert!(ready.contains("STATUS=2 instances"), "{ready:?}");

    // A broken reload: still READY=1, and STATUS says why.
    std::fs::write(&config, "[daemon]\nlisten = 7\n").unwrap();
    let before = notifications.len();
    signal(&child.0, "HUP");
    let (at, _) = notifications.wait_for("RELOADING=1", before, Duration::from_secs(10));
    let (_, ready) = notifications.wait_for("READY=1", at, Duration::from_secs(10));
    assert!(ready.contains("STATUS=reload failed"), "{ready:?}");
    assert!(ready.contains("daemon.listen"), "{ready:?}");

    // SIGTERM: STOPPING=1, exit 0, quickly.
    let before = notifications.len();
    let stop_sent = Instant::now();
    signal(&child.0, "TERM");
    notifications.wait_for("STOPPING=1", before, Duration::from_secs(10));
    let status = wait_exit(&mut child.0, Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    assert!(stop_sent.elapsed() < Duration::from_secs(10));
    assert!(
        dir.path().join("state/state.json").exists(),
        "state persisted at exit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_systemd_relinkd_runs_quietly_and_sigterm_exits_0() {
    let (sim, sim_addr) = start_sim(secs(150), &["authorized"]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("relinkd.toml");
    std::fs::write(&config, config_for(dir.path(), sim_addr, 1)).unwrap();
    // A watchdog asked for, but no socket to send to: not under systemd.
    let log = std::fs::File::create(dir.path().join("stderr")).unwrap();
    let mut child = KillOnDrop(
        relinkd_run(&config)
            .env("WATCHDOG_USEC", "1000000")
            .env("RUST_LOG", "debug")
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap(),
    );
    // Running: it polls its instance, several times.
    eventually(Duration::from_secs(10), "three polls", || {
        sim.calls(FIRST_ID).len() >= 3
    })
    .await;
    assert!(child.0.try_wait().unwrap().is_none(), "exited early");
    let sent = Instant::now();
    signal(&child.0, "TERM");
    let status = wait_exit(&mut child.0, Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    assert!(sent.elapsed() < Duration::from_secs(10));
    let stderr = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
    assert!(stderr.contains("relinkd running"), "{stderr}");
    assert!(
        !stderr.contains("notify"),
        "without NOTIFY_SOCKET there is nothing to notify, and nothing to complain about: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_a_vendor_call_hangs_and_a_delivery_retries_exits_0_with_state_flushed() {
    let (sim, sim_addr) = start_sim(secs(150), &["authorized", "notAuthorized"]).await;
    // Instance 0's vendor never answers; instance 1's code meets a hook that
    // answers 503 for ever, so its delivery keeps retrying.
    sim.set_fault(FIRST_ID, Fault::new(FaultKind::Hang));
    let (hook, hook_addr) = Receiver::start().await;
    hook.fail_for(Duration::from_secs(3600), 503);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("relinkd.toml");
    let toml = edit(
        &fleet_toml(
            sim_addr,
            hook_addr,
            2,
            "request_timeout = \"1h\"\nlinking_poll_interval = \"1s\"",
        ),
        "[daemon]\n",
        &format!(
            "[daemon]\nstate_dir = \"{}\"\n",
            dir.path().join("state").display()
        ),
    );
    std::fs::write(&config, toml).unwrap();
    let mut child = KillOnDrop(
        relinkd_run(&config)
            .env("GREENAPI_TOKEN", TOKEN)
            .env("HOOK_SECRET", WHSEC)
            .env("ADMIN_TOKEN", ADMIN_TOKEN)
            .spawn()
            .unwrap(),
    );
    // Both are under way: the hung call, and a delivery on its third try.
    eventually(
        Duration::from_secs(15),
        "a hung call and a retrying delivery",
        || sim.calls(FIRST_ID).iter().any(|c| c.status == 0) && hook.all().len() >= 3,
    )
    .await;
    let sent = Instant::now();
    signal(&child.0, "TERM");
    let status = wait_exit(&mut child.0, Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    assert!(
        sent.elapsed() < Duration::from_secs(10),
        "{:?}",
        sent.elapsed()
    );
    let state = std::fs::read_to_string(dir.path().join("state/state.json")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    let record = &state["instances"][(FIRST_ID + 1).to_string()];
    assert_eq!(record["phase"], "linking", "{state}");
    assert_eq!(record["codes_used"], 1, "{state}");
}

#[test]
fn a_state_dir_that_cannot_be_written_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, "a file, not a directory").unwrap();
    let config = dir.path().join("relinkd.toml");
    let toml = edit(
        &config_for(dir.path(), "127.0.0.1:9".parse().unwrap(), 1),
        &format!("state_dir = \"{}\"", dir.path().join("state").display()),
        &format!("state_dir = \"{}\"", blocker.join("state").display()),
    );
    std::fs::write(&config, toml).unwrap();
    let out = relinkd_run(&config)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("state_dir"), "{stderr}");
    assert!(stderr.contains("blocker"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn the_unit_starts_after_the_clock_is_set_without_pulling_time_sync_in() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/relinkd.service"
    ))
    .unwrap();
    let lines: Vec<&str> = unit.lines().map(str::trim).collect();
    assert!(
        lines.contains(&"After=time-sync.target"),
        "linking windows read the wall clock"
    );
    // time-sync.target is passive: only its providers pull it in.
    assert!(
        !lines
            .iter()
            .any(|l| (l.starts_with("Wants=") || l.starts_with("Requires="))
                && l.contains("time-sync.target")),
        "{unit}"
    );
}
