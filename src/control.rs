//! The operator's commands to a running daemon (reload the config, relink
//! an instance), from SIGHUP and the admin API alike, and the one task that
//! carries them out. That task owns the fleet: nobody else changes it, and
//! readers use its [`FleetView`](crate::linker::FleetView), which a reload
//! never locks.

use std::path::Path;
use std::sync::{Arc, RwLock};

use prometheus::{Gauge, IntCounterVec, IntGauge, Opts, Registry};
use secrecy::SecretString;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::clock;
use crate::config::{Config, ConfigError, DaemonConfig};
use crate::delivery::{BuildDeps, BuildError, DeliveryMetrics, Dispatcher};
use crate::digest::Digests;
use crate::greenapi::{self, Client, InstanceState};
use crate::linker::{Changes, Fleet};
use crate::metrics::register;
use crate::outbound;
use crate::service::Notifier;
use crate::shutdown::Tasks;

/// Commands waiting while one is carried out; a SIGHUP finding the queue
/// full is covered by the reloads already queued.
const QUEUE: usize = 16;

/// What an operator asks of the running daemon.
pub enum Command {
    /// Read the config file again and apply it; the reply (if any) says
    /// what changed or why the running config was kept.
    Reload {
        reply: Option<oneshot::Sender<Result<Changes, String>>>,
    },
    /// End the instance's pause, or poll it now; the reply says whether the
    /// id is in the running config.
    Relink {
        id: u64,
        reply: oneshot::Sender<bool>,
    },
    /// A forwarded notification says the instance's state changed: poll it
    /// now. The reply says whether the id is in the running config.
    Hint {
        id: u64,
        state: InstanceState,
        reply: oneshot::Sender<bool>,
    },
}

/// Sends commands to the daemon. Cheap to clone.
#[derive(Clone)]
pub struct Commands(mpsc::Sender<Command>);

/// `None` means the daemon is shutting down.
impl Commands {
    pub fn channel() -> (Self, mpsc::Receiver<Command>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Self(tx), rx)
    }

    /// A reload nobody waits for (SIGHUP); dropped if reloads are queued.
    pub fn request_reload(&self) {
        let _ = self.0.try_send(Command::Reload { reply: None });
    }

    pub async fn reload(&self) -> Option<Result<Changes, String>> {
        let (reply, outcome) = oneshot::channel();
        let reply = Some(reply);
        self.0.send(Command::Reload { reply }).await.ok()?;
        outcome.await.ok()
    }

    pub async fn relink(&self, id: u64) -> Option<bool> {
        let (reply, known) = oneshot::channel();
        self.0.send(Command::Relink { id, reply }).await.ok()?;
        known.await.ok()
    }

    pub async fn hint(&self, id: u64, state: InstanceState) -> Option<bool> {
        let (reply, known) = oneshot::channel();
        self.0.send(Command::Hint { id, state, reply }).await.ok()?;
        known.await.ok()
    }
}

/// Reads a config for a reload (tests pass one with their own environment).
/// It runs on a blocking thread: it reads files, which may be slow or stuck.
pub type Loader = Arc<dyn Fn(&Path) -> Result<Config, ConfigError> + Send + Sync>;

/// `relinkd_config_last_reload_successful` and
/// `relinkd_config_last_reload_success_timestamp_seconds`.
#[derive(Clone)]
pub struct ReloadMetrics {
    successful: IntGauge,
    success_timestamp: Gauge,
    reloads: IntCounterVec,
}

impl ReloadMetrics {
    pub fn register(registry: &Registry) -> Self {
        let successful = IntGauge::new(
            "relinkd_config_last_reload_successful",
            "1 if the last load or reload of the config succeeded, else 0.",
        )
        .expect("valid metric");
        let success_timestamp = Gauge::new(
            "relinkd_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful load or reload of the config.",
        )
        .expect("valid metric");
        let reloads = IntCounterVec::new(
            Opts::new(
                "relinkd_config_reloads_total",
                "Config reloads (not the first load), by outcome (success, failure).",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        for outcome in ["success", "failure"] {
            reloads.with_label_values(&[outcome]);
        }
        register(registry, successful.clone());
        register(registry, success_timestamp.clone());
        register(registry, reloads.clone());
        Self {
            successful,
            success_timestamp,
            reloads,
        }
    }

    /// The config was loaded (at start) or reloaded.
    pub fn succeeded(&self) {
        self.successful.set(1);
        self.success_timestamp
            .set(clock::unix_millis(clock::now()) as f64 / 1000.0);
    }

    fn failed(&self) {
        self.successful.set(0);
        self.reloads.with_label_values(&["failure"]).inc();
    }

    fn reloaded(&self) {
        self.succeeded();
        self.reloads.with_label_values(&["success"]).inc();
    }
}

/// A reload that kept the running config.
struct ReloadFailed<'a> {
    error: &'a str,
}

impl ReloadFailed<'_> {
    fn emit(&self, metrics: &ReloadMetrics) {
        metrics.failed();
        tracing::error!(error = %self.error, "config reload failed; the running config is kept");
    }
}

