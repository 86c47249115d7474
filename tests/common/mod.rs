//! Real parts for integration tests: the GREEN-API simulator, receivers for
//! the channels, and the daemon, all on 127.0.0.1; a [`Scenario`] puts them
//! together. In-process parts run in the test's own runtime, so tokio's
//! paused clock drives every timer.
#![allow(dead_code, unused_imports)]

mod daemon;
mod logs;
mod process;
mod receiver;
mod sweep;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use relinkd::config::{self, Config, Environment};
use relinkd::sim::{SimConfig, SimInstance, SimTls, Simulator};
use tokio::net::TcpListener;

pub use daemon::Daemon;
pub use logs::{Capture, capture_logs, captured};
pub use process::*;
pub use receiver::*;
pub use sweep::Sweep;

pub const TOKEN: &str = "tok-5f2d9c31e4b7a8";
pub const FIRST_ID: u64 = 1101000001;
pub const ADMIN_TOKEN: &str = "adm-9c1e77f0d2";
/// Standard Webhooks secret used by test channels (its bytes: "relinkd-test-secret-key!").
pub const WHSEC: &str = "whsec_cmVsaW5rZC10ZXN0LXNlY3JldC1rZXkh";
/// A Telegram bot token for channel tests.
pub const TG_TOKEN: &str = "123456:tg-secret-token-AAAA";

pub struct MapEnv(pub HashMap<String, String>);

impl Environment for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// An HTTP client for talking to the test's own servers on 127.0.0.1:
/// never through a proxy the test's environment names.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a client with fixed settings")
}

/// `text` with `from` replaced by `to`; fails if `from` is not there (an
/// edit that silently does nothing makes a test pass for the wrong reason).
pub fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} is not in:\n{text}");
    text.replace(from, to)
}

/// When the simulator received instance `id`'s calls of `method`.
pub fn calls_to(sim: &Simulator, id: u64, method: &str) -> Vec<tokio::time::Instant> {
    sim.calls(id)
        .into_iter()
        .filter(|c| c.method == method)
        .map(|c| c.at)
        .collect()
}

/// Starts the simulator with `states` (one instance per entry, ids from
/// FIRST_ID, every token TOKEN).
pub async fn start_sim(code_ttl: Duration, states: &[&str]) -> (Simulator, SocketAddr) {
    start_sim_with(code_ttl, states, None).await
}

/// Like `start_sim`, serving HTTPS with a certificate made now; also gives
/// the CA certificate (PEM) a client must trust.
pub async fn start_sim_tls(code_ttl: Duration, states: &[&str]) -> (Simulator, SocketAddr, String) {
    let tls = SimTls::generate().unwrap();
    let (sim, addr) = start_sim_with(code_ttl, states, Some(&tls)).await;
    (sim, addr, tls.ca_pem().to_owned())
}

async fn start_sim_with(
    code_ttl: Duration,
    states: &[&str],
    tls: Option<&SimTls>,
) -> (Simulator, SocketAddr) {
    let sim = Simulator::new(SimConfig {
        code_ttl,
        ..SimConfig::default()
    });
    for (i, state) in states.iter().enumerate() {
        sim.add_instance(SimInstance {
            id: FIRST_ID + i as u64,
            token: TOKEN.into(),
            phone: 441234500000 + i as u64,
            state: (*state).into(),
        });
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    match tls {
        Some(tls) => {
            let tls = tls.clone();
            let sim = sim.clone();
            tokio::spawn(async move {
                relinkd::sim::serve_tls(listener, &tls, sim, std::future::pending()).await
            });
        }
        None => {
            tokio::spawn(relinkd::sim::serve(
                listener,
                sim.clone(),
                std::future::pending(),
            ));
        }
    }
    (sim, addr)
}

/// Writes `toml` to a temp dir and loads it through the real config loader,
/// with TOKEN in $GREENAPI_TOKEN and WHSEC in $HOOK_SECRET.
pub fn load_config(toml: &str) -> (Config, tempfile::TempDir) {
    load_config_with_files(toml, &[])
}

/// Like `load_config`, with extra files (e.g. secrets) beside the config.
pub fn load_config_with_files(toml: &str, files: &[(&str, &str)]) -> (Config, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    for (name, contents) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        let private = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600);
        std::fs::set_permissions(&path, private).unwrap();
    }
    std::fs::write(dir.path().join("relinkd.toml"), toml).unwrap();
    (reload_config(&dir).unwrap_or_else(|e| panic!("{e}")), dir)
}

