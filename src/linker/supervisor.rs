//! One task per instance: it sleeps until the policy's next moment, performs
//! the policy's actions (vendor calls, deliveries) and feeds the results back.

use std::collections::VecDeque;
use std::sync::Arc;

use secrecy::SecretString;
use tokio::sync::watch;
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::events::{
    CodeDelivered, CodeDelivering, CodeRequested, HintContradicted, Linked, Paused, PollFailed,
    Polled, Rebooted, RelinkRequested, Restricted, Resumed, StateHinted, WaitingForWindow,
};
use super::mailbox::{Mail, Mailbox};
use super::metrics::{CodeMetrics, InstanceMetrics};
use super::policy::{Action, Input, Notice, Phase, Policy};
use super::record::saved_of;
use super::view::{InstanceView, progress_slack};
use crate::clock;
use crate::config::InstanceConfig;
use crate::delivery::{About, Dispatcher, InstanceRef};
use crate::greenapi::{CodeReply, InstanceApi, InstanceState};
use crate::shutdown::Tasks;
use crate::state::StateBoard;

/// How long a notice (linked, paused, alert) may keep retrying.
const NOTICE_DEADLINE: Duration = Duration::from_secs(15 * 60);

/// What the fleet knows of an instance to supervise it.
#[derive(Clone)]
pub struct InstanceSpec {
    /// The instance as configured: the running config's own, not a copy.
    pub config: Arc<InstanceConfig>,
    pub api: InstanceApi,
}

/// A reload's new view of a changed instance; its episode is kept.
#[derive(Clone)]
pub struct Update {
    pub spec: InstanceSpec,
    pub metrics: Arc<InstanceMetrics>,
}

/// What every supervisor shares with the rest of the daemon: one for the
/// fleet, behind an `Arc`, since each supervisor's bytes count 50,000 times.
pub struct Shared {
    /// Cancelled when relinkd stops. (An instance that leaves the config
    /// has its task aborted: a token of its own would cost every instance
    /// a node in the token tree.)
    pub stop: CancellationToken,
    /// The fleet's current channels; a reload swaps them for every
    /// supervisor at once, without touching any supervisor.
    pub dispatcher: watch::Receiver<Dispatcher>,
    /// Written here, persisted by the state writer.
    pub board: StateBoard,
    /// Where deliveries run: shutdown gives them a grace to finish after
    /// the supervisors have stopped.
    pub deliveries: Tasks,
    pub codes: CodeMetrics,
    /// `relinkd_forwarded_state_mismatch_total`.
    pub forwarded_mismatches: prometheus::IntCounter,
    /// `relinkd_reboot_failures_total`.
    pub reboot_failures: prometheus::IntCounter,
}

pub struct Supervisor {
    /// The instance as configured; replaced by a reload's update.
    spec: InstanceSpec,
    /// The linking decisions; owned here alone.
    policy: Policy,
    /// This instance's series; replaced when a reload renames it.
    metrics: Arc<InstanceMetrics>,
    /// Handles into the rest of the daemon.
    shared: Arc<Shared>,
    /// Written here, read by the admin API and the watchdog.
    view: Arc<InstanceView>,
    /// What the next status update shows as the last error.
    last_error: Option<String>,
    /// Whether this episode's first delivered code was measured.
    episode_measured: bool,
    /// The code just received, held only until it is handed to delivery.
    code: Option<SecretString>,
    /// Cancels the outstanding code's delivery once the episode is over.
    code_delivery: Option<CancellationToken>,
    /// The state a forwarded notification reported, until a poll confirms
    /// or contradicts it.
    hinted: Option<InstanceState>,
    /// What the fleet sends, and where each delivery task reports how it
    /// ended (tagged with the code's expiry); taken in the order `Mailbox`
    /// says.
    mailbox: Arc<Mailbox<Update>>,
}

/// Whether the supervisor goes on after a turn.
enum Turn {
    Continue,
    Stop,
}

