//! HTTPS, as in production: the simulator serves TLS with a CA it made,
//! the daemon trusts that CA through `[daemon] ca_file` (and nothing else
//! trusts it), and `HTTPS_PROXY` carries the vendor's connections.

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

const LINKING: &str = "poll_interval = \"60s\"\nlinking_poll_interval = \"5s\"\n\
                       code_ttl = \"150s\"\ncodes_per_episode = 3\ncooldown = \"1h\"";

fn state_polls(outcome: &'static str) -> [(&'static str, &'static str); 2] {
    [("method", "getStateInstance"), ("outcome", outcome)]
}

#[tokio::test(start_paused = true)]
async fn over_https_with_ca_file_an_instance_that_falls_out_gets_its_code() {
    let s = Scenario::new(&["authorized"])
        .transport(Transport::Https)
        .defaults(LINKING)
        .start()
        .await;
    wait(secs(5)).await;
    assert_eq!(
        s.daemon
            .metric("relinkd_api_requests_total", &state_polls("success"))
            .await,
        Some(1.0),
        "the first poll went through TLS"
    );

    s.sim.logout(FIRST_ID);
    wait(secs(70)).await;
    let codes = s.hook.events("code");
    assert_eq!(codes.len(), 1, "{:?}", s.hook.all());
    assert_eq!(
        codes[0].json["code"].as_str(),
        s.sim.current_code(FIRST_ID).as_deref()
    );
    assert_eq!(
        s.daemon
            .metric("relinkd_api_requests_total", &state_polls("transport"))
            .await,
        Some(0.0)
    );
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn without_ca_file_the_self_signed_certificate_is_refused_and_says_so() {
    let (logs, _guard) = capture_logs();
    let s = Scenario::new(&["notAuthorized"])
        .transport(Transport::HttpsUntrusted)
        .defaults(LINKING)
        .start()
        .await;
    wait(secs(10)).await;

    let failed = s
        .daemon
        .metric("relinkd_api_requests_total", &state_polls("transport"))
        .await
        .unwrap_or(0.0);
    assert!(failed >= 1.0, "the poll fails as a transport error");
    let status = s.daemon.instance_status(FIRST_ID).await;
    let why = status["last_error"].as_str().unwrap_or_default().to_owned();
    assert!(why.contains("certificate"), "a clear reason: {status}");
    // Nothing got past the handshake: no request reached the vendor, no
    // code was made or delivered.
    assert!(s.sim.calls(FIRST_ID).is_empty());
    assert_eq!(s.sim.codes_issued(FIRST_ID), 0);
    assert!(s.hook.all().is_empty());

    let logged = captured(&logs);
    assert!(logged.contains("certificate"), "{logged}");
    assert!(!logged.contains(TOKEN), "the token is never logged");
    assert!(!why.contains(TOKEN));
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_reload_that_sets_ca_file_takes_effect_without_a_restart() {
    let (logs, _guard) = capture_logs();
    let s = Scenario::new(&["notAuthorized"])
        .transport(Transport::HttpsUntrusted)
        .defaults(LINKING)
        .start()
        .await;
    wait(secs(10)).await;
    assert!(
        s.sim.calls(FIRST_ID).is_empty(),
        "refused before the reload"
    );

    let trusted = over_tls(
        &fleet_toml_of(s.addrs.sim, s.addrs.hook, &[0], LINKING),
        s.addrs.sim,
        true,
    );
    s.rewrite(&trusted);
    s.daemon.reload().await;
    // The instance keeps its error backoff (at most backoff_max, 5 min).
    for _ in 0..6 * 60 {
        if !s.hook.codes().is_empty() {
            break;
        }
        wait(secs(1)).await;
    }
    assert_eq!(
        s.daemon
            .metric("relinkd_config_reloads_total", &[("outcome", "success")])
            .await,
        Some(1.0)
    );
    assert!(
        captured(&logs).contains("outbound clients rebuilt"),
        "the reload says so"
    );
    let codes = s.hook.codes();
    assert_eq!(codes.len(), 1, "{:?}", s.hook.all());
    assert_eq!(Some(&codes[0]), s.sim.current_code(FIRST_ID).as_ref());
    s.stop().await;
}

/// Reads `child`'s stdout until a line contains `needle`; returns it.
fn line_with(stdout: impl std::io::Read, needle: &str) -> String {
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if line.contains(needle) {
            return line;
        }
    }
    panic!("the output ended without {needle:?}");
}

/// A client of the simulator's control routes that trusts its CA.
fn trusting(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A config for one instance of `relinkd sim`'s default fleet at `api_url`,
/// its codes to `hook`, state in `dir`.
fn sim_fleet_config(dir: &std::path::Path, api_url: &str, hook: std::net::SocketAddr) -> String {
    format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{state}\"\nca_file = \"ca.pem\"\n\n\
         [defaults]\npoll_interval = \"2s\"\nlinking_poll_interval = \"2s\"\n\n\
         [[channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://{hook}/hook\"\n\n\
         [[instance]]\nid = 1101000001\nname = \"sim-line\"\napi_url = \"{api_url}\"\n\
         api_token_env = \"GREENAPI_TOKEN\"\nphone = 441234500000\nchannels = [\"hook\"]\n",
        state = dir.join("state").display(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relinkd_sim_tls_and_relinkd_run_with_its_ca_deliver_a_code() {
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    let mut sim = Command::new(env!("CARGO_BIN_EXE_relinkd"));
    without_proxies(&mut sim)
        .args([
            "sim",
            "--listen",
            "127.0.0.1:0",
            "--instances",
            "1",
            "--unlinked",
            "0",
        ])
        .arg("--tls")
        .arg(&ca_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut sim = KillOnDrop(sim.spawn().unwrap());
    let stdout = sim.0.stdout.take().unwrap();
    let banner = tokio::task::spawn_blocking(move || line_with(stdout, "listening on"))
        .await
        .unwrap();
    let url = banner.rsplit(' ').next().unwrap().trim().to_owned();
    assert!(url.starts_with("https://127.0.0.1:"), "{banner}");
    let ca_pem = std::fs::read_to_string(&ca_path).unwrap();
    assert!(
        ca_pem.starts_with("-----BEGIN CERTIFICATE-----"),
        "{ca_pem}"
    );

    let (hook, hook_addr) = Receiver::start().await;
    let config = dir.path().join("relinkd.toml");
    std::fs::write(&config, sim_fleet_config(dir.path(), &url, hook_addr)).unwrap();
    let daemon = KillOnDrop(
        relinkd_run(&config)
            .env("GREENAPI_TOKEN", "sim-token")
            .spawn()
            .unwrap(),
    );

    let control = trusting(&ca_pem);
    let id = 1_101_000_001;
    let logout = control
        .post(format!("{url}/sim/instances/{id}/logout"))
        .send()
        .await
        .unwrap();
    assert!(logout.status().is_success());
    eventually(secs(30), "a code reaches the hook", || {
        !hook.codes().is_empty()
    })
    .await;
    let current: serde_json::Value = control
        .get(format!("{url}/sim/instances/{id}/code"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        Some(hook.codes()[0].as_str()),
        current["code"].as_str(),
        "{current}"
    );
    drop(daemon);
}

/// A CONNECT proxy on 127.0.0.1 that tunnels anywhere and records each
/// tunnel's target.
async fn start_connect_proxy() -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let targets = Arc::new(Mutex::new(Vec::new()));
    let seen = targets.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut client = tokio::io::BufReader::new(client);
                let mut request = String::new();
                client.read_line(&mut request).await.ok()?;
                let target = request
                    .strip_prefix("CONNECT ")?
                    .split(' ')
                    .next()?
                    .to_owned();
                loop {
                    let mut header = String::new();
                    client.read_line(&mut header).await.ok()?;
                    if header.trim().is_empty() {
                        break;
                    }
                }
                seen.lock().unwrap().push(target.clone());
                let mut upstream = TcpStream::connect(&target).await.ok()?;
                let mut client = client.into_inner();
                client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .ok()?;
                tokio::io::copy_bidirectional(&mut client, &mut upstream)
                    .await
                    .ok()
            });
        }
    });
    (addr, targets)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_proxy_carries_the_vendors_connections() {
    let (proxy, targets) = start_connect_proxy().await;
    let (sim, sim_addr, ca_pem) = start_sim_tls(secs(150), &["notAuthorized"]).await;
    let (hook, hook_addr) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &ca_pem).unwrap();
    let config = dir.path().join("relinkd.toml");
    let api_url = format!("https://{sim_addr}");
    std::fs::write(&config, sim_fleet_config(dir.path(), &api_url, hook_addr)).unwrap();
    let stderr = dir.path().join("stderr");
    let daemon = KillOnDrop(
        relinkd_run(&config)
            .env("GREENAPI_TOKEN", TOKEN)
            .env(
                "HTTPS_PROXY",
                format!("http://proxy-user:proxy-pass@{proxy}"),
            )
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap(),
    );

    eventually(secs(30), "a code reaches the hook", || {
        !hook.codes().is_empty()
    })
    .await;
    assert_eq!(
        Some(hook.codes()[0].clone()),
        sim.current_code(FIRST_ID),
        "the code came through the tunnel"
    );
    let tunnels = targets.lock().unwrap().clone();
    assert!(
        !tunnels.is_empty(),
        "the vendor's connections used the proxy"
    );
    assert!(
        tunnels.iter().all(|t| *t == sim_addr.to_string()),
        "only https:// goes through HTTPS_PROXY (the hook is http://): {tunnels:?}"
    );
    assert!(
        tunnels.len() <= 2,
        "connections are reused, not one per request: {tunnels:?}"
    );
    drop(daemon);
    let logged = std::fs::read_to_string(&stderr).unwrap();
    assert!(
        logged.contains(&format!("https http://{proxy}")),
        "{logged}"
    );
    assert!(!logged.contains("proxy-pass"), "{logged}");
    assert!(!logged.contains(TOKEN), "{logged}");
}
