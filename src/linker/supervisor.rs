//! One task per instance: it sleeps until the policy's next moment, performs
//! the policy's actions (vendor calls, deliveries) and feeds the results back.

use std::collections::VecDeque;
use std::sync::Arc;

use secrecy::SecretString;
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;
use tokio::time::{Duration, Instant};

use tokio_util::task::TaskTracker;

use super::policy::{Action, Input, Notice, Phase, Policy};
use super::record::record_of;
use super::view::{InstanceView, progress_slack};
use crate::clock;
use crate::config::InstanceSettings;
use crate::delivery::{About, Dispatcher, InstanceRef};
use crate::greenapi::{ApiError, CodeReply, InstanceApi, InstanceState};
use crate::metrics::{CodeMetrics, CodeOutcome, InstanceMetrics};
use crate::state::{Record, StateBoard};

/// How long a notice (linked, paused, alert) may keep retrying.
const NOTICE_DEADLINE: Duration = Duration::from_secs(15 * 60);

/// What the fleet knows of an instance to supervise it.
#[derive(Clone)]
pub struct InstanceSpec {
    pub instance: InstanceRef,
    pub phone: u64,
    pub channels: Vec<String>,
    pub api: InstanceApi,
}

/// A reload's new view of a changed instance; its episode is kept.
#[derive(Clone)]
pub struct Update {
    pub spec: InstanceSpec,
    pub settings: InstanceSettings,
    pub metrics: Arc<InstanceMetrics>,
}

/// What the fleet tells a supervisor. Updates go by a `watch` channel
/// (the latest wins and none is lost to a full queue); relinks by a small
/// queue (one pending relink is as good as many).
pub struct Inbox {
    pub relinks: mpsc::Receiver<()>,
    pub updates: tokio::sync::watch::Receiver<Option<Arc<Update>>>,
}

/// What a supervisor shares with the rest of the daemon.
#[derive(Clone)]
pub struct Shared {
    /// The fleet's current channels; a reload swaps them for every
    /// supervisor at once, without touching any supervisor.
    pub dispatcher: watch::Receiver<Dispatcher>,
    pub view: Arc<InstanceView>,
    pub board: StateBoard,
    /// Deliveries, so shutdown can let them finish.
    pub deliveries: TaskTracker,
    pub codes: CodeMetrics,
}

pub struct Supervisor {
    spec: InstanceSpec,
    policy: Policy,
    metrics: Arc<InstanceMetrics>,
    shared: Shared,
    published: Option<Record>,
    last_error: Option<String>,
    /// Whether this episode's first delivered code was measured.
    episode_measured: bool,
    /// The code just received, held only until it is handed to delivery.
    code: Option<SecretString>,
    code_delivery: Option<AbortHandle>,
    /// Delivery outcomes, tagged with the code's expiry.
    delivered_tx: mpsc::UnboundedSender<(Instant, bool)>,
    delivered_rx: mpsc::UnboundedReceiver<(Instant, bool)>,
}

impl Supervisor {
    pub fn new(
        spec: InstanceSpec,
        policy: Policy,
        metrics: Arc<InstanceMetrics>,
        shared: Shared,
    ) -> Self {
        let (delivered_tx, delivered_rx) = mpsc::unbounded_channel();
        let published = shared.board.get(spec.instance.id);
        Self {
            spec,
            policy,
            metrics,
            shared,
            published,
            last_error: None,
            episode_measured: false,
            code: None,
            code_delivery: None,
            delivered_tx,
            delivered_rx,
        }
    }

