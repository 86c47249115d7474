//! The fleet: one supervisor per configured instance, started, updated and
//! stopped as the config changes. An instance that stays in the config keeps
//! its supervisor, and so its episode, outstanding code and pause.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use secrecy::ExposeSecret;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use super::policy::Policy;
use super::record::phase_of;
use super::supervisor::{Inbox, InstanceSpec, Shared, Supervisor, Update};
use super::view::{InstanceStatus, InstanceView};
use crate::config::{Config, InstanceConfig};
use crate::delivery::{Dispatcher, InstanceRef};
use crate::greenapi::{Client, InstanceApi};
use crate::metrics::Metrics;
use crate::readiness::Readiness;
use crate::state::StateBoard;

/// Spread of first polls per instance: a fleet of 3,000 starts over a minute
/// (capped at the poll interval), a handful at once.
const START_SPREAD_PER_INSTANCE: Duration = Duration::from_millis(20);

struct Running {
    config: InstanceConfig,
    api: InstanceApi,
    relinks: mpsc::Sender<()>,
    updates: watch::Sender<Option<Arc<Update>>>,
    task: JoinHandle<()>,
    view: Arc<InstanceView>,
}

/// What a reconcile did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Changes {
    pub added: usize,
    pub removed: usize,
    pub updated: usize,
    pub unchanged: usize,
}

/// Phase counts over the fleet (for `STATUS=`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub instances: usize,
    pub linked: usize,
    pub linking: usize,
    pub paused: usize,
    pub restricted: usize,
    pub other: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} instances: {} linked, {} linking, {} paused",
            self.instances, self.linked, self.linking, self.paused
        )?;
        if self.restricted > 0 {
            write!(f, ", {} restricted", self.restricted)?;
        }
        if self.other > 0 {
            write!(f, ", {} other", self.other)?;
        }
        Ok(())
    }
}

pub struct Fleet {
    client: Client,
    /// The current channels, shared with every supervisor.
    dispatcher: watch::Sender<Dispatcher>,
    metrics: Metrics,
    board: StateBoard,
    deliveries: TaskTracker,
    /// Told when a supervisor panics.
    readiness: Readiness,
    running: HashMap<u64, Running>,
}

impl Fleet {
    pub fn new(
        client: Client,
        dispatcher: Dispatcher,
        metrics: Metrics,
        board: StateBoard,
        deliveries: TaskTracker,
        readiness: Readiness,
    ) -> Self {
        Self {
            client,
            dispatcher: watch::Sender::new(dispatcher),
            metrics,
            board,
            deliveries,
            readiness,
            running: HashMap::new(),
        }
    }

    /// Starts supervisors for every instance of `config`, resuming persisted
    /// episodes. Records of instances no longer configured are dropped.
    pub fn start(&mut self, config: &Config) {
        self.board
            .retain(|id| config.instances.iter().any(|i| i.id == id));
        let count = config.instances.len().max(1);
        let now = Instant::now();
        for (i, instance) in config.instances.iter().enumerate() {
            let spread = START_SPREAD_PER_INSTANCE
                .saturating_mul(count as u32)
                .min(instance.settings.poll_interval);
            let first_poll = now + spread.mul_f64(i as f64 / count as f64);
            self.spawn(instance.clone(), first_poll);
        }
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
            config.instances.iter().map(|i| (i.id, i)).collect();
        let gone: Vec<u64> = self
            .running
            .keys()
            .filter(|id| !wanted.contains_key(id))
            .copied()
            .collect();
        for id in gone {
            if let Some(running) = self.running.remove(&id) {
                running.task.abort();
                // Once it has stopped it cannot publish its record again.
                let _ = running.task.await;
            }
            self.metrics.remove_instance(id);
            self.board.set(id, None);
            changes.removed += 1;
        }
        let now = Instant::now();
        for instance in &config.instances {
            let Some(running) = self.running.get_mut(&instance.id) else {
                self.spawn(instance.clone(), now);
                changes.added += 1;
                continue;
            };
            if same_instance(&running.config, instance) {
                changes.unchanged += 1;
                continue;
            }
            changes.updated += 1;
            // Keep the API handle (and so its pacing) unless how the vendor
            // is reached changed.
            if !same_endpoint(&running.config, instance) {
                running.api = self.client.instance(
                    &instance.api_url,
                    instance.id,
                    instance.api_token.clone(),
                    instance.settings.request_timeout,
                );
            }
            running.config = instance.clone();
            let update = Update {
                spec: spec(instance, running.api.clone()),
                settings: instance.settings.clone(),
                metrics: self.metrics.instance(instance.id, &instance.name),
            };
            running.updates.send_replace(Some(Arc::new(update)));
        }
        changes
    }