/// A reload that was applied.
struct Reloaded<'a> {
    changes: Changes,
    digest: &'a str,
}

impl Reloaded<'_> {
    fn emit(&self, metrics: &ReloadMetrics) {
        metrics.reloaded();
        let changes = self.changes;
        tracing::info!(
            added = changes.added,
            removed = changes.removed,
            updated = changes.updated,
            unchanged = changes.unchanged,
            digest = &self.digest[..12.min(self.digest.len())],
            "config reloaded"
        );
    }
}

/// What the control task needs besides the fleet.
pub struct Control {
    /// The running config (its `[daemon]` as at start, but for the token).
    pub config: Config,
    /// Owned here alone: only this task starts, changes and stops
    /// supervisors.
    pub fleet: Fleet,
    /// Reads the config file for a reload.
    pub loader: Loader,
    /// Tells systemd a reload is under way, and its outcome (`STATUS=`).
    pub notifier: Notifier,
    /// Builds a reload's WhatsApp channels.
    pub client: Client,
    /// Builds a reload's HTTP channels.
    pub http: reqwest::Client,
    /// A reload registers its new channels' series and removes the old.
    pub delivery_metrics: DeliveryMetrics,
    pub reload_metrics: ReloadMetrics,
    /// Shared with the admin API, which checks requests against it.
    pub admin_token: Arc<RwLock<Option<SecretString>>>,
    /// The forwarded webhooks' token, which a reload replaces too.
    pub webhook_token: Arc<RwLock<Option<SecretString>>>,
    /// The digest task, told of a reload's digests.
    pub digests: Digests,
}

/// A config being read for a reload, and who waits for its outcome.
struct Pending {
    /// The read, on a blocking thread.
    load: JoinHandle<Result<Config, ConfigError>>,
    /// Admin API requests waiting for this reload's outcome.
    replies: Vec<oneshot::Sender<Result<Changes, String>>>,
}

impl Control {
    /// Carries out commands until `tasks` is cancelled; a reload whose
    /// config read is under way then is abandoned (the read may be stuck
    /// on a file). Relinks are answered while a config is being read.
    pub async fn serve(mut self, mut commands: mpsc::Receiver<Command>, tasks: Tasks) {
        let mut pending: Option<Pending> = None;
        // Reloads asked for while a read is under way: the file may have
        // changed after that read began, so they get a read of their own.
        let mut next: Option<Vec<oneshot::Sender<Result<Changes, String>>>> = None;
        loop {
            tokio::select! {
                () = tasks.cancelled() => return,
                Some(command) = commands.recv() => match command {
                    Command::Relink { id, reply } => {
                        let _ = reply.send(self.fleet.relink(id));
                    }
                    Command::Hint { id, state, reply } => {
                        let _ = reply.send(self.fleet.hint(id, state));
                    }
                    Command::Reload { reply } => {
                        let replies = if pending.is_some() {
                            next.get_or_insert_with(Vec::new)
                        } else {
                            self.notifier.reloading();
                            let started = self.start_load();
                            &mut pending.insert(started).replies
                        };
                        replies.extend(reply);
                    }
                },
                loaded = wait_for(&mut pending) => {
                    let Pending { replies, .. } = pending.take().expect("a load was pending");
                    let loaded = match loaded {
                        Ok(loaded) => loaded.map_err(|e| e.to_string()),
                        Err(e) => Err(format!(
                            "{}: reading the config failed: {e}",
                            self.config.path.display()
                        )),
                    };
                    let outcome = self.apply(loaded).await;
                    for reply in replies {
                        let _ = reply.send(outcome.clone());
                    }
                    if let Some(replies) = next.take() {
                        self.notifier.reloading();
                        pending = Some(Pending { replies, ..self.start_load() });
                    }
                }
            }
        }
    }

