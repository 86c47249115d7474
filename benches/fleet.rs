//! The fleet benchmark: `relinkd sim` with N instances and `relinkd run` as
//! separate processes, a webhook receiver here, a sample of instances
//! flipped to unlinked during the run; prints one table row per N.
//!
//!     cargo bench --bench fleet -- --instances 1000,10000,50000 --poll 60s --transport http,https
//!
//! CPU and memory come from `/proc` of the daemon's process. Options:
//! `--instances` (comma-separated), `--poll` (poll_interval), `--measure`
//! (default two poll intervals), `--flips` (instances turned unlinked),
//! `--transport` (comma-separated `http`, `https`; default `http`): with
//! `https` the simulator serves TLS (`relinkd sim --tls`) and the daemon
//! trusts its CA through `[daemon] ca_file`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::routing::post;
use relinkd::config::PROXY_VARIABLES;
use tokio::net::TcpListener;

const FIRST_ID: u64 = 1_101_000_001;
const PHONE_BASE: u64 = 441_234_500_000;
/// relinkd's pacing of one instance's calls (greenapi::client).
const PACING_MS: u64 = 1100;

/// How the simulator serves the vendor API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Http,
    Https,
}

impl Transport {
    fn parse(text: &str) -> Self {
        match text.trim() {
            "http" => Transport::Http,
            "https" => Transport::Https,
            other => panic!("--transport takes http and https, not {other:?}"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::Https => "https",
        }
    }
}

struct Args {
    instances: Vec<u64>,
    poll: Duration,
    measure: Option<Duration>,
    flips: u64,
    transports: Vec<Transport>,
}

fn args() -> Args {
    let mut out = Args {
        instances: vec![1000, 10_000, 50_000],
        poll: Duration::from_secs(60),
        measure: None,
        flips: 20,
        transports: vec![Transport::Http],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--instances" => {
                out.instances = value()
                    .split(',')
                    .map(|n| n.trim().parse().unwrap())
                    .collect();
            }
            "--poll" => out.poll = humantime::parse_duration(&value()).unwrap(),
            "--measure" => out.measure = Some(humantime::parse_duration(&value()).unwrap()),
            "--flips" => out.flips = value().parse().unwrap(),
            "--transport" => out.transports = value().split(',').map(Transport::parse).collect(),
            // cargo bench passes --bench.
            _ => {}
        }
    }
    out
}

/// A child killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

