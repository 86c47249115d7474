//! The daemon, run in the test's own runtime (so tokio's paused clock drives
//! every timer), and what a test asks of it: its admin API and /metrics.

use std::net::SocketAddr;

use relinkd::config::{self, Config};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::{ADMIN_TOKEN, series_value, test_env};

/// A running daemon; dropped or `stop`ped, it shuts down.
pub struct Daemon {
    pub addr: SocketAddr,
    commands: relinkd::control::Commands,
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
        let (stop, stopped) = oneshot::channel::<()>();
        let daemon = relinkd::daemon::Daemon::new(config).with_loader(loader);
        let commands = daemon.commands();
        let task = tokio::spawn(async move {
            daemon
                .run(listener, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            addr,
            commands,
            stop: Some(stop),
            task,
        }
    }

    /// Like SIGHUP.
    pub async fn reload(&self) {
        self.commands.request_reload();
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
        let mut request = super::http().get(format!("http://{}{path}", self.addr));
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
        let mut request = super::http().post(format!("http://{}{path}", self.addr));
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
        super::http()
            .get(format!("http://{}/metrics", self.addr))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}
