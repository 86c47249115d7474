//! The daemon: from a loaded config to running supervisors, the admin
//! listener, the state writer and the service-manager notifications; then
//! commands until shutdown, and the drain.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::admin::{self, AdminState};
use crate::config::{self, Config};
use crate::control::{self, Command, Commands, Control, ReloadMetrics};
use crate::delivery::DeliveryMetrics;
use crate::digest::{self, DigestDeps, DigestMetrics, Tally, Totals};
use crate::forwarded::Forwarded;
use crate::greenapi::{self, ApiMetrics, Client};
use crate::health;
use crate::linker::{Fleet, FleetDeps, LinkerMetrics};
use crate::listener::{self, ListenerMetrics};
use crate::metrics::Metrics;
use crate::outbound;
use crate::readiness::Readiness;
use crate::service::Notifier;
use crate::shutdown::Tasks;
use crate::state::{StateBoard, StateError, StateStore};

pub use crate::control::Loader;

/// How long in-flight deliveries may take to finish at shutdown.
pub const DRAIN_GRACE: Duration = Duration::from_secs(5);
/// How long open admin connections may take to finish at shutdown.
const LISTENER_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("admin listener failed: {0}")]
    Listener(#[source] std::io::Error),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Channel(#[from] crate::delivery::BuildError),
    #[error(transparent)]
    Outbound(#[from] crate::outbound::ClientError),
}

pub struct Daemon {
    /// The config loaded at start; the control task owns it once running.
    config: Config,
    /// How reloads read the config (tests pass their own environment).
    loader: Loader,
    notifier: Notifier,
    /// Handed out by [`Daemon::commands`] (SIGHUP, tests) and to the admin API.
    commands: Commands,
    /// Taken by the control task.
    inbox: mpsc::Receiver<Command>,
}

/// The nodes of the shutdown tree, in the order [`drain`] stops them.
struct Stages {
    /// The control task (reloads, relinks).
    control: Tasks,
    /// The watchdog and `STATUS=` reporter.
    health: Tasks,
    /// One task per instance, each under its own token.
    supervisors: Tasks,
    /// Notifications in flight, each under its own token.
    deliveries: Tasks,
    /// The state writer.
    state: Tasks,
    /// The admin listener and its connections.
    listener: Tasks,
}

impl Stages {
    fn under(root: &Tasks) -> Self {
        Self {
            control: root.child(),
            health: root.child(),
            supervisors: root.child(),
            deliveries: root.child(),
            state: root.child(),
            listener: root.child(),
        }
    }
}

impl Daemon {
    pub fn new(config: Config) -> Self {
        let (commands, inbox) = Commands::channel();
        Self {
            config,
            loader: Arc::new(|path: &std::path::Path| config::load(path)),
            notifier: Notifier::from_env(),
            commands,
            inbox,
        }
    }

    pub fn with_loader(mut self, loader: Loader) -> Self {
        self.loader = loader;
        self
    }

    /// Where to send commands (SIGHUP sends `Reload`).
    pub fn commands(&self) -> Commands {
        self.commands.clone()
    }

    /// Runs until `shutdown` resolves, then drains. A reload in progress
    /// never delays shutdown.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), DaemonError> {
        let Daemon {
            config,
            loader,
            notifier,
            commands,
            inbox,
        } = self;
        let listen = listener.local_addr().map_err(DaemonError::Listener)?;
        let root = Tasks::new();
        let stages = Stages::under(&root);

        let metrics = Metrics::new();
        let delivery_metrics = DeliveryMetrics::register(metrics.registry());
        let reload_metrics = ReloadMetrics::register(metrics.registry());
        let egress = &config.daemon.egress;
        let client = Client::new(
            config.daemon.max_concurrent_requests,
            greenapi::vendor_http(egress, config.daemon.max_concurrent_requests)?,
            ApiMetrics::register(metrics.registry()),
        );
        let http = outbound::client(egress, outbound::CHANNEL_IDLE_PER_HOST)?;
        egress.log();
        let store = StateStore::open(&config.daemon.state_dir)?;
        let board = StateBoard::new(store.load());
        let readiness = Readiness::default();

        let dispatcher = control::build_dispatcher(&config, &client, &http, &delivery_metrics)?;
        let linker_metrics = LinkerMetrics::register(&metrics);
        let mut fleet = Fleet::new(
            FleetDeps {
                client: client.clone(),
                metrics: linker_metrics.clone(),
                board: board.clone(),
                readiness: readiness.clone(),
                supervisors: stages.supervisors.clone(),
                deliveries: stages.deliveries.clone(),
            },
            dispatcher,
        );
        fleet.start(&config);
        let view = fleet.view();
        stages
            .state
            .spawn(board.write_until(store, stages.state.child_token()));

        let digests = digest::start(
            config.digests.clone(),
            DigestDeps {
                view: view.clone(),
                dispatcher: fleet.dispatcher(),
                tally: tally(&metrics, &linker_metrics),
                metrics: DigestMetrics::register(metrics.registry()),
                deliveries: stages.deliveries.clone(),
            },
            &stages.control,
        );
        let admin_token = Arc::new(RwLock::new(config.daemon.admin_token.clone()));
        let webhook_token = Arc::new(RwLock::new(config.daemon.greenapi_webhook_token.clone()));
        let forwarded = Forwarded::new(webhook_token.clone(), commands.clone(), metrics.registry());
        let router = admin::router(AdminState {
            metrics: metrics.clone(),
            readiness: readiness.clone(),
            fleet: view.clone(),
            commands,
            admin_token: admin_token.clone(),
            forwarded,
            digests: digests.clone(),
        });
        let (max_connections, capped) = listener::connection_limit(config.daemon.max_connections);
        if let Some(why) = capped {
            tracing::warn!("{why}");
        }
        let mut server = stages.listener.spawn(listener::serve(
            listener,
            router,
            max_connections,
            ListenerMetrics::register(metrics.registry()),
            stages.listener.clone(),
        ));

        let channels = config.channels.len();
        let control = Control {
            config,
            fleet,
            loader,
            notifier,
            client: client.clone(),
            http,
            delivery_metrics,
            reload_metrics: reload_metrics.clone(),
            admin_token,
            webhook_token,
            digests,
        };
        stages
            .control
            .spawn(control.serve(inbox, stages.control.clone()));
        reload_metrics.succeeded();
        tracing::info!(
            version = crate::version::VERSION,
            revision = crate::version::REVISION,
            instances = view.len(),
            channels,
            %listen,
            max_connections,
            "relinkd running"
        );
        readiness.set_started(true);
        notifier.ready(&view.summary().to_string());
        stages.health.spawn(health::report(
            view,
            client,
            notifier,
            readiness.clone(),
            stages.health.child_token(),
        ));

        tokio::pin!(shutdown);
        let result = tokio::select! {
            () = &mut shutdown => Ok(()),
            served = &mut server => Err(DaemonError::Listener(std::io::Error::other(match served {
                Ok(()) => "the listener stopped".to_owned(),
                Err(e) => e.to_string(),
            }))),
        };
        notifier.stopping();
        readiness.set_started(false);
        tracing::info!("shutting down");
        drain(&stages).await;
        tracing::info!("stopped");
        result
    }
}