/// The test environment: tokens in env variables, state in the temp dir.
pub fn test_env(dir: &std::path::Path) -> MapEnv {
    MapEnv(HashMap::from([
        ("GREENAPI_TOKEN".into(), TOKEN.into()),
        ("HOOK_SECRET".into(), WHSEC.into()),
        ("ADMIN_TOKEN".into(), ADMIN_TOKEN.into()),
        (
            "STATE_DIRECTORY".into(),
            dir.join("state").display().to_string(),
        ),
    ]))
}

/// Loads the config in `dir` again (as a reload would).
pub fn reload_config(dir: &tempfile::TempDir) -> Result<Config, config::ConfigError> {
    config::load_with(&dir.path().join("relinkd.toml"), &test_env(dir.path()))
}

/// Replaces the config file in `dir`.
pub fn rewrite_config(dir: &tempfile::TempDir, toml: &str) {
    std::fs::write(dir.path().join("relinkd.toml"), toml).unwrap();
}

/// A config with one webhook channel to `hook` and one instance per sim
/// instance; `defaults` is pasted into `[defaults]`.
pub fn fleet_toml(sim: SocketAddr, hook: SocketAddr, count: usize, defaults: &str) -> String {
    fleet_toml_of(sim, hook, &(0..count).collect::<Vec<_>>(), defaults)
}

/// Like `fleet_toml`, with the sim instances at positions `which`
/// (instance `i` has id FIRST_ID + i and name `line-i`).
pub fn fleet_toml_of(sim: SocketAddr, hook: SocketAddr, which: &[usize], defaults: &str) -> String {
    let mut toml = format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\nadmin_token_env = \"ADMIN_TOKEN\"\n\n[defaults]\n{defaults}\n\n\
         [[channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://{hook}/hook\"\n\
         secret_env = \"HOOK_SECRET\"\ntimeout = \"5s\"\n"
    );
    for &i in which {
        toml.push_str(&format!(
            "\n[[instance]]\nid = {id}\nname = \"line-{i}\"\napi_url = \"http://{sim}\"\n\
             api_token_env = \"GREENAPI_TOKEN\"\nphone = {phone}\nchannels = [\"hook\"]\n",
            id = FIRST_ID + i as u64,
            phone = 441234500000 + i as u64,
        ));
    }
    toml
}

/// The addresses a scenario's config is written for.
#[derive(Debug, Clone, Copy)]
pub struct Addrs {
    pub sim: SocketAddr,
    pub hook: SocketAddr,
    /// The simulator serves HTTPS.
    pub tls: bool,
}

impl Addrs {
    /// The simulator's base URL (`api_url`).
    pub fn vendor_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.sim)
    }
}

/// How a scenario's simulator serves, and what its daemon trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Http,
    /// HTTPS, with `ca_file = "ca.pem"` (the simulator's CA) in `[daemon]`.
    Https,
    /// HTTPS, with the CA written to `ca.pem` but no `ca_file`: the daemon
    /// trusts only the built-in roots.
    HttpsUntrusted,
}

/// The name of the simulator's CA file beside a TLS scenario's config.
pub const CA_FILE: &str = "ca.pem";

/// `toml` (a config written for plain HTTP) with the vendor's URLs made
/// https:// and, if `trusted`, `ca_file` in `[daemon]`.
pub fn over_tls(toml: &str, sim: SocketAddr, trusted: bool) -> String {
    let toml = edit(
        toml,
        &format!("api_url = \"http://{sim}\""),
        &format!("api_url = \"https://{sim}\""),
    );
    if trusted {
        edit(
            &toml,
            "[daemon]\n",
            &format!("[daemon]\nca_file = \"{CA_FILE}\"\n"),
        )
    } else {
        toml
    }
}

