//! The fleet: one supervisor per configured instance, started, updated and
//! stopped as the config changes. An instance that stays in the config keeps
//! its supervisor, and so its episode, outstanding code and pause.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::mailbox::Mailbox;
use super::metrics::LinkerMetrics;
use super::policy::Policy;
use super::record::{last_reboot_of, phase_of};
use super::supervisor::{InstanceSpec, Shared, Supervisor, Update};
use super::view::{FleetView, InstanceView};
use crate::config::{Config, InstanceConfig};
use crate::delivery::Dispatcher;
use crate::greenapi::{Client, InstanceApi, InstanceState};
use crate::readiness::Readiness;
use crate::shutdown::Tasks;
use crate::state::{Saved, StateBoard};

/// Spread of first polls per instance for a small fleet: a handful starts
/// at once.
const START_SPREAD_PER_INSTANCE: Duration = Duration::from_millis(20);

/// A fleet this large spreads its first polls over a whole poll interval,
/// so it starts at the rate it keeps: no second holds a herd of polls that
/// jitter would take many intervals to disperse.
const FULL_SPREAD_FROM: usize = 100;

/// A running supervisor, as the fleet holds it.
struct Running {
    /// The instance's config as last applied, to tell what a reload changed
    /// (the running config's own, not a copy).
    config: Arc<InstanceConfig>,
    /// Kept across reloads unless the endpoint changes (it holds the pacing).
    api: InstanceApi,
    /// Relinks, hints and a reload's updates for the supervisor.
    mailbox: Arc<Mailbox<Update>>,
    /// Aborted, then awaited, when the instance leaves the config, so it
    /// cannot publish after its record is dropped.
    task: JoinHandle<()>,
}

/// What a reconcile did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Changes {
    pub added: usize,
    pub removed: usize,
    pub updated: usize,
    pub unchanged: usize,
}

/// What the fleet needs from the daemon to run supervisors.
pub struct FleetDeps {
    /// Makes each instance's API handle.
    pub client: Client,
    /// Each instance's series are registered and removed here.
    pub metrics: LinkerMetrics,
    /// Where supervisors publish their episodes for the state writer.
    pub board: StateBoard,
    /// Told when a supervisor panics.
    pub readiness: Readiness,
    /// Where supervisors run (a child token each).
    pub supervisors: Tasks,
    /// Where their deliveries run.
    pub deliveries: Tasks,
}

/// The supervisors, one per configured instance. Owned by the one task that
/// applies reloads; everyone else reads the [`FleetView`].
pub struct Fleet {
    /// What every supervisor is started with.
    deps: FleetDeps,
    /// The current channels, shared with every supervisor.
    dispatcher: watch::Sender<Dispatcher>,
    /// What every supervisor is given of the daemon.
    shared: Arc<Shared>,
    /// What readers see; kept in step with `running`.
    view: FleetView,
    /// The supervisors, by instance id.
    running: HashMap<u64, Running>,
}

impl Fleet {
    pub fn new(deps: FleetDeps, dispatcher: Dispatcher) -> Self {
        let dispatcher = watch::Sender::new(dispatcher);
        let shared = Arc::new(Shared {
            stop: deps.supervisors.token(),
            dispatcher: dispatcher.subscribe(),
            board: deps.board.clone(),
            deliveries: deps.deliveries.clone(),
            codes: deps.metrics.codes.clone(),
            forwarded_mismatches: deps.metrics.forwarded_mismatches.clone(),
            reboot_failures: deps.metrics.reboot_failures.clone(),
        });
        Self {
            deps,
            dispatcher,
            shared,
            view: FleetView::default(),
            running: HashMap::new(),
        }
    }

    /// What readers may see of the fleet.
    pub fn view(&self) -> FleetView {
        self.view.clone()
    }

    /// Starts supervisors for every instance of `config`, resuming persisted
    /// episodes. Records of instances no longer configured are dropped.
    pub fn start(&mut self, config: &Config) {
        self.deps
            .board
            .retain(|id| config.instances.iter().any(|i| i.id == id));
        self.spawn_spread(config.instances.to_vec());
    }

    /// The fleet's current channels, as each reload swaps them.
    pub fn dispatcher(&self) -> watch::Receiver<Dispatcher> {
        self.dispatcher.subscribe()
    }

    /// Brings the fleet to `config` with `dispatcher` (built from its
    /// channels): removed instances stop, added ones start, changed ones get
    /// the new settings and keep their episode (and their backoff), and
    /// unchanged ones are not touched at all.
    pub async fn reconcile(&mut self, config: &Config, dispatcher: Dispatcher) -> Changes {
        let dispatcher = dispatcher.keeping_rate_limits_of(&self.dispatcher.borrow());
        self.dispatcher.send_replace(dispatcher);
        let mut changes = Changes::default();
        let wanted: HashMap<u64, &InstanceConfig> =
            config.instances.iter().map(|i| (i.id, &**i)).collect();
        let gone: Vec<u64> = self
            .running
            .keys()
            .filter(|id| !wanted.contains_key(id))
            .copied()
            .collect();
        for id in gone {
            if let Some(running) = self.running.remove(&id) {
                // Dropped where it stands, as at shutdown; once it has
                // stopped it cannot publish its record again.
                running.task.abort();
                let _ = running.task.await;
            }
            self.view.remove(id);
            self.deps.metrics.remove_instance(id);
            self.deps.board.set(id, Saved::default());
            changes.removed += 1;
        }
        let mut added = Vec::new();
        for instance in &config.instances {
            let Some(running) = self.running.get_mut(&instance.id) else {
                added.push(instance.clone());
                changes.added += 1;
                continue;
            };
            // Held by the new config's `Arc` from now on, changed or not, so
            // the old config can go.
            let old = std::mem::replace(&mut running.config, instance.clone());
            if same_instance(&old, instance) {
                changes.unchanged += 1;
                continue;
            }
            changes.updated += 1;
            // Keep the API handle (and so its pacing) unless how the vendor
            // is reached changed.
            if !old.reaches_vendor_as(instance) {
                running.api = self.deps.client.instance(&instance.endpoint());
            }
            let update = Update {
                spec: InstanceSpec {
                    config: instance.clone(),
                    api: running.api.clone(),
                },
                metrics: self.deps.metrics.instance(instance.id, &instance.name),
            };
            running.mailbox.update(Arc::new(update));
        }
        self.spawn_spread(added);
        changes
    }

