//! `[[digest]]`s: a summary of the fleet on a calendar (a morning report,
//! a heartbeat), one message per channel, never a code.
//!
//! tokio-cron-scheduler fires them. Each digest is armed as a one-shot job
//! at its next time, computed by [`CronSchedule`] in the digest's zone, and
//! armed again after it fires. No repeating job is left to the scheduler:
//! its zoned cron jobs keep the UTC offset of the day they were created (an
//! hour off after a DST change), and the next time is always computed from
//! now, so a tick missed under load is sent late once, never stalls the
//! schedule and never sends a backlog. Its one-shot jobs count whole seconds
//! from the second they are made (up to a second early): the job is armed
//! half a second past the due second, and a job that still fires early is
//! armed again rather than sent.
//!
//! A reload reconciles: an unchanged schedule keeps its armed job (it is not
//! fired again), a changed one is armed anew, new channels or `send` apply
//! to the next digest.

mod compose;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use prometheus::{IntCounterVec, Opts, Registry};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_cron_scheduler::{Job, JobScheduler};
use uuid::Uuid;

pub use compose::Totals;
use compose::{anything_unlinked, compose};

use crate::clock;
use crate::config::{DigestConfig, DigestSend};
use crate::delivery::{Dispatcher, Notification, Observer, Outcome, SendError};
use crate::linker::FleetView;
use crate::shutdown::Tasks;

/// No attempt to deliver a digest starts later than this after it is due.
const DEADLINE: Duration = Duration::from_secs(15 * 60);

/// Reads the fleet-wide totals now (the daemon builds it from the
/// components' metrics).
pub type Tally = Arc<dyn Fn() -> Totals + Send + Sync>;

/// What the digest task needs from the daemon.
pub struct DigestDeps {
    pub view: FleetView,
    /// The fleet's current channels (a reload swaps them).
    pub dispatcher: watch::Receiver<Dispatcher>,
    pub tally: Tally,
    pub metrics: DigestMetrics,
    /// Where digests are delivered (shutdown gives them a grace).
    pub deliveries: Tasks,
}

enum Command {
    /// A reload's digests.
    Reconcile(Vec<DigestConfig>),
    /// A digest to one channel now (`relinkd test-channel NAME --digest`).
    SendNow {
        channel: String,
        reply: oneshot::Sender<Result<(), NotSent>>,
    },
}

/// Sends the digest task its commands. Cheap to clone.
#[derive(Clone)]
pub struct Digests(mpsc::Sender<Command>);

impl Digests {
    pub async fn reconcile(&self, configs: Vec<DigestConfig>) {
        let _ = self.0.send(Command::Reconcile(configs)).await;
    }

    /// Sends a digest to `channel` now; the reason if it was not delivered
    /// (`None`: relinkd is shutting down).
    pub async fn send_now(&self, channel: &str) -> Option<Result<(), NotSent>> {
        let (reply, outcome) = oneshot::channel();
        let channel = channel.to_owned();
        self.0
            .send(Command::SendNow { channel, reply })
            .await
            .ok()?;
        outcome.await.ok()
    }
}

/// Why a digest asked for now was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotSent {
    #[error("no channel named {0:?}")]
    UnknownChannel(String),
    /// The channel's last attempt's error, or why it skipped the digest.
    #[error("{0}")]
    Failed(String),
}

/// `relinkd_digests_total{digest, outcome}`: `sent` (at least one channel
/// delivered it), `undelivered`, `skipped` (`send = "when_unlinked"` and
/// nothing was unlinked).
#[derive(Clone)]
pub struct DigestMetrics {
    outcomes: IntCounterVec,
}

impl DigestMetrics {
    pub fn register(registry: &Registry) -> Self {
        let outcomes = IntCounterVec::new(
            Opts::new(
                "relinkd_digests_total",
                "Digests due, by digest and outcome (sent, undelivered, skipped).",
            ),
            &["digest", "outcome"],
        )
        .expect("valid metric");
        crate::metrics::register(registry, outcomes.clone());
        Self { outcomes }
    }

    fn count(&self, digest: &str, outcome: &str) {
        self.outcomes.with_label_values(&[digest, outcome]).inc();
    }

    fn declare(&self, digest: &str) {
        for outcome in ["sent", "undelivered", "skipped"] {
            self.outcomes.with_label_values(&[digest, outcome]);
        }
    }
}