impl Supervisor {
    pub fn new(
        spec: InstanceSpec,
        policy: Policy,
        metrics: Arc<InstanceMetrics>,
        shared: Arc<Shared>,
        view: Arc<InstanceView>,
        mailbox: Arc<Mailbox<Update>>,
    ) -> Self {
        Self {
            spec,
            policy,
            metrics,
            shared,
            view,
            last_error: None,
            episode_measured: false,
            code: None,
            code_delivery: None,
            hinted: None,
            mailbox,
        }
    }

    /// Runs until relinkd stops (or the fleet aborts it). A vendor call in
    /// flight then is abandoned; the board keeps what was last published.
    ///
    /// An `async` block, not an `async fn`: an `async fn` keeps its moved-in
    /// `self` twice in its future (rust-lang/rust#62958), and this future
    /// is what every idle instance costs.
    #[allow(clippy::manual_async_fn, reason = "an async fn would store self twice")]
    pub fn run(mut self) -> impl Future<Output = ()> + Send {
        async move {
            self.publish();
            // Cloned once: `turn` borrows all of `self` while it waits on it.
            let stop = self.shared.stop.clone();
            while let Turn::Continue = self.turn(&stop).await {}
        }
    }

    /// Waits for the next input and handles it.
    async fn turn(&mut self, stop: &CancellationToken) -> Turn {
        let next = self.policy.next_at();
        let slack = progress_slack(self.policy.settings().request_timeout);
        self.view
            .expect_progress_by(next.max(Instant::now()) + slack);
        let mail = tokio::select! {
            () = stop.cancelled() => return Turn::Stop,
            mail = self.mailbox.next() => Some(mail),
            () = tokio::time::sleep_until(clock::on_wake_grid(next)) => None,
        };
        let span = TurnSpan::default();
        let input = match mail {
            None => Input::Due,
            Some(mail) => match span.of(&self.spec.config).in_scope(|| self.input_of(mail)) {
                Some(input) => input,
                None => return Turn::Continue,
            },
        };
        // Boxed: a step's vendor call and its futures take kilobytes, and
        // unboxed they would be part of every idle supervisor's task.
        tokio::select! {
            () = stop.cancelled() => return Turn::Stop,
            () = Box::pin(self.step(input, &span)) => {}
        }
        self.publish();
        Turn::Continue
    }

    /// What a message asks of the policy (none for a reload's update,
    /// which is applied here).
    fn input_of(&mut self, mail: Mail<Update>) -> Option<Input> {
        Some(match mail {
            Mail::Relink => {
                RelinkRequested.emit();
                Input::RelinkRequested
            }
            Mail::Hint(hinted) => {
                StateHinted { state: &hinted }.emit();
                self.hinted = Some(hinted);
                Input::StateHinted
            }
            Mail::Update(update) => {
                self.apply(Arc::unwrap_or_clone(update));
                return None;
            }
            Mail::Delivered {
                expires_at,
                delivered,
            } => {
                self.measure_delivery(delivered);
                Input::CodeDelivered {
                    expires_at,
                    delivered,
                }
            }
        })
    }

    fn apply(&mut self, update: Update) {
        let Update { spec, metrics } = update;
        let settings = spec.config.settings.clone();
        self.spec = spec;
        self.metrics = metrics;
        if *settings != *self.policy.settings() {
            self.policy.update_settings(settings, Instant::now());
        }
        self.publish();
    }

    fn measure_delivery(&mut self, delivered: bool) {
        let first_after = match (
            delivered,
            self.episode_measured,
            self.policy.episode_started(),
        ) {
            (true, false, Some(started)) => {
                self.episode_measured = true;
                Some(Instant::now().saturating_duration_since(started))
            }
            _ => None,
        };
        CodeDelivered {
            delivered,
            first_after,
        }
        .emit(&self.shared.codes);
    }

    /// Shows the new status and persists the episode and reboot times if
    /// they changed.
    fn publish(&mut self) {
        let code_expiry = match self.policy.phase() {
            Phase::Linking {
                code: Some(code), ..
            } if code.expires_at > Instant::now() => Some(clock::wall(code.expires_at)),
            _ => None,
        };
        self.metrics.set_code_expiry(code_expiry);
        let started = self.policy.episode_started();
        if started.is_none() {
            self.episode_measured = false;
        }
        self.metrics.set_episode(
            started.map(clock::wall),
            matches!(self.policy.phase(), Phase::Paused { .. }),
            matches!(self.policy.phase(), Phase::Waiting { .. }),
        );
        self.view
            .update(&self.spec.config.name, &self.policy, self.last_error.take());
        // The board tells a change from a repeat (it holds the entry
        // already; a copy here cost every supervisor 48 bytes).
        self.shared
            .board
            .set(self.spec.config.id, saved_of(&self.policy));
    }

