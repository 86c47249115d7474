//! The daemon: from a loaded config to running supervisors, the admin
//! listener, the state writer and the service-manager notifications; then
//! reloads until shutdown, and a graceful drain.

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin::{self, AdminState};
use crate::config::{self, Config, ConfigError};
use crate::delivery::Dispatcher;
use crate::greenapi::Client;
use crate::health;
use crate::linker::{Changes, Fleet};
use crate::listener::{self, ListenerMetrics};
use crate::metrics::Metrics;
use crate::readiness::Readiness;
use crate::service::Notifier;
use crate::state::{StateBoard, StateError, StateStore};

/// How long in-flight deliveries may take to finish at shutdown.
pub const DRAIN_GRACE: Duration = Duration::from_secs(5);
/// Reload requests waiting while one runs (more are covered by those).
const RELOAD_QUEUE: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("admin listener failed: {0}")]
    Listener(#[source] std::io::Error),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Channel(#[from] crate::delivery::BuildError),
}

/// Reads a config for a reload (tests pass one with their own environment).
/// It runs on a blocking thread: it reads files, which may be slow or stuck.
pub type Loader = Arc<dyn Fn(&Path) -> Result<Config, ConfigError> + Send + Sync>;

/// A reload, asked for by SIGHUP (no reply) or over the admin API.
pub struct ReloadRequest {
    pub reply: Option<oneshot::Sender<Result<Changes, String>>>,
}

pub struct Daemon {
    config: Config,
    metrics: Metrics,
    loader: Loader,
    notifier: Notifier,
}

impl Daemon {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            metrics: Metrics::new(),
            loader: Arc::new(|path: &Path| config::load(path)),
            notifier: Notifier::from_env(),
        }
    }

    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn with_loader(mut self, loader: Loader) -> Self {
        self.loader = loader;
        self
    }

    /// Runs until `shutdown` resolves; every message on `reloads` (SIGHUP)
    /// reloads the config file. Returns once drained. A reload in progress
    /// never delays shutdown.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
        mut reloads: mpsc::Receiver<()>,
    ) -> Result<(), DaemonError> {
        let Daemon {
            config,
            metrics,
            loader,
            notifier,
        } = self;
        let listen = listener.local_addr().map_err(DaemonError::Listener)?;
        let store = StateStore::open(&config.daemon.state_dir)?;
        let board = StateBoard::new(store.load());
        let readiness = Readiness::default();

        let client = Client::new(config.daemon.max_concurrent_requests, metrics.api.clone());
        let http = crate::outbound::client();
        let dispatcher = Dispatcher::from_config(&config, &client, &http, &metrics)?;
        let deliveries = TaskTracker::new();
        let mut fleet = Fleet::new(
            client.clone(),
            dispatcher,
            metrics.clone(),
            board.clone(),
            deliveries.clone(),
            readiness.clone(),
        );
        fleet.start(&config);
        let fleet = Arc::new(Mutex::new(fleet));

        let stop = CancellationToken::new();
        let writer = tokio::spawn(board.clone().write_until(store, stop.clone()));

        let admin_token = Arc::new(RwLock::new(config.daemon.admin_token.clone()));
        let (reload_tx, reload_rx) = mpsc::channel::<ReloadRequest>(RELOAD_QUEUE);
        // SIGHUP takes the admin API's path; a reload already queued covers it.
        let sighup_tx = reload_tx.clone();
        tokio::spawn(async move {
            while reloads.recv().await.is_some() {
                let _ = sighup_tx.try_send(ReloadRequest { reply: None });
            }
        });
        let router = admin::router(AdminState {
            metrics: metrics.clone(),
            readiness: readiness.clone(),
            fleet: fleet.clone(),
            reload: reload_tx,
            admin_token: admin_token.clone(),
        });
        let (max_connections, capped) = listener::connection_limit(config.daemon.max_connections);
        if let Some(why) = capped {
            tracing::warn!("{why}");
        }
        let listener_metrics = ListenerMetrics::register(metrics.registry());
        let mut server = tokio::spawn(listener::serve(
            listener,
            router,
            max_connections,
            listener_metrics,
            stop.clone(),
        ));

        let channels = config.channels.len();
        let reloads_stop = CancellationToken::new();
        let control = Control {
            config,
            fleet: fleet.clone(),
            metrics: metrics.clone(),
            loader,
            notifier,
            client: client.clone(),
            http,
            admin_token,
        };
        let reloader = tokio::spawn(control.serve(reload_rx, reloads_stop.clone()));
        metrics.reload_succeeded();
        let status = {
            let fleet = fleet.lock().await;
            tracing::info!(instances = fleet.len(), channels, %listen, max_connections, "relinkd running");
            fleet.summary().to_string()
        };
        readiness.set_started(true);
        notifier.ready(&status);
        let health = tokio::spawn(health::report(
            fleet.clone(),
            client,
            notifier,
            readiness.clone(),
            stop.clone(),
        ));

        tokio::pin!(shutdown);
        let result = tokio::select! {
            () = &mut shutdown => Ok(()),
            served = &mut server => Err(DaemonError::Listener(std::io::Error::other(match served {
                Ok(()) => "the listener stopped".to_owned(),
                Err(e) => e.to_string(),
            }))),
        };

        // Drain: no more reloads (one in progress is abandoned), stop
        // polling, let deliveries finish briefly, persist, stop listening.
        notifier.stopping();
        readiness.set_started(false);
        tracing::info!("shutting down");
        reloads_stop.cancel();
        let _ = reloader.await;
        fleet.lock().await.shutdown().await;
        deliveries.close();
        if tokio::time::timeout(DRAIN_GRACE, deliveries.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                in_flight = deliveries.len(),
                "deliveries still running after {DRAIN_GRACE:?}; abandoning them"
            );
        }
        stop.cancel();
        let _ = writer.await;
        let _ = health.await;
        if !server.is_finished() {
            let _ = tokio::time::timeout(Duration::from_secs(2), &mut server).await;
        }
        tracing::info!("stopped");
        result
    }
}