/// Stops the daemon's tasks in order:
/// 1. commands: no more reloads or relinks (a reload whose config read is
///    under way is abandoned: the read may be stuck on a file);
/// 2. the health reporter: no more watchdog pings;
/// 3. supervisors, where they stand (a vendor call in flight is abandoned;
///    the state board keeps what each last published);
/// 4. deliveries: [`DRAIN_GRACE`] to finish, then cut off;
/// 5. the state writer, which flushes the board to the state file;
/// 6. the listener, last, so `/metrics` and `/-/ready` answer throughout.
async fn drain(stages: &Stages) {
    stages.control.stop().await;
    stages.health.stop().await;
    stages.supervisors.stop().await;
    let cut_off = stages.deliveries.finish_within(DRAIN_GRACE).await;
    if cut_off > 0 {
        tracing::warn!(
            in_flight = cut_off,
            "deliveries still running after {DRAIN_GRACE:?}; abandoning them"
        );
    }
    stages.state.stop().await;
    let _ = tokio::time::timeout(LISTENER_GRACE, stages.listener.stop()).await;
}

/// The fleet-wide totals digests report, read from the components' metrics.
fn tally(metrics: &Metrics, linker: &LinkerMetrics) -> Tally {
    let (metrics, linker) = (metrics.clone(), linker.clone());
    Arc::new(move || Totals {
        codes_delivered: metrics
            .counter_sum("relinkd_codes_delivered_total", ("outcome", "delivered")),
        relinks: linker.relinks_total(),
        delivery_failures: metrics.counter_sum("relinkd_deliveries_total", ("outcome", "failure")),
        reloads: metrics.counter_sum("relinkd_config_reloads_total", ("outcome", "success")),
    })
}