    /// Feeds one input and performs the resulting actions, and theirs. A
    /// poll runs outside the turn's span, entered only by what it logs; any
    /// other action runs inside it.
    async fn step(&mut self, input: Input, span: &TurnSpan) {
        let mut queue: VecDeque<Action> = self.policy.handle(input, Instant::now()).into();
        while let Some(action) = queue.pop_front() {
            let slack = progress_slack(self.policy.settings().request_timeout);
            self.view.expect_progress_by(Instant::now() + slack);
            let follow_up = match action {
                Action::PollState => self.poll(span).await,
                Action::RequestCode => {
                    let span = span.of(&self.spec.config).clone();
                    self.request_code().instrument(span).await
                }
                Action::DeliverCode { expires_at } => {
                    // Its delivery task runs in the span too.
                    span.of(&self.spec.config)
                        .in_scope(|| self.deliver_code(expires_at));
                    continue;
                }
                Action::Notify(notice) => {
                    span.of(&self.spec.config).in_scope(|| self.notify(notice));
                    continue;
                }
                Action::Reboot => {
                    let span = span.of(&self.spec.config).clone();
                    self.reboot().instrument(span).await
                }
            };
            queue.extend(self.policy.handle(follow_up, Instant::now()));
        }
    }

    /// One `reboot` call; its outcome is logged and counted, and told to
    /// the policy (which announces only a confirmed one).
    async fn reboot(&mut self) -> Input {
        let result = self.spec.api.reboot().await;
        if let Some(error) =
            (Rebooted { result: &result }).emit(&self.metrics, &self.shared.reboot_failures)
        {
            self.last_error = Some(error);
        }
        match result {
            Ok(true) => Input::Rebooted,
            Ok(false) => Input::RebootFailed {
                retry_after: None,
                may_have_rebooted: false,
            },
            Err(error) => Input::RebootFailed {
                retry_after: error.retry_after(),
                may_have_rebooted: !error.is_refusal(),
            },
        }
    }

    async fn poll(&mut self, span: &TurnSpan) -> Input {
        match self.spec.api.get_state().await {
            Ok(state) => {
                let polled = Polled {
                    previous: self.policy.observed(),
                    state: &state,
                    failed_before: self.policy.poll_failures(),
                };
                if polled.logs() {
                    span.of(&self.spec.config)
                        .in_scope(|| polled.emit(&self.metrics));
                } else {
                    polled.emit(&self.metrics);
                }
                if let Some(hinted) = self.hinted.take()
                    && hinted != state
                {
                    let contradicted = HintContradicted {
                        hinted: &hinted,
                        polled: &state,
                    };
                    span.of(&self.spec.config)
                        .in_scope(|| contradicted.emit(&self.shared.forwarded_mismatches));
                }
                Input::Polled(state)
            }
            Err(error) => {
                let failed = PollFailed {
                    error: &error,
                    failures: self.policy.failures() + 1,
                };
                let error_text = span
                    .of(&self.spec.config)
                    .in_scope(|| failed.emit(&self.metrics));
                self.last_error = Some(error_text);
                Input::PollFailed {
                    retry_after: error.retry_after(),
                }
            }
        }
    }

    async fn request_code(&mut self) -> Input {
        let (event, input) = match self
            .spec
            .api
            .get_authorization_code(self.spec.config.phone)
            .await
        {
            Ok(CodeReply::Code(code)) => {
                self.code = Some(code);
                (
                    CodeRequested::Received.emit(&self.metrics),
                    Input::CodeIssued,
                )
            }
            Ok(CodeReply::NotReceived) => (
                CodeRequested::NotReceived.emit(&self.metrics),
                Input::CodeNotIssued,
            ),
            Err(error) => (
                CodeRequested::Failed(&error).emit(&self.metrics),
                Input::CodeFailed {
                    retry_after: error.retry_after(),
                    // Only an explicit refusal proves no code was made.
                    may_have_issued: !error.is_refusal(),
                },
            ),
        };
        if event.is_some() {
            self.last_error = event;
        }
        input
    }