    /// Reads the config file on a blocking thread, so no file can stall the
    /// runtime.
    fn start_load(&self) -> Pending {
        let (loader, path) = (self.loader.clone(), self.config.path.clone());
        Pending {
            load: tokio::task::spawn_blocking(move || loader(&path)),
            replies: Vec::new(),
        }
    }

    async fn apply(&mut self, loaded: Result<Config, String>) -> Result<Changes, String> {
        let mut new = match loaded {
            Ok(new) => new,
            Err(error) => {
                ReloadFailed { error: &error }.emit(&self.reload_metrics);
                let summary = self.fleet.view().summary();
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
        warn_about_restart_only_changes(&self.config.daemon, &new.daemon);
        let built = self.clients_for(&new.daemon).and_then(|clients| {
            let http = clients.as_ref().map_or(&self.http, |c| &c.channels);
            let dispatcher = build_dispatcher(&new, &self.client, http, &self.delivery_metrics)
                .map_err(|e| e.to_string())?;
            Ok((clients, dispatcher))
        });
        let (clients, dispatcher) = match built {
            Ok(built) => built,
            Err(error) => {
                ReloadFailed { error: &error }.emit(&self.reload_metrics);
                self.notifier
                    .ready(&format!("reload failed, running config kept ({error})"));
                return Err(error);
            }
        };
        if let Some(clients) = clients {
            // New connections use the new CA file and proxies; requests in
            // flight finish on the old pools.
            self.http = clients.channels;
            self.client.use_http(clients.vendor);
            new.daemon.egress.log();
            tracing::info!("outbound clients rebuilt for the changed ca_file or proxies");
        }
        // Only now that the new channels are built do the old series go.
        for old in &self.config.channels {
            if !new.channels.iter().any(|c| c.name == old.name) {
                self.delivery_metrics.remove_channel(&old.name);
            }
        }
        let changes = self.fleet.reconcile(&new, dispatcher).await;
        self.digests.reconcile(new.digests.clone()).await;
        *self.admin_token.write().unwrap_or_else(|e| e.into_inner()) =
            new.daemon.admin_token.clone();
        *self
            .webhook_token
            .write()
            .unwrap_or_else(|e| e.into_inner()) = new.daemon.greenapi_webhook_token.clone();
        // Settings of [daemon] other than the tokens and egress need a
        // restart.
        new.daemon = DaemonConfig {
            admin_token: new.daemon.admin_token.clone(),
            greenapi_webhook_token: new.daemon.greenapi_webhook_token.clone(),
            egress: new.daemon.egress.clone(),
            ..self.config.daemon.clone()
        };
        self.config = new;
        Reloaded {
            changes,
            digest: &self.config.digest,
        }
        .emit(&self.reload_metrics);
        self.notifier
            .ready(&self.fleet.view().summary().to_string());
        Ok(changes)
    }
}

/// A reload's outbound clients, when its egress differs from the running one.
struct Clients {
    vendor: reqwest::Client,
    channels: reqwest::Client,
}

impl Control {
    /// New clients for `new`'s CA file and proxies; `None` if they did not
    /// change (the running pools are kept, connections and all).
    fn clients_for(&self, new: &DaemonConfig) -> Result<Option<Clients>, String> {
        if new.egress == self.config.daemon.egress {
            return Ok(None);
        }
        let failed = |e: outbound::ClientError| format!("{}: {e}", self.config.path.display());
        Ok(Some(Clients {
            vendor: greenapi::vendor_http(&new.egress, self.config.daemon.max_concurrent_requests)
                .map_err(failed)?,
            channels: outbound::client(&new.egress, outbound::CHANNEL_IDLE_PER_HOST)
                .map_err(failed)?,
        }))
    }
}

/// The channels of `config`, running; WhatsApp channels send through their
/// `via` instance's API handle, sharing its pacing.
pub fn build_dispatcher(
    config: &Config,
    client: &Client,
    http: &reqwest::Client,
    metrics: &DeliveryMetrics,
) -> Result<Dispatcher, BuildError> {
    let instance_api = |id| config.instance(id).map(|i| client.instance(&i.endpoint()));
    let deps = BuildDeps {
        http,
        egress: &config.daemon.egress,
        instance_api: &instance_api,
    };
    Dispatcher::build(&config.channels, &deps, metrics)
}

async fn wait_for(
    pending: &mut Option<Pending>,
) -> Result<Result<Config, ConfigError>, tokio::task::JoinError> {
    match pending {
        Some(pending) => (&mut pending.load).await,
        None => std::future::pending().await,
    }
}

fn warn_about_restart_only_changes(old: &DaemonConfig, new: &DaemonConfig) {
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

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}