/// Starts the digest task for `configs` under `tasks`; its handle.
pub fn start(configs: Vec<DigestConfig>, deps: DigestDeps, tasks: &Tasks) -> Digests {
    let (tx, rx) = mpsc::channel(8);
    let stop = tasks.clone();
    tasks.spawn(async move {
        let mut task = DigestTask::new(deps).await;
        task.reconcile(configs).await;
        task.serve(rx, stop).await;
    });
    Digests(tx)
}

/// One digest as the task keeps it.
struct Armed {
    config: DigestConfig,
    /// The one-shot job waiting for the next time, if any is scheduled.
    job: Option<Uuid>,
    /// Bumped at each arming: a job that fires after being replaced is
    /// recognised and ignored.
    generation: u64,
    /// When the armed job is due (a job firing before it is armed again).
    due_at: Option<SystemTime>,
    /// The previous digest sent (or the start), and the totals then.
    since: (SystemTime, Totals),
}

struct DigestTask {
    deps: DigestDeps,
    /// Created with the first digest: no scheduler ticks without one.
    scheduler: Option<JobScheduler>,
    armed: BTreeMap<String, Armed>,
    due_tx: mpsc::UnboundedSender<(String, u64)>,
    due_rx: mpsc::UnboundedReceiver<(String, u64)>,
    /// When relinkd started and the totals then (for a digest sent now).
    started: (SystemTime, Totals),
}

impl DigestTask {
    async fn new(deps: DigestDeps) -> Self {
        let (due_tx, due_rx) = mpsc::unbounded_channel();
        let started = (clock::now(), (deps.tally)());
        Self {
            deps,
            scheduler: None,
            armed: BTreeMap::new(),
            due_tx,
            due_rx,
            started,
        }
    }

