//! The real binary as a child process, and the service manager's side of
//! sd_notify: a datagram socket the test owns and reads in the background.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use relinkd::config::PROXY_VARIABLES;

/// `command` without the environment's proxy variables: a proxy in the
/// test's environment cannot send its 127.0.0.1 traffic elsewhere.
pub fn without_proxies(command: &mut Command) -> &mut Command {
    for name in PROXY_VARIABLES {
        command.env_remove(name);
    }
    command
}

/// `relinkd run --config CONFIG`, outside systemd (no NOTIFY_SOCKET) unless
/// the test sets it, without the environment's proxies unless the test sets
/// them; output discarded unless the test redirects it.
pub fn relinkd_run(config: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_relinkd"));
    without_proxies(&mut command);
    command
        .args(["run", "--config"])
        .arg(config)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .env_remove("RUST_LOG")
        .env_remove("JOURNAL_STREAM")
        .env_remove("RELINKD_LOG_FORMAT")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// A child process killed when the test is done with it, passed or failed.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends signal `name` (`HUP`, `TERM`, ...) to `child`.
pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for `child` to exit; fails after `limit`.
pub fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "still running after {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The sd_notify messages a child sent, each with when it arrived.
#[derive(Clone)]
pub struct Notifications {
    seen: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Notifications {
    /// Binds the socket at `path` (pass it as NOTIFY_SOCKET) and collects
    /// every message on a background thread.
    pub fn bind(path: &Path) -> Self {
        let socket = UnixDatagram::bind(path).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let collected = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf) {
                let message = String::from_utf8_lossy(&buf[..n]).into_owned();
                collected.lock().unwrap().push((Instant::now(), message));
            }
        });
        Self { seen }
    }

    /// Every message so far.
    pub fn all(&self) -> Vec<(Instant, String)> {
        self.seen.lock().unwrap().clone()
    }

    /// How many messages so far.
    pub fn len(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// The first message after the first `after` ones that contains
    /// `needle`, waiting up to `limit` for it; fails listing what came.
    pub fn wait_for(&self, needle: &str, after: usize, limit: Duration) -> (usize, String) {
        let deadline = Instant::now() + limit;
        loop {
            let found = self
                .all()
                .into_iter()
                .enumerate()
                .skip(after)
                .find(|(_, (_, m))| m.contains(needle));
            if let Some((at, (_, message))) = found {
                return (at, message);
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} within {limit:?}; saw {:#?}",
                self.all()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Every `STATUS=` text sent so far.
    pub fn statuses(&self) -> Vec<String> {
        self.all()
            .into_iter()
            .flat_map(|(_, m)| {
                m.lines()
                    .filter_map(|l| l.strip_prefix("STATUS="))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}
