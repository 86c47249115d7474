//! Real parts for integration tests: the GREEN-API simulator, a webhook
//! receiver and the daemon, all on 127.0.0.1 in the test's own runtime (so
//! tokio's paused clock drives every timer).
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use relinkd::config::{self, Config, Environment};
use relinkd::metrics::Metrics;
use relinkd::sim::{SimConfig, SimInstance, Simulator};
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const TOKEN: &str = "tok-5f2d9c31e4b7a8";
pub const FIRST_ID: u64 = 1101000001;
pub const ADMIN_TOKEN: &str = "adm-9c1e77f0d2";
/// Standard Webhooks secret used by test channels (its bytes: "relinkd-test-secret-key!").
pub const WHSEC: &str = "whsec_cmVsaW5rZC10ZXN0LXNlY3JldC1rZXkh";

pub struct MapEnv(pub HashMap<String, String>);

impl Environment for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// Starts the simulator with `states` (one instance per entry, ids from
/// FIRST_ID, every token TOKEN).
pub async fn start_sim(code_ttl: Duration, states: &[&str]) -> (Simulator, SocketAddr) {
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
    tokio::spawn(relinkd::sim::serve(
        listener,
        sim.clone(),
        std::future::pending(),
    ));
    (sim, addr)
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub json: serde_json::Value,
    pub at: tokio::time::Instant,
}

/// A scripted answer: status, body, `Retry-After` seconds, more headers.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub retry_after: Option<u64>,
    pub headers: Vec<(String, String)>,
    /// Append the request's path to the body (a server that echoes it).
    pub echo_path: bool,
}

impl Answer {
    pub fn status(status: u16) -> Self {
        Self::with_body(status, "")
    }

    pub fn with_body(status: u16, body: &str) -> Self {
        Self {
            status,
            body: body.to_owned(),
            retry_after: None,
            headers: Vec::new(),
            echo_path: false,
        }
    }

    /// `status` with `body` followed by the request's path.
    pub fn echoing_path(status: u16, body: &str) -> Self {
        Self {
            echo_path: true,
            ..Self::with_body(status, body)
        }
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// An HTTP receiver (webhook, Telegram- or Slack-shaped endpoint) that
/// records every POST on any path and answers from a script (then 200 with
/// `{"ok":true}` forever).
#[derive(Clone, Default)]
pub struct Receiver {
    pub requests: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<Vec<Answer>>>,
}

impl Receiver {
    pub async fn start() -> (Self, SocketAddr) {
        let receiver = Self::default();
        let app = axum::Router::new()
            .fallback(post(record))
            .with_state(receiver.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, addr)
    }

    /// The next answers' statuses, in order (e.g. [503, 429] then 200s).
    pub fn answer_with(&self, statuses: &[u16]) {
        self.script(statuses.iter().map(|s| Answer::status(*s)).collect());
    }

    /// The next answers, in order.
    pub fn script(&self, answers: Vec<Answer>) {
        *self.script.lock().unwrap() = answers.into_iter().rev().collect();
    }

    pub fn all(&self) -> Vec<Received> {
        self.requests.lock().unwrap().clone()
    }

    /// Requests that were answered 2xx and carry `event`.
    pub fn events(&self, event: &str) -> Vec<Received> {
        self.accepted()
            .into_iter()
            .filter(|r| r.json["event"] == event)
            .collect()
    }

    /// Requests that were answered 2xx.
    pub fn accepted(&self) -> Vec<Received> {
        self.all()
            .into_iter()
            .filter(|r| r.headers.contains_key("x-test-accepted"))
            .collect()
    }

    pub fn codes(&self) -> Vec<String> {
        self.events("code")
            .iter()
            .map(|r| r.json["code"].as_str().unwrap().to_owned())
            .collect()
    }
}

async fn record(
    State(receiver): State<Receiver>,
    uri: axum::http::Uri,
    mut headers: HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let answer = receiver
        .script
        .lock()
        .unwrap()
        .pop()
        .unwrap_or_else(|| Answer::with_body(200, r#"{"ok":true,"result":{}}"#));
    if (200..300).contains(&answer.status) {
        // Marks what was accepted, so tests can tell retries apart.
        headers.insert("x-test-accepted", "1".parse().unwrap());
    }
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    receiver.requests.lock().unwrap().push(Received {
        path: uri.path().to_owned(),
        headers,
        body: body.to_vec(),
        json,
        at: tokio::time::Instant::now(),
    });
    let mut body = answer.body.clone();
    if answer.echo_path {
        body.push_str(uri.path());
    }
    let mut response = (StatusCode::from_u16(answer.status).unwrap(), body).into_response();
    if let Some(seconds) = answer.retry_after {
        response
            .headers_mut()
            .insert("retry-after", seconds.to_string().parse().unwrap());
    }
    for (name, value) in &answer.headers {
        response.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    response
}

/// How [`start_big_body_server`] answers every request.
#[derive(Debug, Clone, Copy)]
pub enum BigBody {
    /// `Content-Length` of 100 MB, 65 KiB sent, then nothing more.
    Declared,
    /// Chunked, 1 KiB chunks, 100 of them, then nothing more.
    Chunked,
}

/// A raw HTTP/1.1 server that answers every request 200 with a body far
/// larger than any real vendor or channel answer, and never finishes it.
/// Returns its address and when each connection arrived.
pub async fn start_big_body_server(
    kind: BigBody,
) -> (SocketAddr, Arc<Mutex<Vec<tokio::time::Instant>>>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let seen = arrivals.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            seen.lock().unwrap().push(tokio::time::Instant::now());
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                let chunk = vec![b'x'; 1024];
                match kind {
                    BigBody::Declared => {
                        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                                    content-length: 104857600\r\n\r\n";
                        let _ = stream.write_all(head.as_bytes()).await;
                        for _ in 0..65 {
                            let _ = stream.write_all(&chunk).await;
                        }
                    }
                    BigBody::Chunked => {
                        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                                    transfer-encoding: chunked\r\n\r\n";
                        let _ = stream.write_all(head.as_bytes()).await;
                        for _ in 0..100 {
                            let _ = stream.write_all(b"400\r\n").await;
                            let _ = stream.write_all(&chunk).await;
                            let _ = stream.write_all(b"\r\n").await;
                        }
                    }
                }
                // Hold the connection open: the body never ends.
                std::future::pending::<()>().await;
                drop(stream);
            });
        }
    });
    (addr, arrivals)
}