/// `bin` as a command without the environment's proxies: the benchmark's
/// processes talk to 127.0.0.1 only.
fn relinkd(bin: &str) -> Command {
    let mut command = Command::new(bin);
    for name in PROXY_VARIABLES {
        command.env_remove(name);
    }
    command
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// CPU seconds (user + system) of `pid`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = procfs::process::Process::new(pid as i32)
        .unwrap()
        .stat()
        .unwrap();
    (stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64
}

/// `VmRSS` and `VmHWM` (peak) of `pid`, in bytes.
fn rss(pid: u32) -> (u64, u64) {
    let status = procfs::process::Process::new(pid as i32)
        .unwrap()
        .status()
        .unwrap();
    (
        status.vmrss.unwrap_or(0) * 1024,
        status.vmhwm.unwrap_or(0) * 1024,
    )
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// First code delivery per instance id (Unix ms).
type Deliveries = Arc<Mutex<HashMap<u64, u64>>>;

async fn receive(State(seen): State<Deliveries>, body: axum::body::Bytes) -> &'static str {
    let at = unix_ms(SystemTime::now());
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(&body)
        && json["event"] == "code"
        && let Some(id) = json["instance"]["id"].as_u64()
    {
        seen.lock().unwrap().entry(id).or_insert(at);
    }
    "ok"
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

struct Row {
    instances: u64,
    transport: Transport,
    cpu_us_per_poll: f64,
    sim_cpu_us_per_poll: f64,
    rss_steady_mb: f64,
    rss_peak_mb: f64,
    series: usize,
    metrics_mb: f64,
    metrics_gzip_mb: f64,
    render_ms: f64,
    spread: f64,
    latency: (f64, f64, f64),
    own_share: (f64, f64),
    reload_ms: f64,
}

/// The daemon's config: `n` instances at `sim_url`, codes to `hook`, and
/// with `ca_file` the simulator's CA.
fn config(
    dir: &Path,
    sim_url: &str,
    ca_file: Option<&Path>,
    listen: u16,
    hook: SocketAddr,
    n: u64,
    poll: Duration,
) -> String {
    std::fs::write(dir.join("token"), "sim-token").unwrap();
    std::fs::set_permissions(
        dir.join("token"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let ca_file = ca_file
        .map(|path| format!("ca_file = \"{}\"\n", path.display()))
        .unwrap_or_default();
    let mut toml = format!(
        "[daemon]\nlisten = \"127.0.0.1:{listen}\"\nstate_dir = \"{}\"\n{ca_file}\n[defaults]\n\
         poll_interval = \"{}\"\nlinking_poll_interval = \"5s\"\n\n[[channel]]\nname = \"hook\"\n\
         type = \"webhook\"\nurl = \"http://{hook}/hook\"\n",
        dir.join("state").display(),
        humantime::format_duration(poll)
    );
    for i in 0..n {
        toml.push_str(&format!(
            "\n[[instance]]\nid = {}\nname = \"line-{i}\"\napi_url = \"{sim_url}\"\n\
             api_token_file = \"token\"\nphone = {}\nchannels = [\"hook\"]\n",
            FIRST_ID + i,
            PHONE_BASE + i
        ));
    }
    toml
}

async fn wait_for(client: &reqwest::Client, what: &str, url: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !client
        .get(url)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "{what} did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The benchmark's own client of the simulator and the daemon: no proxy,
/// and the simulator's CA trusted when it serves TLS.
fn client(ca_pem: Option<&[u8]>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder().no_proxy();
    if let Some(pem) = ca_pem {
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(pem).unwrap());
    }
    builder.build().unwrap()
}

async fn run_one(
    n: u64,
    poll: Duration,
    measure: Duration,
    flips: u64,
    transport: Transport,
) -> Row {
    let bin = env!("CARGO_BIN_EXE_relinkd");
    let dir = tempfile::tempdir().unwrap();
    let (sim_port, listen) = (free_port(), free_port());
    let sim_addr: SocketAddr = ([127, 0, 0, 1], sim_port).into();
    let ca_path = dir.path().join("sim-ca.pem");
    let mut sim = relinkd(bin);
    sim.arg("sim");
    if transport == Transport::Https {
        sim.arg("--tls").arg(&ca_path);
    }
    let sim = Proc(
        sim.args([
            "--listen",
            &sim_addr.to_string(),
            "--instances",
            &n.to_string(),
        ])
        .args(["--unlinked", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
    );
    // The CA file appears whole (written aside, then renamed) before the
    // simulator serves.
    let (sim_url, ca_file) = match transport {
        Transport::Http => (format!("http://{sim_addr}"), None),
        Transport::Https => {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !ca_path.exists() {
                assert!(Instant::now() < deadline, "the simulator wrote no CA file");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (format!("https://{sim_addr}"), Some(ca_path.as_path()))
        }
    };
    let ca_pem = ca_file.map(|path| std::fs::read(path).unwrap());
    let http = client(ca_pem.as_deref());
    wait_for(
        &http,
        "the simulator",
        &format!("{sim_url}/sim/stats"),
        Duration::from_secs(60),
    )
    .await;

    let deliveries: Deliveries = Arc::default();
    let hook_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = hook_listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(deliveries.clone());
    tokio::spawn(async move { axum::serve(hook_listener, app).await });

    let config_path = dir.path().join("relinkd.toml");
    std::fs::write(
        &config_path,
        config(dir.path(), &sim_url, ca_file, listen, hook, n, poll),
    )
    .unwrap();
    let stderr = std::fs::File::create(dir.path().join("stderr")).unwrap();
    let daemon = Proc(
        relinkd(bin)
            .args(["run", "--config"])
            .arg(&config_path)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap(),
    );
    let pid = daemon.0.id();
    let base = format!("http://127.0.0.1:{listen}");
    wait_for(
        &http,
        "relinkd",
        &format!("{base}/-/ready"),
        Duration::from_secs(120),
    )
    .await;
    // First polls are spread over up to one interval.
    tokio::time::sleep(poll + Duration::from_secs(2)).await;

    let stats = |url: String| {
        let http = http.clone();
        async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let polls_at = |s: &serde_json::Value| s["state_calls_total"].as_u64().unwrap();
    let start_wall = SystemTime::now();
    let (cpu0, sim_cpu0) = (cpu_seconds(pid), cpu_seconds(sim.0.id()));
    let polls0 = polls_at(&stats(format!("{sim_url}/sim/stats")).await);
    let samples: Arc<Mutex<Vec<u64>>> = Arc::default();
    let sampler = {
        let samples = samples.clone();
        tokio::spawn(async move {
            loop {
                samples.lock().unwrap().push(rss(pid).0);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    // Flips spread over the window, on ids spread over the fleet.
    let client = http.clone();
    let mut flipped = Vec::new();
    let step = measure / (flips.max(1) as u32);
    for k in 0..flips {
        tokio::time::sleep(step).await;
        let id = FIRST_ID + (k * n / flips.max(1) + k) % n;
        let at = unix_ms(SystemTime::now());
        client
            .post(format!("{sim_url}/sim/instances/{id}/logout"))
            .send()
            .await
            .unwrap();
        flipped.push((id, at));
    }
    if flips == 0 {
        tokio::time::sleep(measure).await;
    }
    let measured = SystemTime::now().duration_since(start_wall).unwrap();
    let (cpu1, sim_cpu1) = (cpu_seconds(pid), cpu_seconds(sim.0.id()));
    let end_stats = stats(format!(
        "{sim_url}/sim/stats?seconds={}",
        measured.as_secs()
    ))
    .await;
    let polls = polls_at(&end_stats) - polls0;
    sampler.abort();

    // Spread: the busiest second against the mean, over whole seconds of
    // the window.
    let per_second: Vec<f64> = end_stats["state_calls_per_second"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_f64().unwrap())
        .collect();
    let inner = &per_second[1..per_second.len().saturating_sub(1)];
    let mean = inner.iter().sum::<f64>() / inner.len().max(1) as f64;
    let spread = inner.iter().cloned().fold(0.0, f64::max) / mean;

    // Let the last flip's code arrive (one poll interval).
    tokio::time::sleep(poll + Duration::from_secs(3)).await;
    let sim_started = end_stats["started_unix_ms"].as_u64().unwrap();
    let mut latencies = Vec::new();
    let mut shares = Vec::new();
    for (id, flip) in &flipped {
        let Some(&delivered) = deliveries.lock().unwrap().get(id) else {
            continue;
        };
        latencies.push((delivered.saturating_sub(*flip)) as f64);
        let calls = stats(format!("{sim_url}/sim/instances/{id}/calls")).await;
        let first = |method: &str| {
            calls
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["method"] == method && c["status"] == 200)
                .map(|c| sim_started + c["at_ms"].as_u64().unwrap())
                .find(|at| *at >= *flip)
        };
        // The daemon's own share: from the poll that found it unlinked to
        // the code request, less the pacing between two calls of one
        // instance (the vendor's second and relinkd's 100 ms margin for
        // jitter), plus from the code's answer to its delivery.
        if let (Some(poll), Some(code)) = (first("getStateInstance"), first("getAuthorizationCode"))
        {
            let waited = code.saturating_sub(poll).saturating_sub(PACING_MS);
            shares.push((waited + delivered.saturating_sub(code)) as f64);
        }
    }
    latencies.sort_by(f64::total_cmp);
    shares.sort_by(f64::total_cmp);

    // /metrics: size, series, render time.
    let started = Instant::now();
    let scrape = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let render_ms = started.elapsed().as_secs_f64() * 1000.0;
    // As Prometheus scrapes: gzip accepted.
    let gzipped = http
        .get(format!("{base}/metrics"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let series = scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count();

    // A reload that changes one instance.
    let text = std::fs::read_to_string(&config_path).unwrap();
    let changed = text.replacen(
        "channels = [\"hook\"]\n",
        "channels = [\"hook\"]\npoll_interval = \"61s\"\n",
        1,
    );
    std::fs::write(&config_path, changed).unwrap();
    // The reload is done when the daemon logs it: read only what it writes
    // after the signal (its log holds a line per instance from the start).
    let log = dir.path().join("stderr");
    let offset = std::fs::metadata(&log).unwrap().len();
    let reloaded = || {
        use std::io::{Read as _, Seek as _};
        let mut file = std::fs::File::open(&log).unwrap();
        file.seek(std::io::SeekFrom::Start(offset)).unwrap();
        let mut tail = String::new();
        let _ = file.read_to_string(&mut tail);
        tail.contains("config reloaded")
    };
    let started = Instant::now();
    Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    while !reloaded() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the reload did not finish"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let reload_ms = started.elapsed().as_secs_f64() * 1000.0;

    let mut steady = samples.lock().unwrap().clone();
    let half = steady.len() / 2;
    steady.drain(..half);
    steady.sort_unstable();
    let steady = steady.get(steady.len() / 2).copied().unwrap_or(0);
    let peak = rss(pid).1;
    drop(daemon);
    drop(sim);
    let polls = polls.max(1) as f64;
    Row {
        instances: n,
        transport,
        cpu_us_per_poll: (cpu1 - cpu0) * 1e6 / polls,
        sim_cpu_us_per_poll: (sim_cpu1 - sim_cpu0) * 1e6 / polls,
        rss_steady_mb: steady as f64 / 1e6,
        rss_peak_mb: peak as f64 / 1e6,
        series,
        metrics_mb: scrape.len() as f64 / 1e6,
        metrics_gzip_mb: gzipped.len() as f64 / 1e6,
        render_ms,
        spread,
        latency: (
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            latencies.last().copied().unwrap_or(f64::NAN),
        ),
        own_share: (percentile(&shares, 0.5), percentile(&shares, 0.99)),
        reload_ms,
    }
}

fn main() {
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let measure = args.measure.unwrap_or(args.poll * 2);
    println!(
        "relinkd fleet benchmark: poll_interval {}, measured over {}, {} flips, transport {}, {} cores",
        humantime::format_duration(args.poll),
        humantime::format_duration(measure),
        args.flips,
        args.transports
            .iter()
            .map(|t| t.name())
            .collect::<Vec<_>>()
            .join(", "),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    println!(
        "| N | transport | daemon CPU µs/poll | sim CPU µs/poll | RSS steady MB | RSS peak MB | /metrics series | /metrics MB (gzip) | render ms | poll spread (max/mean per s) | unlinked→delivered p50/p99/max ms | daemon share p50/p99 ms | reload ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for n in &args.instances {
        for transport in &args.transports {
            let r = runtime.block_on(run_one(*n, args.poll, measure, args.flips, *transport));
            print_row(&r);
        }
    }
}

/// One row of the table.
fn print_row(r: &Row) {
    {
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.0} | {:.0} | {} | {:.1} ({:.1}) | {:.0} | {:.2} | {:.0} / {:.0} / {:.0} | {:.1} / {:.1} | {:.0} |",
            r.instances,
            r.transport.name(),
            r.cpu_us_per_poll,
            r.sim_cpu_us_per_poll,
            r.rss_steady_mb,
            r.rss_peak_mb,
            r.series,
            r.metrics_mb,
            r.metrics_gzip_mb,
            r.render_ms,
            r.spread,
            r.latency.0,
            r.latency.1,
            r.latency.2,
            r.own_share.0,
            r.own_share.1,
            r.reload_ms,
        );
    }
}