    /// Runs until the fleet drops its senders.
    pub async fn run(mut self, mut inbox: Inbox) {
        self.publish();
        loop {
            let next = self.policy.next_at();
            let slack = progress_slack(self.policy.settings().request_timeout);
            self.shared
                .view
                .expect_progress_by(next.max(Instant::now()) + slack);
            let input = tokio::select! {
                relink = inbox.relinks.recv() => match relink {
                    None => break,
                    Some(()) => {
                        tracing::info!(instance = %self.spec.instance.name, wa_instance = self.spec.instance.id, "relink requested");
                        Input::RelinkRequested
                    }
                },
                changed = inbox.updates.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let update = inbox.updates.borrow_and_update().clone();
                    if let Some(update) = update {
                        let Update { spec, settings, metrics } = (*update).clone();
                        self.spec = spec;
                        self.metrics = metrics;
                        if &settings != self.policy.settings() {
                            self.policy.update_settings(settings, Instant::now());
                        }
                        self.publish();
                    }
                    continue;
                }
                Some((expires_at, delivered)) = self.delivered_rx.recv() => {
                    self.measure_delivery(delivered);
                    Input::CodeDelivered { expires_at, delivered }
                }
                () = tokio::time::sleep_until(next) => Input::Due,
            };
            self.step(input).await;
            self.publish();
        }
        if let Some(delivery) = self.code_delivery.take() {
            delivery.abort();
        }
    }

    fn measure_delivery(&mut self, delivered: bool) {
        self.shared.codes.code_delivered(delivered);
        if let (true, false, Some(started)) =
            (delivered, self.episode_measured, self.episode_started())
        {
            self.shared
                .codes
                .first_code_delivered_after(Instant::now().saturating_duration_since(started));
            self.episode_measured = true;
        }
    }

    fn episode_started(&self) -> Option<Instant> {
        match self.policy.phase() {
            Phase::Linking { started, .. } | Phase::Paused { started, .. } => Some(*started),
            Phase::Watching | Phase::Alerted(_) => None,
        }
    }

    /// Shows the new status and persists the episode if it changed.
    fn publish(&mut self) {
        let code_expiry = match self.policy.phase() {
            Phase::Linking {
                code: Some(code), ..
            } if code.expires_at > Instant::now() => Some(clock::wall(code.expires_at)),
            _ => None,
        };
        self.metrics.set_code_expiry(code_expiry);
        let started = self.episode_started();
        if started.is_none() {
            self.episode_measured = false;
        }
        self.metrics.set_episode(
            started.map(clock::wall),
            matches!(self.policy.phase(), Phase::Paused { .. }),
        );
        self.shared.view.update(
            &self.spec.instance.name,
            &self.policy,
            self.last_error.take(),
        );
        let record = self.policy.persisted().as_ref().and_then(record_of);
        if record != self.published {
            self.shared.board.set(self.spec.instance.id, record.clone());
            self.published = record;
        }
    }

    /// Feeds one input and performs the resulting actions, and theirs.
    async fn step(&mut self, input: Input) {
        let mut queue: VecDeque<Action> = self.policy.handle(input, Instant::now()).into();
        while let Some(action) = queue.pop_front() {
            let slack = progress_slack(self.policy.settings().request_timeout);
            self.shared.view.expect_progress_by(Instant::now() + slack);
            let follow_up = match action {
                Action::PollState => self.poll().await,
                Action::RequestCode => self.request_code().await,
                Action::DeliverCode { expires_at } => {
                    self.deliver_code(expires_at);
                    continue;
                }
                Action::Notify(notice) => {
                    self.notify(notice);
                    continue;
                }
            };
            queue.extend(self.policy.handle(follow_up, Instant::now()));
        }
    }

    async fn poll(&mut self) -> Input {
        let previous = self.policy.observed().cloned();
        match self.spec.api.get_state().await {
            Ok(state) => {
                self.metrics.poll(true);
                self.metrics.set_state(&state);
                if previous.as_ref() != Some(&state) {
                    self.log_state_change(previous.as_ref(), &state);
                }
                Input::Polled(state)
            }
            Err(error) => {
                self.metrics.poll(false);
                self.last_error = Some(format!("getStateInstance: {error}"));
                tracing::warn!(
                    instance = %self.spec.instance.name,
                    wa_instance = self.spec.instance.id,
                    reason = error.outcome(),
                    %error,
                    failures = self.policy.failures() + 1,
                    "state poll failed"
                );
                Input::PollFailed {
                    retry_after: error.retry_after(),
                }
            }
        }
    }

    fn log_state_change(&self, previous: Option<&InstanceState>, state: &InstanceState) {
        let from = previous.map_or("(none)", InstanceState::as_str);
        let (name, id) = (&self.spec.instance.name, self.spec.instance.id);
        match state {
            InstanceState::Other(_) => tracing::warn!(
                instance = %name, wa_instance = id, from, state = %state,
                "instance reports a state relinkd does not know; no codes will be requested"
            ),
            InstanceState::Authorized if previous.is_none() => tracing::debug!(
                instance = %name, wa_instance = id, state = %state, "instance state"
            ),
            _ => {
                tracing::info!(instance = %name, wa_instance = id, from, state = %state, "instance state changed")
            }
        }
    }

    async fn request_code(&mut self) -> Input {
        let result = self.spec.api.get_authorization_code(self.spec.phone).await;
        let (name, id) = (&self.spec.instance.name, self.spec.instance.id);
        match result {
            Ok(CodeReply::Code(code)) => {
                self.metrics.code_requested(CodeOutcome::Received);
                self.code = Some(code);
                Input::CodeIssued
            }
            Ok(CodeReply::NotReceived) => {
                self.metrics.code_requested(CodeOutcome::NotReceived);
                self.last_error = Some("getAuthorizationCode: status false (no code)".into());
                tracing::warn!(instance = %name, wa_instance = id, "vendor answered status:false (no code this time); backing off");
                Input::CodeNotIssued
            }
            Err(error) => {
                self.metrics.code_requested(CodeOutcome::Error);
                self.last_error = Some(format!("getAuthorizationCode: {error}"));
                tracing::warn!(instance = %name, wa_instance = id, reason = error.outcome(), %error, "code request failed; backing off");
                Input::CodeFailed {
                    retry_after: error.retry_after(),
                    // Only an explicit refusal proves no code was made.
                    may_have_issued: !matches!(
                        error,
                        ApiError::Unauthorized { .. }
                            | ApiError::RateLimited { .. }
                            | ApiError::QuotaExceeded
                            | ApiError::Client { .. }
                    ),
                }
            }
        }
    }

    fn deliver_code(&mut self, expires_at: Instant) {
        let Some(code) = self.code.take() else {
            return;
        };
        let expiry = clock::wall(expires_at);
        // Persist the outstanding code before anyone can see it: after a
        // crash, a delivered code must be waited out, not replaced.
        self.publish();
        tracing::info!(
            instance = %self.spec.instance.name,
            wa_instance = self.spec.instance.id,
            expires_at = %clock::utc(expiry),
            channels = ?self.spec.channels,
            "linking code received; delivering"
        );
        let codes_used = match self.policy.phase() {
            Phase::Linking { codes_used, .. } => *codes_used,
            _ => 0,
        };
        let notification = self.about().code(code, codes_used, expiry, expires_at);
        let dispatcher = self.shared.dispatcher.borrow().clone();
        let channels = self.spec.channels.clone();
        let report = self.delivered_tx.clone();
        let task = self.shared.deliveries.spawn(async move {
            let delivered = dispatcher.deliver(Arc::new(notification), &channels).await;
            let _ = report.send((expires_at, delivered));
        });
        self.code_delivery = Some(task.abort_handle());
    }

    fn about(&self) -> About {
        About {
            instance: self.spec.instance.clone(),
            phone: self.spec.phone,
            timezone: self.policy.settings().timezone.clone(),
        }
    }

    fn notify(&mut self, notice: Notice) {
        let about = self.about();
        let instance = &about.instance;
        let deadline = Instant::now() + NOTICE_DEADLINE;
        let notification = match notice {
            Notice::Linked => {
                self.end_code();
                self.metrics.relinked();
                tracing::info!(instance = %instance.name, wa_instance = instance.id, "instance linked again; episode over");
                about.linked(deadline)
            }
            Notice::Paused { until, codes } => {
                self.metrics.episode_paused();
                let until = clock::wall(until);
                tracing::warn!(
                    instance = %instance.name, wa_instance = instance.id, codes,
                    until = %clock::utc(until),
                    "code budget spent; pausing codes"
                );
                about.paused(codes, until, deadline)
            }
            Notice::Alert { state } => {
                self.end_code();
                tracing::warn!(instance = %instance.name, wa_instance = instance.id, state = %state, "instance restricted by WhatsApp; no codes will be requested");
                about.alert(state.as_str(), deadline)
            }
        };
        let dispatcher = self.shared.dispatcher.borrow().clone();
        let channels = self.spec.channels.clone();
        self.shared.deliveries.spawn(async move {
            dispatcher.deliver(Arc::new(notification), &channels).await;
        });
    }

    /// The episode is over: a code still being delivered is stale.
    fn end_code(&mut self) {
        if let Some(delivery) = self.code_delivery.take() {
            delivery.abort();
        }
    }
}