    async fn serve(&mut self, mut commands: mpsc::Receiver<Command>, stop: Tasks) {
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                Some(command) = commands.recv() => match command {
                    Command::Reconcile(configs) => self.reconcile(configs).await,
                    Command::SendNow { channel, reply } => {
                        let _ = reply.send(self.send_now(&channel).await);
                    }
                },
                Some((name, generation)) = self.due_rx.recv() => {
                    self.fire(&name, generation).await;
                }
            }
        }
        if let Some(mut scheduler) = self.scheduler.take() {
            let _ = scheduler.shutdown().await;
        }
    }

    async fn reconcile(&mut self, configs: Vec<DigestConfig>) {
        let names: Vec<String> = configs.iter().map(|c| c.name.clone()).collect();
        let gone: Vec<String> = self
            .armed
            .keys()
            .filter(|n| !names.contains(n))
            .cloned()
            .collect();
        for name in gone {
            if let Some(armed) = self.armed.remove(&name) {
                self.disarm(armed.job).await;
            }
        }
        for config in configs {
            self.deps.metrics.declare(&config.name);
            let name = config.name.clone();
            match self.armed.get_mut(&name) {
                // The same schedule: its job stays armed, not fired again.
                Some(armed) if armed.config.schedule == config.schedule => armed.config = config,
                Some(armed) => {
                    let job = armed.job.take();
                    armed.config = config;
                    armed.due_at = None;
                    self.disarm(job).await;
                    self.arm(&name).await;
                }
                None => {
                    let since = (clock::now(), (self.deps.tally)());
                    self.armed.insert(
                        name.clone(),
                        Armed {
                            config,
                            job: None,
                            generation: 0,
                            due_at: None,
                            since,
                        },
                    );
                    self.arm(&name).await;
                }
            }
        }
    }

    /// Arms `name`'s next time as a one-shot job.
    async fn arm(&mut self, name: &str) {
        let Some(scheduler) = self.scheduler().await else {
            return;
        };
        let Some(armed) = self.armed.get_mut(name) else {
            return;
        };
        armed.generation += 1;
        let now = SystemTime::now();
        let next = match armed.due_at.filter(|due| *due > now) {
            // A job that fired early: the same time again.
            Some(due) => due,
            None => match armed.config.schedule.next_after(now) {
                Some(next) => next,
                None => {
                    tracing::warn!(digest = name, "the digest's schedule has no next time");
                    return;
                }
            },
        };
        armed.due_at = Some(next);
        // The scheduler takes the whole seconds of the delay and adds them
        // to the current second: half a second more lands on the due second
        // (or the next), never before it.
        let whole = clock::unix_seconds;
        let seconds = whole(next).saturating_sub(whole(now));
        let at =
            std::time::Instant::now() + Duration::from_secs(seconds) + Duration::from_millis(500);
        let (tx, due) = (self.due_tx.clone(), (name.to_owned(), armed.generation));
        let job = Job::new_one_shot_at_instant_async(at, move |_, _| {
            let (tx, due) = (tx.clone(), due.clone());
            Box::pin(async move {
                let _ = tx.send(due);
            })
        });
        match job {
            Ok(job) => match scheduler.add(job).await {
                Ok(id) => {
                    armed.job = Some(id);
                    tracing::debug!(digest = name, next = %clock::utc(next), "digest armed");
                }
                Err(e) => tracing::error!(digest = name, error = %e, "digest not armed"),
            },
            Err(e) => tracing::error!(digest = name, error = %e, "digest not armed"),
        }
    }

    async fn disarm(&mut self, job: Option<Uuid>) {
        if let (Some(job), Some(scheduler)) = (job, self.scheduler.as_ref()) {
            let _ = scheduler.remove(&job).await;
        }
    }

    /// The scheduler, started on first use.
    async fn scheduler(&mut self) -> Option<JobScheduler> {
        if self.scheduler.is_none() {
            let started = async {
                let scheduler = JobScheduler::new().await?;
                scheduler.start().await?;
                Ok::<_, tokio_cron_scheduler::JobSchedulerError>(scheduler)
            };
            match started.await {
                Ok(scheduler) => self.scheduler = Some(scheduler),
                Err(e) => tracing::error!(error = %e, "the digest scheduler did not start"),
            }
        }
        self.scheduler.clone()
    }

    /// `name` is due: compose, send (unless quiet and `when_unlinked`), and
    /// arm the next time.
    async fn fire(&mut self, name: &str, generation: u64) {
        let Some(armed) = self.armed.get_mut(name) else {
            return;
        };
        if armed.generation != generation {
            return;
        }
        armed.job = None;
        if armed.due_at.is_some_and(|due| SystemTime::now() < due) {
            self.arm(name).await;
            return;
        }
        armed.due_at = None;
        let now = (clock::now(), (self.deps.tally)());
        let digest = compose(
            name,
            &self.deps.view.statuses(),
            (armed.since.0, now.0),
            (armed.since.1, now.1),
        );
        if armed.config.send == DigestSend::WhenUnlinked && !anything_unlinked(&digest) {
            self.deps.metrics.count(name, "skipped");
            tracing::info!(digest = name, "digest skipped: nothing is unlinked");
        } else {
            armed.since = now;
            let channels = armed.config.channels.clone();
            let dispatcher = self.deps.dispatcher.borrow().clone();
            let metrics = self.deps.metrics.clone();
            let name = name.to_owned();
            let notification = Arc::new(Notification::digest(
                digest,
                tokio::time::Instant::now() + DEADLINE,
            ));
            self.deps.deliveries.spawn(async move {
                let delivered = dispatcher
                    .deliver(notification, &channels, Arc::new(Unobserved))
                    .await;
                metrics.count(&name, if delivered { "sent" } else { "undelivered" });
                tracing::info!(digest = %name, delivered, "digest due");
            });
        }
        self.arm(name).await;
    }

    /// A digest of the fleet since relinkd started, to `channel` now.
    async fn send_now(&self, channel: &str) -> Result<(), NotSent> {
        let now = (clock::now(), (self.deps.tally)());
        let digest = compose(
            "test",
            &self.deps.view.statuses(),
            (self.started.0, now.0),
            (self.started.1, now.1),
        );
        let dispatcher = self.deps.dispatcher.borrow().clone();
        if !dispatcher.names().any(|n| n == channel) {
            return Err(NotSent::UnknownChannel(channel.to_owned()));
        }
        let notification = Arc::new(Notification::digest(
            digest,
            tokio::time::Instant::now() + Duration::from_secs(30),
        ));
        let outcomes = dispatcher
            .deliver_each(notification, &[channel.to_owned()], Arc::new(Unobserved))
            .await;
        match outcomes.into_iter().next().map(|(_, outcome)| outcome) {
            Some(Outcome::Delivered) => Ok(()),
            Some(Outcome::Failed(failure)) => Err(NotSent::Failed(failure.error.to_string())),
            Some(Outcome::Skipped(reason)) => Err(NotSent::Failed(format!("skipped: {reason}"))),
            None => Err(NotSent::UnknownChannel(channel.to_owned())),
        }
    }
}

/// Digests are about no instance: no status records their attempts (the
/// delivery lines and metrics still do).
struct Unobserved;

impl Observer for Unobserved {
    fn attempt_failed(&self, _: &str, _: u32, _: &SendError, _: Option<Duration>) {}
    fn delivered(&self, _: &str, _: u32) {}
}