    fn spawn(&mut self, config: InstanceConfig, first_poll: Instant) {
        let api = self.client.instance(
            &config.api_url,
            config.id,
            config.api_token.clone(),
            config.settings.request_timeout,
        );
        let policy = match self.board.get(config.id) {
            Some(record) => Policy::restore(
                config.settings.clone(),
                config.id,
                Instant::now(),
                first_poll,
                phase_of(&record),
            ),
            None => Policy::new(config.settings.clone(), config.id, first_poll),
        };
        let metrics = self.metrics.instance(config.id, &config.name);
        let view = Arc::new(InstanceView::new(config.id, &config.name));
        let shared = Shared {
            dispatcher: self.dispatcher.subscribe(),
            view: view.clone(),
            board: self.board.clone(),
            deliveries: self.deliveries.clone(),
            codes: self.metrics.codes.clone(),
        };
        let supervisor = Supervisor::new(spec(&config, api.clone()), policy, metrics, shared);
        let (relinks, relink_rx) = mpsc::channel(1);
        let (updates, update_rx) = watch::channel(None);
        let run = supervisor.run(Inbox {
            relinks: relink_rx,
            updates: update_rx,
        });
        let task = tokio::spawn(reporting_a_panic(
            run,
            self.readiness.clone(),
            config.id,
            config.name.clone(),
        ));
        self.running.insert(
            config.id,
            Running {
                config,
                api,
                relinks,
                updates,
                task,
                view,
            },
        );
    }

    pub fn len(&self) -> usize {
        self.running.len()
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// Asks an instance's supervisor to end its pause or poll now; false if
    /// the id is not in the fleet.
    pub fn relink(&self, id: u64) -> bool {
        match self.running.get(&id) {
            Some(running) => {
                // Full means a relink is already pending: as good.
                let _ = running.relinks.try_send(());
                true
            }
            None => false,
        }
    }

    /// Every instance's status, ordered by id.
    pub fn statuses(&self) -> Vec<InstanceStatus> {
        let mut all: Vec<_> = self.running.values().map(|r| r.view.status()).collect();
        all.sort_by_key(|s| s.id);
        all
    }

    pub fn summary(&self) -> Summary {
        let mut summary = Summary {
            instances: self.running.len(),
            ..Summary::default()
        };
        for running in self.running.values() {
            let status = running.view.status();
            match (status.phase.as_str(), status.state.as_deref()) {
                ("linking", _) => summary.linking += 1,
                ("paused", _) => summary.paused += 1,
                ("restricted", _) => summary.restricted += 1,
                (_, Some("authorized")) => summary.linked += 1,
                _ => summary.other += 1,
            }
        }
        summary
    }

    /// Ids of supervisors that missed their progress deadline.
    pub fn overdue(&self, now: Instant) -> Vec<u64> {
        self.running
            .iter()
            .filter(|(_, r)| r.view.is_overdue(now) || r.task.is_finished())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Ids of supervisors whose task has ended.
    pub fn stopped(&self) -> Vec<u64> {
        self.running
            .iter()
            .filter(|(_, r)| r.task.is_finished())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Stops every supervisor (in-flight vendor calls are abandoned; the
    /// persisted state is whatever they last published).
    pub async fn shutdown(&mut self) {
        let running: Vec<_> = self.running.drain().map(|(_, r)| r).collect();
        for r in &running {
            r.task.abort();
        }
        for r in running {
            let _ = r.task.await;
        }
    }
}

/// Runs a supervisor. A panic is a bug, but it must not pass silently: the
/// instance is no longer watched, so relinkd stops reporting ready and
/// withholds the watchdog (systemd restarts it).
async fn reporting_a_panic(
    run: impl Future<Output = ()>,
    readiness: Readiness,
    id: u64,
    name: String,
) {
    if std::panic::AssertUnwindSafe(run)
        .catch_unwind()
        .await
        .is_err()
    {
        readiness.supervisor_died();
        tracing::error!(
            instance = %name,
            wa_instance = id,
            "the supervisor of this instance panicked; it is no longer watched; \
             relinkd reports not ready until it is restarted"
        );
    }
}

fn spec(config: &InstanceConfig, api: InstanceApi) -> InstanceSpec {
    InstanceSpec {
        instance: InstanceRef {
            id: config.id,
            name: config.name.clone(),
        },
        phone: config.phone,
        channels: config.channels.clone(),
        api,
    }
}

fn same_endpoint(a: &InstanceConfig, b: &InstanceConfig) -> bool {
    a.api_url == b.api_url
        && a.api_token.expose_secret() == b.api_token.expose_secret()
        && a.settings.request_timeout == b.settings.request_timeout
}

fn same_instance(a: &InstanceConfig, b: &InstanceConfig) -> bool {
    same_endpoint(a, b)
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
        reporting_a_panic(async {}, readiness.clone(), 1, "fine".into()).await;
        assert!(
            readiness.is_ready(),
            "a supervisor that ends is not a death"
        );
        let task = tokio::spawn(reporting_a_panic(
            async { panic!("a bug") },
            readiness.clone(),
            2,
            "broken".into(),
        ));
        task.await.expect("the panic is caught and reported");
        assert!(!readiness.is_ready());
        assert_eq!(readiness.dead_supervisors(), 1);
    }
}
