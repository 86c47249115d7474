//! Running as a service: reloads that keep episodes, persisted state across
//! restarts, the admin API. In-process, on the paused clock.

mod common;

use std::os::unix::fs::OpenOptionsExt as _;

use common::*;
use relinkd::sim::{Fault, FaultKind};

const DEFAULTS: &str = "poll_interval = \"60s\"\nlinking_poll_interval = \"5s\"\n\
                        code_ttl = \"150s\"\ncodes_per_episode = 3\ncooldown = \"1h\"";

/// Instance 1 pauses after one code (codes_per_episode = 1 override).
fn with_quick_pause(toml: String) -> String {
    let marker = format!("id = {}\n", FIRST_ID + 1);
    edit(&toml, &marker, &format!("{marker}codes_per_episode = 1\n"))
}

async fn reload_successful(daemon: &Daemon) -> f64 {
    daemon
        .metric("relinkd_config_last_reload_successful", &[])
        .await
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_reload_adds_and_removes_instances_and_keeps_untouched_episodes() {
    let s = Scenario::new(&["notAuthorized", "notAuthorized", "authorized", "authorized"])
        .config(|a| with_quick_pause(fleet_toml_of(a.sim, a.hook, &[0, 1, 2], DEFAULTS)))
        .start()
        .await;

    // Instance 0 has a code out; instance 1 spent its budget and is paused.
    wait(secs(160)).await;
    assert_eq!(s.sim.codes_issued(FIRST_ID), 2);
    assert_eq!(
        s.daemon.instance_status(FIRST_ID + 1).await["phase"],
        "paused"
    );
    let code_before = s.sim.current_code(FIRST_ID).unwrap();

    // Drop instance 2, add instance 3, and change a setting of instance 0.
    let after = edit(
        &with_quick_pause(s.fleet_toml(&[0, 1, 3], DEFAULTS)),
        &format!("id = {FIRST_ID}\n"),
        &format!("id = {FIRST_ID}\npoll_interval = \"30s\"\n"),
    );
    s.rewrite(&after);
    let (status, body) = s.daemon.api_post("/-/reload", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["added"], 1);
    assert_eq!(body["removed"], 1);
    assert_eq!(body["updated"], 1);
    assert_eq!(body["unchanged"], 1);

    let removed_calls = s.sim.calls(FIRST_ID + 2).len();
    wait(secs(60)).await;
    // The outstanding code is kept: no new one while it is valid.
    assert_eq!(s.sim.codes_issued(FIRST_ID), 2);
    assert_eq!(s.sim.current_code(FIRST_ID).unwrap(), code_before);
    // The pause is kept.
    let paused = s.daemon.instance_status(FIRST_ID + 1).await;
    assert_eq!(paused["phase"], "paused");
    assert_eq!(s.sim.codes_issued(FIRST_ID + 1), 1);
    // The removed instance is no longer polled; the added one is.
    assert_eq!(s.sim.calls(FIRST_ID + 2).len(), removed_calls);
    assert!(!s.sim.calls(FIRST_ID + 3).is_empty());
    assert_eq!(
        s.daemon.instance_status(FIRST_ID + 2).await,
        serde_json::Value::Null
    );
    let metrics = s.daemon.scrape().await;
    assert!(!metrics.contains(&format!("wa_instance=\"{}\"", FIRST_ID + 2)));
    assert_eq!(reload_successful(&s.daemon).await, 1.0);
    assert_eq!(s.hook.events("paused").len(), 1);
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_broken_reload_keeps_the_running_config_and_says_why() {
    let s = Scenario::new(&["authorized", "authorized"])
        .defaults(DEFAULTS)
        .start()
        .await;
    wait(secs(5)).await;

    s.rewrite(&edit(
        &s.fleet_toml(&[0], DEFAULTS),
        "phone = ",
        "phone = -",
    ));
    let (status, body) = s.daemon.api_post("/-/reload", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 422);
    assert_eq!(body["reloaded"], false);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("instance \"line-0\" (line 24): phone: "),
        "{body}"
    );
    assert_eq!(reload_successful(&s.daemon).await, 0.0);
    // Both instances are still watched.
    let calls = s.sim.calls(FIRST_ID + 1).len();
    wait(secs(130)).await;
    assert!(s.sim.calls(FIRST_ID + 1).len() >= calls + 2);

    // A good config afterwards is taken again.
    s.rewrite(&s.fleet_toml(&[0], DEFAULTS));
    let (status, body) = s.daemon.api_post("/-/reload", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["removed"], 1);
    assert_eq!(reload_successful(&s.daemon).await, 1.0);
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn sighup_applies_a_config_change_and_a_broken_one_is_refused() {
    let s = Scenario::new(&["authorized", "authorized"])
        .config(|a| fleet_toml_of(a.sim, a.hook, &[0], DEFAULTS))
        .start()
        .await;
    wait(secs(5)).await;
    assert!(s.sim.calls(FIRST_ID + 1).is_empty());

    // SIGHUP with a broken file: refused, the fleet unchanged.
    s.rewrite(&edit(
        &s.fleet_toml(&[0, 1], DEFAULTS),
        "phone = ",
        "phone = -",
    ));
    s.daemon.reload().await;
    wait(secs(5)).await;
    assert_eq!(reload_successful(&s.daemon).await, 0.0);
    assert!(s.sim.calls(FIRST_ID + 1).is_empty());

    // SIGHUP with a good file that adds instance 1: it is watched now.
    s.rewrite(&s.fleet_toml(&[0, 1], DEFAULTS));
    s.daemon.reload().await;
    wait(secs(5)).await;
    assert_eq!(reload_successful(&s.daemon).await, 1.0);
    assert!(!s.sim.calls(FIRST_ID + 1).is_empty(), "SIGHUP was ignored");
    assert_eq!(
        s.daemon.instance_status(FIRST_ID + 1).await["name"],
        "line-1"
    );
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_restart_in_the_middle_of_a_code_keeps_the_budget_and_requests_nothing_until_expiry() {
    let s = Scenario::new(&["notAuthorized"])
        .defaults(DEFAULTS)
        .start()
        .await;
    wait(secs(10)).await;
    assert_eq!(s.hook.codes().len(), 1);
    let first_request = s
        .sim
        .calls(FIRST_ID)
        .into_iter()
        .find(|c| c.method == "getAuthorizationCode")
        .unwrap()
        .at;
    let s = s.restart().await;

    let state = s.state_file();
    assert!(state.contains("\"codes_used\": 1"), "{state}");
    assert!(state.contains("\"code_delivered\": true"), "{state}");
    Sweep::default()
        .codes(s.hook.codes())
        .assert_clean("the state file", &state);

    wait(secs(120)).await;
    assert_eq!(
        s.sim.codes_issued(FIRST_ID),
        1,
        "no new code while the old one is valid"
    );
    let status = s.daemon.instance_status(FIRST_ID).await;
    assert_eq!(status["phase"], "linking");
    assert_eq!(status["codes_used"], 1);
    assert!(status["code_expires_at"].is_string());

    wait(secs(40)).await;
    let requests: Vec<_> = s
        .sim
        .calls(FIRST_ID)
        .into_iter()
        .filter(|c| c.method == "getAuthorizationCode")
        .collect();
    assert_eq!(requests.len(), 2);
    assert!(requests[1].at - first_request >= secs(150));
    assert_eq!(s.daemon.instance_status(FIRST_ID).await["codes_used"], 2);
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_restart_keeps_a_pause() {
    let s = Scenario::new(&["notAuthorized"])
        .vendor_code_ttl(secs(20))
        .defaults("code_ttl = \"20s\"\ncodes_per_episode = 1\ncooldown = \"1h\"")
        .start()
        .await;
    wait(secs(60)).await;
    assert_eq!(s.hook.events("paused").len(), 1);

    let s = s.restart().await;
    wait(secs(30 * 60)).await;
    assert_eq!(
        s.sim.codes_issued(FIRST_ID),
        1,
        "still paused after the restart"
    );
    assert_eq!(s.daemon.instance_status(FIRST_ID).await["phase"], "paused");
    assert_eq!(s.hook.events("paused").len(), 1, "no second notice");
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_corrupt_state_file_is_set_aside_and_the_daemon_starts_fresh() {
    let s = Scenario::new(&["notAuthorized"])
        .defaults(DEFAULTS)
        .file("state/state.json", "{\"version\": 1, \"inst")
        .start()
        .await;
    wait(secs(10)).await;
    assert_eq!(s.sim.codes_issued(FIRST_ID), 1);
    assert_eq!(s.hook.codes().len(), 1);
    let names: Vec<String> = std::fs::read_dir(s.dir.path().join("state"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("state.json.corrupt-")),
        "{names:?}"
    );
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_admin_api_refuses_a_wrong_token_and_never_shows_secrets() {
    let s = Scenario::new(&["notAuthorized", "authorized"])
        .vendor_code_ttl(secs(20))
        .defaults("code_ttl = \"20s\"\ncodes_per_episode = 1\ncooldown = \"1h\"")
        .start()
        .await;
    let d = &s.daemon;
    wait(secs(5)).await;

    for token in [None, Some("wrong"), Some("")] {
        let (status, _, _) = d.api_get("/api/v1/instances", token).await;
        assert_eq!(status, 401, "{token:?}");
    }
    let (status, body, text) = d.api_get("/api/v1/instances", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200);
    assert_eq!(body["instances"].as_array().unwrap().len(), 2);
    assert_eq!(body["instances"][0]["name"], "line-0");
    assert_eq!(body["instances"][0]["state"], "notAuthorized");
    Sweep::default()
        .codes(s.hook.codes())
        .assert_clean("the status API", &text);

    // Pause, then relink: a wrong token does nothing; the right one ends the pause.
    wait(secs(60)).await;
    assert_eq!(d.instance_status(FIRST_ID).await["phase"], "paused");
    let relink = format!("/api/v1/instances/{FIRST_ID}/relink");
    for token in [None, Some("wrong")] {
        let (status, _) = d.api_post(&relink, token).await;
        assert_eq!(status, 401, "{token:?}");
    }
    for token in [None, Some("wrong")] {
        let (status, _) = d.api_post("/-/reload", token).await;
        assert_eq!(status, 401, "{token:?}");
    }
    wait(secs(10)).await;
    assert_eq!(s.sim.codes_issued(FIRST_ID), 1, "nothing was done");
    assert_eq!(d.instance_status(FIRST_ID).await["phase"], "paused");
    let (status, _) = d.api_post(&relink, Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 202);
    let (status, _) = d
        .api_post("/api/v1/instances/999/relink", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(status, 404);
    wait(secs(5)).await;
    assert_eq!(s.sim.codes_issued(FIRST_ID), 2, "relink ended the pause");
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_admin_api_takes_only_a_bearer_token() {
    let s = Scenario::new(&["authorized"]).start().await;
    let url = format!("http://{}/api/v1/instances", s.daemon.addr);
    for authorization in [
        format!("Basic {ADMIN_TOKEN}"),
        format!("bearer{ADMIN_TOKEN}"),
        format!("Token {ADMIN_TOKEN}"),
        ADMIN_TOKEN.to_owned(),
        format!("Bearer {ADMIN_TOKEN}x"),
    ] {
        let response = common::http()
            .get(&url)
            .header("authorization", &authorization)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{authorization}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
    }
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_reload_rotates_the_admin_token_and_a_bad_reload_keeps_the_old_one() {
    let s = Scenario::new(&["authorized"])
        .file("admin-token", "first-admin-token")
        .config(|a| {
            edit(
                &fleet_toml(a.sim, a.hook, 1, DEFAULTS),
                "admin_token_env = \"ADMIN_TOKEN\"",
                "admin_token_file = \"admin-token\"",
            )
        })
        .start()
        .await;
    let d = &s.daemon;
    let (status, _, _) = d
        .api_get("/api/v1/instances", Some("first-admin-token"))
        .await;
    assert_eq!(status, 200);

    // Rotate: the new token works at once, the old one no longer does.
    std::fs::write(s.dir.path().join("admin-token"), "second-admin-token").unwrap();
    let (status, body) = d.api_post("/-/reload", Some("first-admin-token")).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = d
        .api_get("/api/v1/instances", Some("first-admin-token"))
        .await;
    assert_eq!(status, 401, "the rotated-out token still works");
    let (status, _, _) = d
        .api_get("/api/v1/instances", Some("second-admin-token"))
        .await;
    assert_eq!(status, 200);

    // A bad reload (that also names a third token) keeps the second one.
    std::fs::write(s.dir.path().join("admin-token"), "third-admin-token").unwrap();
    let config = std::fs::read_to_string(s.dir.path().join("relinkd.toml")).unwrap();
    s.rewrite(&edit(&config, "phone = ", "phone = -"));
    let (status, _) = d.api_post("/-/reload", Some("second-admin-token")).await;
    assert_eq!(status, 422);
    let (status, _, _) = d
        .api_get("/api/v1/instances", Some("third-admin-token"))
        .await;
    assert_eq!(status, 401, "a refused reload changed the token");
    let (status, _, _) = d
        .api_get("/api/v1/instances", Some("second-admin-token"))
        .await;
    assert_eq!(status, 200);
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn without_an_admin_token_the_admin_api_is_disabled() {
    let s = Scenario::new(&["authorized"])
        .config(|a| {
            edit(
                &fleet_toml(a.sim, a.hook, 1, DEFAULTS),
                "admin_token_env = \"ADMIN_TOKEN\"\n",
                "",
            )
        })
        .start()
        .await;
    let (status, _, _) = s
        .daemon
        .api_get("/api/v1/instances", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(status, 403);
    let (status, _) = s.daemon.api_post("/-/reload", Some("")).await;
    assert_eq!(status, 403);
    // Metrics and health stay open.
    let (status, _, _) = s.daemon.api_get("/-/ready", None).await;
    assert_eq!(status, 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_status_and_relink_are_honoured_while_a_reload_is_stuck_reading_the_config() {
    let (_sim, sim_addr) = start_sim(secs(150), &["authorized"]).await;
    let (_hook, hook_addr) = Receiver::start().await;
    let (config, _dir) = load_config(&fleet_toml(sim_addr, hook_addr, 1, DEFAULTS));
    // A reload whose read of the config never returns (a file on a hung
    // mount, say) until the test lets it go.
    let (release, stuck) = std::sync::mpsc::channel::<()>();
    let stuck = std::sync::Arc::new(std::sync::Mutex::new(stuck));
    let loader: relinkd::daemon::Loader = std::sync::Arc::new(move |_: &std::path::Path| {
        let _ = stuck.lock().unwrap().recv();
        Err(relinkd::config::ConfigError::Parse {
            path: "relinkd.toml".into(),
            message: "released".into(),
        })
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut daemon = Daemon::start_with_loader(config, listener, loader).await;
    daemon.reload().await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // The daemon still answers while the reload hangs.
    let answered = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        daemon.api_get("/api/v1/instances", Some(ADMIN_TOKEN)),
    )
    .await;
    // And carries out a relink: commands are not queued behind the read.
    let id = answered
        .as_ref()
        .map_or(serde_json::Value::Null, |(_, body, _)| {
            body["instances"][0]["id"].clone()
        });
    let relinked = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        daemon.api_post(&format!("/api/v1/instances/{id}/relink"), Some(ADMIN_TOKEN)),
    )
    .await;
    daemon.request_stop();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !daemon.has_stopped() {
        if std::time::Instant::now() > deadline {
            // Let the stuck reader go, so the failure is reported, not hung.
            drop(release);
            panic!("shutdown waited for a stuck reload");
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    drop(release);
    assert_eq!(answered.map(|(status, _, _)| status).ok(), Some(200));
    assert_eq!(relinked.map(|(status, _)| status).ok(), Some(202));
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_reload_whose_config_names_a_fifo_fails_at_once_and_keeps_the_running_config() {
    let s = Scenario::new(&["authorized"])
        .defaults(DEFAULTS)
        .start()
        .await;
    wait(secs(5)).await;
    let fifo = s.dir.path().join("token-fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    s.rewrite(&edit(
        &s.fleet_toml(&[0], DEFAULTS),
        "api_token_env = \"GREENAPI_TOKEN\"",
        "api_token_file = \"token-fifo\"",
    ));
    // Should a read of the FIFO ever block again, a writer lets it go after
    // 10 s, so the test fails on the timing below instead of hanging.
    let writer_end = fifo.clone();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(10));
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(writer_end);
    });
    let started = std::time::Instant::now();
    let (status, body) = s.daemon.api_post("/-/reload", Some(ADMIN_TOKEN)).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "the reload blocked on the FIFO"
    );
    assert_eq!(status, 422, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("instance \"line-0\" (line"), "{error}");
    assert!(error.contains("): api_token_file: "), "{error}");
    assert!(error.contains("is not a regular file"), "{error}");
    assert_eq!(reload_successful(&s.daemon).await, 0.0);
    let calls = s.sim.calls(FIRST_ID).len();
    wait(secs(130)).await;
    assert!(s.sim.calls(FIRST_ID).len() >= calls + 2, "still watched");
    s.stop().await;
}

fn unix_ms_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test(start_paused = true)]
async fn restored_times_are_clamped_so_a_state_file_can_neither_crash_nor_stall_an_instance() {
    let now = unix_ms_now();
    let planted = serde_json::json!({
        "version": 1, "saved_at_ms": 0, "instances": {
            // A pause ending in the year 10000, an episode "started" there.
            FIRST_ID.to_string(): {"phase": "paused", "episode_started_ms": 253_402_300_800_000u64,
                                   "codes_used": 3, "paused_until_ms": 253_402_300_800_000u64},
            // A delivered code "valid" for 30 days.
            (FIRST_ID + 1).to_string(): {"phase": "linking", "episode_started_ms": now,
                                         "codes_used": 1, "code_expires_ms": now + 30 * 86_400_000,
                                         "code_delivered": true},
        }
    });
    let s = Scenario::new(&["notAuthorized", "notAuthorized"])
        .vendor_code_ttl(secs(20))
        .defaults("code_ttl = \"20s\"\ncodes_per_episode = 3\ncooldown = \"1h\"")
        .file("state/state.json", &planted.to_string())
        .start()
        .await;
    wait(secs(30)).await;
    // Both supervisors run and report.
    let (status, _, _) = s.daemon.api_get("/-/ready", None).await;
    assert_eq!(status, 200);
    for id in [FIRST_ID, FIRST_ID + 1] {
        assert!(!s.sim.calls(id).is_empty(), "{id} is polled");
        let status = s.daemon.instance_status(id).await;
        assert_eq!(status["state"], "notAuthorized", "{status}");
    }
    let paused = s.daemon.instance_status(FIRST_ID).await;
    let until = paused["paused_until"].as_str().unwrap();
    assert!(
        until.starts_with("20"),
        "the pause ends within the cooldown: {until}"
    );
    // The "30 day" code was taken as valid for code_ttl at most: the next
    // code came after about 20 s, not 30 days.
    assert_eq!(s.sim.codes_issued(FIRST_ID + 1), 1, "{:?}", s.hook.codes());
    // The pause ends within the cooldown, not in the year 10000.
    wait(secs(3600)).await;
    assert!(s.sim.codes_issued(FIRST_ID) >= 1);
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn reloads_keep_the_vendors_retry_after_whether_or_not_the_instance_changed() {
    let defaults =
        |poll: &str| format!("poll_interval = \"{poll}\"\nlinking_poll_interval = \"2s\"");
    for changes_each_time in [false, true] {
        let s = Scenario::new(&["authorized"])
            .defaults(&defaults("2s"))
            .prepare(|sim, _| {
                sim.set_fault(
                    FIRST_ID,
                    Fault::new(FaultKind::RateLimited {
                        retry_after: Some(60),
                    })
                    .on("getStateInstance"),
                )
            })
            .start()
            .await;
        wait(secs(1)).await;
        assert_eq!(s.sim.calls(FIRST_ID).len(), 1, "the first poll met the 429");
        for i in 0..20 {
            if changes_each_time {
                let poll = if i % 2 == 0 { "3s" } else { "2s" };
                s.rewrite(&s.fleet_toml(&[0], &defaults(poll)));
            }
            s.daemon.reload().await;
            wait(secs(1)).await;
        }
        assert_eq!(
            s.sim.calls(FIRST_ID).len(),
            1,
            "changes each time: {changes_each_time}: reloads cut the vendor's Retry-After short"
        );
        wait(secs(45)).await;
        assert_eq!(
            s.sim.calls(FIRST_ID).len(),
            2,
            "polled again once Retry-After passed"
        );
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_asked_for_during_a_read_get_a_read_of_their_own_and_every_caller_an_answer() {
    let (_sim, sim_addr) = start_sim(secs(150), &["authorized"]).await;
    let (_hook, hook_addr) = Receiver::start().await;
    let toml = fleet_toml(sim_addr, hook_addr, 1, DEFAULTS);
    let (config, _dir) = load_config(&toml);
    // Each read waits for the test's go-ahead, then loads the same config.
    let (go, gate) = std::sync::mpsc::channel::<()>();
    let gate = std::sync::Arc::new(std::sync::Mutex::new(gate));
    let reads = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let loader: relinkd::daemon::Loader = {
        let (reads, config) = (reads.clone(), config.clone());
        std::sync::Arc::new(move |_: &std::path::Path| {
            reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = gate.lock().unwrap().recv();
            Ok(config.clone())
        })
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let daemon = std::sync::Arc::new(Daemon::start_with_loader(config, listener, loader).await);
    let reload = |daemon: std::sync::Arc<Daemon>| {
        tokio::spawn(async move { daemon.api_post("/-/reload", Some(ADMIN_TOKEN)).await })
    };
    let first = reload(daemon.clone());
    eventually(secs(5), "the first read started", || {
        reads.load(std::sync::atomic::Ordering::SeqCst) == 1
    })
    .await;
    // Two more while the first read is under way: the file may have
    // changed after it began, so they share one read of their own.
    let second = reload(daemon.clone());
    let third = reload(daemon.clone());
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    go.send(()).unwrap();
    let (status, body) = first.await.unwrap();
    assert_eq!(status, 200, "{body}");
    eventually(secs(5), "the second read started", || {
        reads.load(std::sync::atomic::Ordering::SeqCst) == 2
    })
    .await;
    go.send(()).unwrap();
    for reply in [second, third] {
        let (status, body) = reply.await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["unchanged"], 1, "{body}");
    }
    assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 2);
    std::sync::Arc::into_inner(daemon).unwrap().stop().await;
}