    /// Starts `instances` with their first polls spread: over a whole poll
    /// interval for a large batch, within a moment for a few.
    fn spawn_spread(&mut self, instances: Vec<Arc<InstanceConfig>>) {
        let count = instances.len().max(1);
        let now = Instant::now();
        for (i, instance) in instances.into_iter().enumerate() {
            let interval = instance.settings.poll_interval;
            let spread = if count >= FULL_SPREAD_FROM {
                interval
            } else {
                START_SPREAD_PER_INSTANCE
                    .saturating_mul(count as u32)
                    .min(interval)
            };
            let first_poll = now + spread.mul_f64(i as f64 / count as f64);
            self.spawn(instance, first_poll);
        }
    }

    fn spawn(&mut self, config: Arc<InstanceConfig>, first_poll: Instant) {
        let api = self.deps.client.instance(&config.endpoint());
        let saved = self.deps.board.get(config.id);
        let now = Instant::now();
        let policy = match &saved.episode {
            Some(record) => Policy::restore(
                config.settings.clone(),
                config.id,
                now,
                first_poll,
                phase_of(record),
            ),
            None => Policy::new(config.settings.clone(), config.id, first_poll),
        }
        .with_last_reboot(last_reboot_of(&saved.reboot), now);
        let metrics = self.deps.metrics.instance(config.id, &config.name);
        let view = Arc::new(InstanceView::new(config.id, &config.name));
        let mailbox = Arc::new(Mailbox::default());
        let spec = InstanceSpec {
            config: config.clone(),
            api: api.clone(),
        };
        let supervisor = Supervisor::new(
            spec,
            policy,
            metrics,
            self.shared.clone(),
            view.clone(),
            mailbox.clone(),
        );
        let run = supervisor.run();
        // Boxed: an `async fn` keeps a moved-in future twice in its own
        // (rust-lang/rust#62958), and this is what every idle instance costs.
        let task = reporting_a_panic(Box::pin(run), self.deps.readiness.clone(), view.clone());
        let task = self.deps.supervisors.spawn(task);
        self.view.insert(view);
        self.running.insert(
            config.id,
            Running {
                config,
                api,
                mailbox,
                task,
            },
        );
    }

    /// Tells an instance's supervisor what a forwarded notification says its
    /// state is (it polls now; the poll decides); false if the id is not in
    /// the fleet.
    pub fn hint(&self, id: u64, state: InstanceState) -> bool {
        match self.running.get(&id) {
            Some(running) => {
                running.mailbox.hint(state);
                true
            }
            None => false,
        }
    }

    /// Asks an instance's supervisor to end its pause or poll now; false if
    /// the id is not in the fleet.
    pub fn relink(&self, id: u64) -> bool {
        match self.running.get(&id) {
            Some(running) => {
                running.mailbox.relink();
                true
            }
            None => false,
        }
    }
}

/// Runs a supervisor. A panic is a bug, but it must not pass silently: the
/// instance is no longer watched, so relinkd stops reporting ready and
/// withholds the watchdog (systemd restarts it).
async fn reporting_a_panic(
    run: impl Future<Output = ()>,
    readiness: Readiness,
    view: Arc<InstanceView>,
) {
    let panicked = std::panic::AssertUnwindSafe(run)
        .catch_unwind()
        .await
        .is_err();
    view.set_ended();
    if panicked {
        readiness.supervisor_died();
        let status = view.status();
        tracing::error!(
            instance = %status.name,
            wa_instance = status.id,
            "the supervisor of this instance panicked; it is no longer watched; \
             relinkd reports not ready until it is restarted"
        );
    }
}

fn same_instance(a: &InstanceConfig, b: &InstanceConfig) -> bool {
    a.reaches_vendor_as(b)
        && a.name == b.name
        && a.phone == b.phone
        && a.channels == b.channels
        && a.settings == b.settings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_supervisor_that_panics_makes_relinkd_not_ready() {
        let readiness = Readiness::default();
        readiness.set_started(true);
        assert!(readiness.is_ready());
        let fine = Arc::new(InstanceView::new(1, "fine"));
        reporting_a_panic(async {}, readiness.clone(), fine.clone()).await;
        assert!(
            readiness.is_ready(),
            "a supervisor that ends is not a death"
        );
        assert!(fine.has_ended(), "but it is no longer watching");
        let broken = Arc::new(InstanceView::new(2, "broken"));
        let task = tokio::spawn(reporting_a_panic(
            async { panic!("a bug") },
            readiness.clone(),
            broken.clone(),
        ));
        task.await.expect("the panic is caught and reported");
        assert!(!readiness.is_ready());
        assert!(broken.has_ended());
        assert_eq!(readiness.dead_supervisors(), 1);
    }
}