type ConfigFn = Box<dyn Fn(Addrs) -> String>;
type PrepareFn = Box<dyn FnOnce(&Simulator, &Receiver)>;
type FileFn = Box<dyn Fn(Addrs) -> String>;

/// One end-to-end setup, described then started: the simulator with one
/// instance per state, a receiver `hook`, and the daemon on a config (by
/// default [`fleet_toml`]: every instance, the hook channel, `defaults`).
pub struct Scenario {
    states: Vec<String>,
    vendor_code_ttl: Duration,
    defaults: String,
    daemon: String,
    config: Option<ConfigFn>,
    files: Vec<(String, FileFn)>,
    prepare: Option<PrepareFn>,
    transport: Transport,
}

impl Scenario {
    /// Instances `line-0`, `line-1`, ... in these states; codes from the
    /// vendor live 150 s.
    pub fn new(states: &[&str]) -> Self {
        Self {
            states: states.iter().map(|s| (*s).to_owned()).collect(),
            vendor_code_ttl: secs(150),
            defaults: String::new(),
            daemon: String::new(),
            config: None,
            files: Vec::new(),
            prepare: None,
            transport: Transport::Http,
        }
    }

    /// How the simulator serves (plain HTTP unless this says otherwise).
    /// With HTTPS the default config's `api_url`s are https:// (and a
    /// `config` of the test's own should use `Addrs::vendor_url`).
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// Sets up the simulator and the receiver (faults, scripts) before the
    /// daemon starts.
    pub fn prepare(mut self, f: impl FnOnce(&Simulator, &Receiver) + 'static) -> Self {
        self.prepare = Some(Box::new(f));
        self
    }

    /// How long the simulated vendor's codes live.
    pub fn vendor_code_ttl(mut self, ttl: Duration) -> Self {
        self.vendor_code_ttl = ttl;
        self
    }

    /// Lines of `[defaults]`.
    pub fn defaults(mut self, toml: &str) -> Self {
        self.defaults = toml.to_owned();
        self
    }

    /// Extra lines of `[daemon]`.
    pub fn daemon_keys(mut self, toml: &str) -> Self {
        self.daemon = toml.to_owned();
        self
    }

    /// The whole config, written for the scenario's addresses.
    pub fn config(mut self, toml: impl Fn(Addrs) -> String + 'static) -> Self {
        self.config = Some(Box::new(toml));
        self
    }

    /// A file beside the config, mode 0600 (a secret, say).
    pub fn file(self, name: &str, contents: &str) -> Self {
        let contents = contents.to_owned();
        self.file_for(name, move |_| contents.clone())
    }

    /// A file beside the config whose contents need the scenario's
    /// addresses (a secret webhook URL, say).
    pub fn file_for(mut self, name: &str, contents: impl Fn(Addrs) -> String + 'static) -> Self {
        self.files.push((name.to_owned(), Box::new(contents)));
        self
    }

    fn toml(&self, addrs: Addrs) -> String {
        match &self.config {
            Some(toml) => toml(addrs),
            None => {
                let mut toml = fleet_toml(addrs.sim, addrs.hook, self.states.len(), &self.defaults);
                if addrs.tls {
                    toml = over_tls(&toml, addrs.sim, self.transport == Transport::Https);
                }
                if self.daemon.is_empty() {
                    toml
                } else {
                    edit(&toml, "[daemon]\n", &format!("[daemon]\n{}\n", self.daemon))
                }
            }
        }
    }

