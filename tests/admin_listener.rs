//! The admin listener against clients that connect and never finish, or
//! connect by the hundred: they are timed out and capped, and cannot take
//! the file descriptors that vendor calls and code deliveries need.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Reads until the server closes the connection (or the read fails);
/// `None` if it is still open after `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_client_that_never_finishes_its_request_head_is_dropped_after_10_seconds() {
    let s = Scenario::new(&["authorized"]).start().await;
    let daemon = &s.daemon;
    let mut slow = TcpStream::connect(daemon.addr).await.unwrap();
    slow.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: relinkd\r\n")
        .await
        .unwrap();
    let closed = closed_within(&mut slow, secs(60)).await;
    let closed = closed.expect("a client that never finishes its headers is never dropped");
    assert!(closed >= secs(10) && closed <= secs(11), "{closed:?}");
    // A keep-alive connection left idle after a request goes the same way.
    let mut idle = TcpStream::connect(daemon.addr).await.unwrap();
    idle.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: relinkd\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 512];
    let n = idle.read(&mut answer).await.unwrap();
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"));
    assert!(closed_within(&mut idle, secs(60)).await.is_some());
    assert_eq!(
        daemon
            .metric(
                "relinkd_listener_connections_timed_out_total",
                &[("reason", "header")]
            )
            .await,
        Some(2.0)
    );
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn connections_past_the_cap_are_closed_on_arrival_and_counted_while_codes_still_go_out() {
    let s = Scenario::new(&["authorized"])
        .defaults("poll_interval = \"2s\"")
        .daemon_keys("max_connections = 4")
        .start()
        .await;
    let daemon = &s.daemon;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(daemon.addr).await.unwrap());
    }
    wait(Duration::from_millis(100)).await;
    let mut extra = TcpStream::connect(daemon.addr).await.unwrap();
    let closed = closed_within(&mut extra, secs(1)).await;
    assert!(closed.is_some(), "a fifth connection was held");
    // The full listener does not stop the linking loop.
    s.sim.logout(FIRST_ID);
    wait(secs(5)).await;
    assert_eq!(s.hook.codes().len(), 1, "a code was delivered meanwhile");
    // The held connections time out and the listener serves again.
    wait(secs(10)).await;
    assert_eq!(
        daemon
            .metric("relinkd_listener_connections_refused_total", &[])
            .await,
        Some(1.0)
    );
    assert_eq!(
        daemon.metric("relinkd_listener_max_connections", &[]).await,
        Some(4.0)
    );
    drop(held);
    s.stop().await;
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Real time and the real binary: under a 256 open-files limit (systemd's
/// default soft limit is 1,024), 400 idle connections used to take every
/// descriptor, and the code for an instance that fell out was never sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_cannot_take_the_file_descriptors_that_deliver_codes() {
    let (sim, sim_addr) = start_sim(secs(150), &["authorized"]).await;
    let (hook, hook_addr) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let toml = edit(
        &edit(
            &fleet_toml(sim_addr, hook_addr, 1, "poll_interval = \"1s\""),
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"127.0.0.1:{port}\""),
        ),
        "[daemon]\n",
        &format!(
            "[daemon]\nstate_dir = \"{}\"\n",
            dir.path().join("state").display()
        ),
    );
    let config = dir.path().join("relinkd.toml");
    std::fs::write(&config, toml).unwrap();
    let mut child = std::process::Command::new("sh")
        .args(["-c", "ulimit -n 256 && exec \"$0\" run --config \"$1\""])
        .arg(env!("CARGO_BIN_EXE_relinkd"))
        .arg(&config)
        .env("GREENAPI_TOKEN", TOKEN)
        .env("HOOK_SECRET", WHSEC)
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .env_remove("NOTIFY_SOCKET")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while common::http()
        .get(format!("{url}/-/healthy"))
        .send()
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "relinkd did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut idle = Vec::new();
    for _ in 0..400 {
        // A listener past its backlog leaves a connect hanging: stop there.
        let connect = TcpStream::connect(("127.0.0.1", port));
        match tokio::time::timeout(Duration::from_secs(1), connect).await {
            Ok(Ok(stream)) => idle.push(stream),
            Ok(Err(_)) => {}
            Err(_) => break,
        }
    }
    sim.logout(FIRST_ID);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while hook.codes().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let delivered = !hook.codes().is_empty();
    drop(idle);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let scrape = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .get(format!("{url}/metrics"))
        .send()
        .await;
    let metrics = match scrape {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    child.kill().unwrap();
    let _ = child.wait();
    assert!(
        delivered,
        "the code was not delivered while idle clients held the listener"
    );
    let refused = series_value(&metrics, "relinkd_listener_connections_refused_total", &[]);
    assert!(refused.unwrap_or(0.0) >= 300.0, "{refused:?}");
    assert_eq!(
        series_value(&metrics, "relinkd_listener_max_connections", &[]),
        Some(64.0),
        "a quarter of the open-files limit"
    );
}