/// The one reload path (SIGHUP, the admin API), one reload at a time.
struct Control {
    config: Config,
    fleet: Arc<Mutex<Fleet>>,
    metrics: Metrics,
    loader: Loader,
    notifier: Notifier,
    client: Client,
    http: reqwest::Client,
    admin_token: Arc<RwLock<Option<SecretString>>>,
}

impl Control {
    /// Takes reload requests until `stop`; a reload under way when `stop`
    /// comes is abandoned (its config read may be stuck on a file).
    async fn serve(mut self, mut requests: mpsc::Receiver<ReloadRequest>, stop: CancellationToken) {
        loop {
            let request = tokio::select! {
                () = stop.cancelled() => return,
                request = requests.recv() => match request {
                    Some(request) => request,
                    None => return,
                },
            };
            let outcome = tokio::select! {
                () = stop.cancelled() => return,
                outcome = self.reload() => outcome,
            };
            if let Some(reply) = request.reply {
                let _ = reply.send(outcome);
            }
        }
    }

    /// Reads the config file on a blocking thread, so no file can stall the
    /// runtime, then applies it.
    async fn load(&self) -> Result<Config, String> {
        let (loader, path) = (self.loader.clone(), self.config.path.clone());
        match tokio::task::spawn_blocking(move || loader(&path)).await {
            Ok(loaded) => loaded.map_err(|e| e.to_string()),
            Err(e) => Err(format!(
                "{}: reading the config failed: {e}",
                self.config.path.display()
            )),
        }
    }

    async fn reload(&mut self) -> Result<Changes, String> {
        self.notifier.reloading();
        let new = match self.load().await {
            Ok(new) => new,
            Err(error) => {
                self.metrics.reload_failed();
                tracing::error!(%error, "config reload failed; the running config is kept");
                let summary = self.fleet.lock().await.summary();
                self.notifier.ready(&format!(
                    "reload failed, running config kept ({}); {summary}",
                    first_line(&error)
                ));
                return Err(error);
            }
        };
        for warning in &new.warnings {
            tracing::warn!("{warning}");
        }
        self.warn_about_restart_only_changes(&new);
        let dispatcher =
            match Dispatcher::from_config(&new, &self.client, &self.http, &self.metrics) {
                Ok(dispatcher) => dispatcher,
                Err(error) => {
                    self.metrics.reload_failed();
                    tracing::error!(%error, "config reload failed; the running config is kept");
                    self.notifier
                        .ready(&format!("reload failed, running config kept ({error})"));
                    return Err(error.to_string());
                }
            };
        // Only now that the new channels are built do the old series go.
        for old in &self.config.channels {
            if !new.channels.iter().any(|c| c.name == old.name) {
                self.metrics.deliveries.remove_channel(&old.name);
            }
        }
        let (changes, summary) = {
            let mut fleet = self.fleet.lock().await;
            let changes = fleet.reconcile(&new, dispatcher).await;
            (changes, fleet.summary())
        };
        *self.admin_token.write().unwrap_or_else(|e| e.into_inner()) =
            new.daemon.admin_token.clone();
        // Settings of [daemon] other than the admin token need a restart.
        let mut new = new;
        new.daemon = crate::config::DaemonConfig {
            admin_token: new.daemon.admin_token.clone(),
            ..self.config.daemon.clone()
        };
        self.config = new;
        self.metrics.reload_succeeded();
        tracing::info!(
            added = changes.added,
            removed = changes.removed,
            updated = changes.updated,
            unchanged = changes.unchanged,
            digest = &self.config.digest[..12.min(self.config.digest.len())],
            "config reloaded"
        );
        self.notifier.ready(&summary.to_string());
        Ok(changes)
    }

    fn warn_about_restart_only_changes(&self, new: &Config) {
        let (old, new) = (&self.config.daemon, &new.daemon);
        let mut keys = Vec::new();
        if old.listen != new.listen {
            keys.push("listen");
        }
        if old.state_dir != new.state_dir {
            keys.push("state_dir");
        }
        if old.log_format != new.log_format {
            keys.push("log_format");
        }
        if old.max_concurrent_requests != new.max_concurrent_requests {
            keys.push("max_concurrent_requests");
        }
        if old.max_connections != new.max_connections {
            keys.push("max_connections");
        }
        if !keys.is_empty() {
            tracing::warn!(
                keys = ?keys,
                "[daemon] settings changed; they take effect at the next restart"
            );
        }
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}