/// Verifies a Standard Webhooks v1 signature from the specification alone:
/// key = base64 after `whsec_`, signed content = "{id}.{timestamp}.{body}",
/// header = space-separated "v1,<base64 HMAC-SHA256>" entries.
pub fn verify_standard_webhook(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .unwrap();
    let id = headers["webhook-id"].to_str().unwrap();
    let timestamp = headers["webhook-timestamp"].to_str().unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    headers["webhook-signature"]
        .to_str()
        .unwrap()
        .split(' ')
        .any(|s| s == format!("v1,{expected}"))
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

/// A running daemon; dropped or `stop`ped, it shuts down.
pub struct Daemon {
    pub metrics: Metrics,
    pub addr: SocketAddr,
    reload: tokio::sync::mpsc::Sender<()>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Daemon {
    /// Runs the daemon on `config`; reloads read the config file again with
    /// the test environment.
    pub async fn start(config: Config) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(config, listener).await
    }

    /// Like `start`, on a listener the test bound (to put its address in
    /// the config first).
    pub async fn start_on(config: Config, listener: TcpListener) -> Self {
        let loader: relinkd::daemon::Loader = std::sync::Arc::new(|path: &std::path::Path| {
            config::load_with(path, &test_env(path.parent().unwrap()))
        });
        Self::start_with_loader(config, listener, loader).await
    }

    /// Like `start_on`, with reloads read by `loader`.
    pub async fn start_with_loader(
        config: Config,
        listener: TcpListener,
        loader: relinkd::daemon::Loader,
    ) -> Self {
        let addr = listener.local_addr().unwrap();
        let metrics = Metrics::new();
        let (stop, stopped) = oneshot::channel::<()>();
        let (reload, reloads) = tokio::sync::mpsc::channel(1);
        let daemon = relinkd::daemon::Daemon::new(config)
            .with_metrics(metrics.clone())
            .with_loader(loader);
        let task = tokio::spawn(async move {
            daemon
                .run(
                    listener,
                    async {
                        let _ = stopped.await;
                    },
                    reloads,
                )
                .await
                .unwrap();
        });
        Self {
            metrics,
            addr,
            reload,
            stop: Some(stop),
            task,
        }
    }

    /// Like SIGHUP.
    pub async fn reload(&self) {
        self.reload.send(()).await.unwrap();
    }

    /// Asks for shutdown without waiting for it (see `stopped`).
    pub fn request_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Whether the daemon has finished running.
    pub fn has_stopped(&self) -> bool {
        self.task.is_finished()
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.unwrap();
    }

    /// GET an admin API path with a bearer token (or none).
    pub async fn api_get(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> (u16, serde_json::Value, String) {
        let mut request = reqwest::Client::new().get(format!("http://{}{path}", self.addr));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or_default(),
            text,
        )
    }

    /// POST an admin API path with a bearer token (or none).
    pub async fn api_post(&self, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
        let mut request = reqwest::Client::new().post(format!("http://{}{path}", self.addr));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }

    /// The status of one instance from the admin API.
    pub async fn instance_status(&self, id: u64) -> serde_json::Value {
        let (status, body, _) = self.api_get("/api/v1/instances", Some(ADMIN_TOKEN)).await;
        assert_eq!(status, 200, "{body}");
        body["instances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id)
            .cloned()
            .unwrap_or(serde_json::Value::Null)
    }

    /// The value of the series `name{labels}` on /metrics (exactly those
    /// labels, in any order); `None` if there is no such series.
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        series_value(&self.scrape().await, name, labels)
    }

    pub async fn scrape(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
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

/// Sleeps in tokio time (paused clock: instant in real time).
pub async fn wait(d: Duration) {
    tokio::time::sleep(d).await;
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
