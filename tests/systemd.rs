//! The real binary under a service manager we play ourselves: the sd_notify
//! messages in order, the watchdog cadence, reloads by SIGHUP, SIGTERM.
//! Real time here (a child process), kept to a few seconds.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

struct Notifications {
    socket: UnixDatagram,
    seen: Vec<(Instant, String)>,
}

impl Notifications {
    fn bind(path: &Path) -> Self {
        let socket = UnixDatagram::bind(path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Self {
            socket,
            seen: Vec::new(),
        }
    }

    /// Waits up to `limit` for a message containing `needle`; returns it.
    fn wait_for(&mut self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let mut buf = [0u8; 4096];
            if let Ok(n) = self.socket.recv(&mut buf) {
                let message = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.seen.push((Instant::now(), message.clone()));
                if message.contains(needle) {
                    return message;
                }
            }
        }
        panic!("no {needle:?} within {limit:?}; saw {:#?}", self.seen);
    }

    /// Collects everything for `span`.
    fn collect(&mut self, span: Duration) -> Vec<(Instant, String)> {
        let start = self.seen.len();
        let deadline = Instant::now() + span;
        while Instant::now() < deadline {
            let mut buf = [0u8; 4096];
            if let Ok(n) = self.socket.recv(&mut buf) {
                self.seen.push((
                    Instant::now(),
                    String::from_utf8_lossy(&buf[..n]).into_owned(),
                ));
            }
        }
        self.seen[start..].to_vec()
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "still running after {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

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

fn relinkd(config: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_relinkd"));
    command
        .args(["run", "--config"])
        .arg(config)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_manager_sees_ready_watchdog_reloading_and_stopping_in_order() {
    let (_sim, sim_addr) = start_sim(secs(150), &["authorized", "authorized"]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("relinkd.toml");
    std::fs::write(&config, config_for(dir.path(), sim_addr, 2)).unwrap();
    let socket_path = dir.path().join("notify.sock");
    let mut notifications = Notifications::bind(&socket_path);

    let mut child = relinkd(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "1000000")
        .spawn()
        .unwrap();

    let ready = notifications.wait_for("READY=1", Duration::from_secs(10));
    assert!(ready.contains("STATUS=2 instances"), "{ready:?}");
    assert!(
        !notifications.seen[..notifications.seen.len() - 1]
            .iter()
            .any(|(_, m)| m.contains("WATCHDOG=1")),
        "a watchdog ping came before READY"
    );

    // WatchdogSec=1s: pings every half second.
    let window = notifications.collect(Duration::from_millis(2600));
    let pings: Vec<Instant> = window
        .iter()
        .filter(|(_, m)| m.contains("WATCHDOG=1"))
        .map(|(at, _)| *at)
        .collect();
    assert!(pings.len() >= 4, "{} pings in 2.6 s", pings.len());
    for pair in pings.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(300) && gap <= Duration::from_millis(900),
            "gap {gap:?}"
        );
    }

    // A good reload: RELOADING=1 with MONOTONIC_USEC, then READY=1.
    signal(&child, "HUP");
    let reloading = notifications.wait_for("RELOADING=1", Duration::from_secs(5));
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading:?}");
    let ready = notifications.wait_for("READY=1", Duration::from_secs(5));
    assert!(ready.contains("STATUS=2 instances"), "{ready:?}");

    // A broken reload: still READY=1, and STATUS says why.
    std::fs::write(&config, "[daemon]\nlisten = 7\n").unwrap();
    signal(&child, "HUP");
    notifications.wait_for("RELOADING=1", Duration::from_secs(5));
    let ready = notifications.wait_for("READY=1", Duration::from_secs(5));
    assert!(ready.contains("STATUS=reload failed"), "{ready:?}");
    assert!(ready.contains("daemon.listen"), "{ready:?}");

    // SIGTERM: STOPPING=1, exit 0, quickly.
    let stop_sent = Instant::now();
    signal(&child, "TERM");
    notifications.wait_for("STOPPING=1", Duration::from_secs(5));
    let status = wait_exit(&mut child, Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    assert!(stop_sent.elapsed() < Duration::from_secs(10));
    assert!(
        dir.path().join("state/state.json").exists(),
        "state persisted at exit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_systemd_nothing_is_sent_and_sigterm_exits_0() {
    let (_sim, sim_addr) = start_sim(secs(150), &["authorized"]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("relinkd.toml");
    std::fs::write(&config, config_for(dir.path(), sim_addr, 1)).unwrap();
    let mut child = relinkd(&config).spawn().unwrap();
    // Give it time to start and poll.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(child.try_wait().unwrap().is_none(), "exited early");
    let sent = Instant::now();
    signal(&child, "TERM");
    let status = wait_exit(&mut child, Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    assert!(sent.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_state_dir_that_cannot_be_written_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, "a file, not a directory").unwrap();
    let config = dir.path().join("relinkd.toml");
    let toml = config_for(dir.path(), "127.0.0.1:9".parse().unwrap(), 1).replace(
        &format!("state_dir = \"{}\"", dir.path().join("state").display()),
        &format!("state_dir = \"{}\"", blocker.join("state").display()),
    );
    std::fs::write(&config, toml).unwrap();
    let out = relinkd(&config).stderr(Stdio::piped()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("state_dir"), "{stderr}");
    assert!(stderr.contains("blocker"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