    /// Starts the simulator, the receiver and the daemon.
    pub async fn start(self) -> Running {
        let states: Vec<&str> = self.states.iter().map(String::as_str).collect();
        let (sim, sim_addr, ca) = match self.transport {
            Transport::Http => {
                let (sim, addr) = start_sim(self.vendor_code_ttl, &states).await;
                (sim, addr, None)
            }
            Transport::Https | Transport::HttpsUntrusted => {
                let (sim, addr, ca) = start_sim_tls(self.vendor_code_ttl, &states).await;
                (sim, addr, Some(ca))
            }
        };
        let (hook, hook_addr) = Receiver::start().await;
        let addrs = Addrs {
            sim: sim_addr,
            hook: hook_addr,
            tls: ca.is_some(),
        };
        let mut contents: Vec<(String, String)> = self
            .files
            .iter()
            .map(|(name, contents)| (name.clone(), contents(addrs)))
            .collect();
        contents.extend(ca.map(|ca| (CA_FILE.to_owned(), ca)));
        let files: Vec<(&str, &str)> = contents
            .iter()
            .map(|(n, c)| (n.as_str(), c.as_str()))
            .collect();
        let (config, dir) = load_config_with_files(&self.toml(addrs), &files);
        if let Some(prepare) = self.prepare {
            prepare(&sim, &hook);
        }
        let warnings = config.warnings.clone();
        let daemon = Daemon::start(config).await;
        Running {
            transport: self.transport,
            sim,
            hook,
            addrs,
            dir,
            warnings,
            daemon,
        }
    }
}

/// A started [`Scenario`].
pub struct Running {
    /// As the scenario was started.
    pub transport: Transport,
    pub sim: Simulator,
    pub hook: Receiver,
    pub addrs: Addrs,
    /// The config, its files and the state directory.
    pub dir: tempfile::TempDir,
    /// What loading the config warned about.
    pub warnings: Vec<String>,
    pub daemon: Daemon,
}

impl Running {
    /// The default fleet config for instances `which`, with `defaults`
    /// (over HTTPS for a TLS scenario, with `ca_file` if `trusted`).
    pub fn fleet_toml(&self, which: &[usize], defaults: &str) -> String {
        let toml = fleet_toml_of(self.addrs.sim, self.addrs.hook, which, defaults);
        if self.addrs.tls {
            over_tls(&toml, self.addrs.sim, self.transport == Transport::Https)
        } else {
            toml
        }
    }

    /// Replaces the config file (the next reload reads it).
    pub fn rewrite(&self, toml: &str) {
        rewrite_config(&self.dir, toml);
    }

    /// The state file as the daemon last wrote it.
    pub fn state_file(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("state/state.json")).unwrap_or_default()
    }

    /// Stops the daemon and starts a new one on the same config and state.
    pub async fn restart(self) -> Self {
        self.daemon.stop().await;
        let daemon = Daemon::start(reload_config(&self.dir).unwrap()).await;
        Self { daemon, ..self }
    }

    pub async fn stop(self) {
        self.daemon.stop().await;
    }
}

/// The value of the series `name{labels}` in a Prometheus text scrape
/// (exactly those labels, in any order).
pub fn series_value(scrape: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    wanted.sort();
    scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, mut have) = match series.split_once('{') {
                Some((metric, rest)) => (
                    metric,
                    rest.trim_end_matches('}')
                        .split(',')
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned)
                        .collect::<Vec<_>>(),
                ),
                None => (series, Vec::new()),
            };
            have.sort();
            (metric == name && have == wanted).then(|| value.parse().ok())?
        })
}

/// `relinkd_deliveries_total{channel, outcome, reason}`'s labels.
pub fn delivery(
    channel: &'static str,
    outcome: &'static str,
    reason: &'static str,
) -> [(&'static str, &'static str); 3] {
    [
        ("channel", channel),
        ("outcome", outcome),
        ("reason", reason),
    ]
}

/// Sleeps in tokio time (paused clock: instant in real time).
pub async fn wait(d: Duration) {
    tokio::time::sleep(d).await;
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Polls `condition` every 20 ms of real time until it holds; fails after
/// `limit` (generous: this is a deadline, not a measurement).
pub async fn eventually(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "not within {limit:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