    fn deliver_code(&mut self, expires_at: Instant) {
        let Some(code) = self.code.take() else {
            return;
        };
        let expiry = clock::wall(expires_at);
        // Persist the outstanding code before anyone can see it: after a
        // crash, a delivered code must be waited out, not replaced.
        self.publish();
        CodeDelivering {
            expires_at: expiry,
            channels: &self.spec.config.channels,
        }
        .emit();
        let codes_used = match self.policy.phase() {
            Phase::Linking { codes_used, .. } => *codes_used,
            _ => 0,
        };
        let notification = self.about().code(code, codes_used, expiry, expires_at);
        let dispatcher = self.shared.dispatcher.borrow().clone();
        let config = self.spec.config.clone();
        let report = self.mailbox.clone();
        let observer = self.view.clone();
        let token = self.shared.deliveries.child_token();
        self.shared.deliveries.spawn_until(
            token.clone(),
            async move {
                let delivered = dispatcher
                    .deliver(Arc::new(notification), &config.channels, observer)
                    .await;
                report.delivered(expires_at, delivered);
            }
            .in_current_span(),
        );
        self.code_delivery = Some(token);
    }

    fn about(&self) -> About {
        About {
            instance: InstanceRef {
                id: self.spec.config.id,
                name: self.spec.config.name.clone(),
            },
            phone: self.spec.config.phone,
            timezone: self.policy.settings().timezone.clone(),
        }
    }

    fn notify(&mut self, notice: Notice) {
        let about = self.about();
        let deadline = Instant::now() + NOTICE_DEADLINE;
        let notification = match notice {
            Notice::Linked => {
                self.end_code();
                Linked.emit(&self.metrics);
                about.linked(deadline)
            }
            Notice::Paused { until, codes } => {
                let until = clock::wall(until);
                Paused { codes, until }.emit(&self.metrics);
                about.paused(codes, until, deadline)
            }
            Notice::WaitingForWindow { opens } => {
                let opens = opens.map(clock::wall);
                let calendar = &self.policy.settings().linking_windows;
                let zone = calendar
                    .first_to_open(clock::now())
                    .map(|w| w.location().to_owned());
                WaitingForWindow { opens }.emit(&self.metrics);
                about.waiting_for_window(opens, zone, deadline)
            }
            Notice::Resumed => {
                Resumed.emit();
                about.resumed(deadline)
            }
            Notice::Rebooting { stuck_for } => about.rebooting(stuck_for, deadline),
            Notice::Alert { state } => {
                self.end_code();
                Restricted { state: &state }.emit();
                about.alert(state.as_str(), deadline)
            }
        };
        let dispatcher = self.shared.dispatcher.borrow().clone();
        let config = self.spec.config.clone();
        let observer = self.view.clone();
        self.shared.deliveries.spawn_until(
            self.shared.deliveries.child_token(),
            async move {
                dispatcher
                    .deliver(Arc::new(notification), &config.channels, observer)
                    .await;
            }
            .in_current_span(),
        );
    }

    /// The episode is over: a code still being delivered is stale.
    fn end_code(&mut self) {
        if let Some(delivery) = self.code_delivery.take() {
            delivery.cancel();
        }
    }
}

/// The span every line about an instance is logged in, one per turn and
/// made when first needed: a span lives in the subscriber's registry (about
/// 400 bytes with its fields), so it is not kept while the instance is idle;
/// and making one, its fields formatted, was about 5 % of a routine poll's
/// CPU, which logs nothing.
#[derive(Default)]
struct TurnSpan(std::sync::OnceLock<tracing::Span>);

impl TurnSpan {
    fn of(&self, instance: &InstanceConfig) -> &tracing::Span {
        self.0.get_or_init(|| {
            tracing::info_span!("supervisor", wa_instance = instance.id, instance = %instance.name)
        })
    }
}
