//! Every metric relinkd exports, defined in one place, on a registry that is
//! passed around (never a global) so tests can read values.
//!
//! Fleet-wide metrics live in a `prometheus::Registry`. Per-instance metrics
//! (one series set per WhatsApp instance, 50,000 instances on one daemon) are
//! plain atomics owned by each supervisor and rendered straight to text at
//! scrape time: no lock is taken per poll, and no per-series objects are kept.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    Opts, Registry, TextEncoder,
};

use crate::delivery::Reason;
use crate::greenapi::{ApiError, InstanceState, Method};

const API_BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0];
const DELIVERY_BUCKETS: &[f64] = &[0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 150.0];

/// The exported metrics. Cheap to clone (everything inside is shared).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub api: ApiMetrics,
    pub deliveries: DeliveryMetrics,
    pub codes: CodeMetrics,
    pub config_last_reload_successful: IntGauge,
    pub config_last_reload_success_timestamp_seconds: Gauge,
    instances: Arc<RwLock<BTreeMap<u64, Arc<InstanceMetrics>>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();

        let build_info = IntGauge::with_opts(
            Opts::new(
                "relinkd_build_info",
                "relinkd's version and revision; always 1.",
            )
            .const_label("version", env!("CARGO_PKG_VERSION"))
            .const_label("revision", env!("RELINKD_REVISION")),
        )
        .expect("valid metric");
        build_info.set(1);
        register(&registry, build_info);

        let config_last_reload_successful = IntGauge::new(
            "relinkd_config_last_reload_successful",
            "1 if the last load or reload of the config succeeded, else 0.",
        )
        .expect("valid metric");
        register(&registry, config_last_reload_successful.clone());
        let config_last_reload_success_timestamp_seconds = Gauge::new(
            "relinkd_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful load or reload of the config.",
        )
        .expect("valid metric");
        register(
            &registry,
            config_last_reload_success_timestamp_seconds.clone(),
        );

        #[cfg(target_os = "linux")]
        {
            // process_* metrics, named as every Prometheus client names them.
            let process = prometheus::process_collector::ProcessCollector::for_self();
            let _ = prometheus::Registry::register(&registry, Box::new(process));
        }

        let api = ApiMetrics::new(&registry);
        let deliveries = DeliveryMetrics::new(&registry);
        let codes = CodeMetrics::new(&registry);
        Self {
            registry,
            api,
            deliveries,
            codes,
            config_last_reload_successful,
            config_last_reload_success_timestamp_seconds,
            instances: Arc::default(),
        }
    }

    /// The registry components register their own metrics on.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Registers an instance's series (all at 0) and returns its handle.
    /// Registering an id again returns the existing handle, so counters
    /// survive a supervisor restart on reload.
    pub fn instance(&self, id: u64, name: &str) -> Arc<InstanceMetrics> {
        let mut table = self.instances.write().expect("metrics lock poisoned");
        let entry = table
            .entry(id)
            .or_insert_with(|| Arc::new(InstanceMetrics::new(name)));
        if entry.name() != name {
            // Renamed in the config: a new handle for the info metric, with
            // the counters and the state carried over.
            *entry = Arc::new(entry.renamed(name));
        }
        entry.clone()
    }

    pub fn remove_instance(&self, id: u64) {
        self.instances
            .write()
            .expect("metrics lock poisoned")
            .remove(&id);
    }

    pub fn reload_succeeded(&self) {
        self.config_last_reload_successful.set(1);
        self.config_last_reload_success_timestamp_seconds
            .set(unix_now_seconds());
    }

    pub fn reload_failed(&self) {
        self.config_last_reload_successful.set(0);
    }

    /// The Prometheus text exposition of everything.
    pub fn render(&self) -> String {
        let mut buffer = Vec::with_capacity(16 * 1024);
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("encoding to a Vec cannot fail");
        let mut out = String::from_utf8(buffer).expect("the text format is UTF-8");
        let table = self.instances.read().expect("metrics lock poisoned");
        render_instances(&table, &mut out);
        out
    }
}

fn register<C: prometheus::core::Collector + 'static>(registry: &Registry, collector: C) {
    registry
        .register(Box::new(collector))
        .expect("each metric is registered once");
}

pub fn unix_now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `relinkd_api_requests_total{method,outcome}` and
/// `relinkd_api_request_duration_seconds{method}`, with every series resolved
/// up front so a request touches only atomics.
#[derive(Clone)]
pub struct ApiMetrics {
    requests: Arc<Vec<IntCounter>>,
    durations: Arc<Vec<Histogram>>,
}

impl ApiMetrics {
    fn new(registry: &Registry) -> Self {
        let requests = IntCounterVec::new(
            Opts::new(
                "relinkd_api_requests_total",
                "Requests to GREEN-API by method and outcome (success or the kind of error).",
            ),
            &["method", "outcome"],
        )
        .expect("valid metric");
        let durations = HistogramVec::new(
            HistogramOpts::new(
                "relinkd_api_request_duration_seconds",
                "Time from sending a request to GREEN-API to its answer or error.",
            )
            .buckets(API_BUCKETS.to_vec()),
            &["method"],
        )
        .expect("valid metric");
        let mut counters = Vec::new();
        let mut histograms = Vec::new();
        for method in Method::ALL {
            for outcome in ApiError::OUTCOMES {
                counters.push(requests.with_label_values(&[method.name(), outcome]));
            }
            histograms.push(durations.with_label_values(&[method.name()]));
        }
        register(registry, requests);
        register(registry, durations);
        Self {
            requests: Arc::new(counters),
            durations: Arc::new(histograms),
        }
    }

    pub fn observe(&self, method: Method, elapsed: Duration, error: Option<&ApiError>) {
        let outcome = error.map_or(0, ApiError::outcome_index);
        self.requests[method.index() * ApiError::OUTCOMES.len() + outcome].inc();
        self.durations[method.index()].observe(elapsed.as_secs_f64());
    }

    /// For tests and status: requests of `method` that ended in `outcome`.
    pub fn count(&self, method: Method, outcome: &str) -> u64 {
        ApiError::OUTCOMES
            .iter()
            .position(|o| *o == outcome)
            .map_or(0, |i| {
                self.requests[method.index() * ApiError::OUTCOMES.len() + i].get()
            })
    }
}

/// `relinkd_deliveries_total{channel,outcome,reason}` and
/// `relinkd_delivery_duration_seconds{channel}`.
#[derive(Clone)]
pub struct DeliveryMetrics {
    deliveries: IntCounterVec,
    durations: HistogramVec,
    skips: IntCounterVec,
}

/// Why a channel was skipped for a message (`relinkd_delivery_skips_total`).
pub const SKIP_REASONS: [&str; 2] = ["own_instance", "via_not_authorized"];

impl DeliveryMetrics {
    fn new(registry: &Registry) -> Self {
        let deliveries = IntCounterVec::new(
            Opts::new(
                "relinkd_deliveries_total",
                "Notifications (a whole retry loop each) per channel: outcome success or \
                 failure, and the reason of a failure (none on success).",
            ),
            &["channel", "outcome", "reason"],
        )
        .expect("valid metric");
        let durations = HistogramVec::new(
            HistogramOpts::new(
                "relinkd_delivery_duration_seconds",
                "Time from the start of a notification to its success or final failure.",
            )
            .buckets(DELIVERY_BUCKETS.to_vec()),
            &["channel"],
        )
        .expect("valid metric");
        let skips = IntCounterVec::new(
            Opts::new(
                "relinkd_delivery_skips_total",
                "Messages a channel did not take: a WhatsApp channel never sends an instance's \
                 own messages through it (own_instance), nor through an instance that is not \
                 authorized (via_not_authorized); the other channels still get them.",
            ),
            &["channel", "reason"],
        )
        .expect("valid metric");
        register(registry, deliveries.clone());
        register(registry, durations.clone());
        register(registry, skips.clone());
        Self {
            deliveries,
            durations,
            skips,
        }
    }

    pub fn skipped(&self, channel: &str, reason: &str) {
        self.skips.with_label_values(&[channel, reason]).inc();
    }

    pub fn skips(&self, channel: &str, reason: &str) -> u64 {
        self.skips
            .get_metric_with_label_values(&[channel, reason])
            .map_or(0, |c| c.get())
    }

    /// Creates a channel's series at 0 so dashboards and alerts see them.
    pub fn register_channel(&self, channel: &str) {
        self.deliveries
            .with_label_values(&[channel, "success", "none"]);
        for reason in Reason::ALL {
            self.deliveries
                .with_label_values(&[channel, "failure", reason.as_str()]);
        }
        self.durations.with_label_values(&[channel]);
    }

    /// Creates a WhatsApp channel's skip series at 0.
    pub fn register_skips(&self, channel: &str) {
        for reason in SKIP_REASONS {
            self.skips.with_label_values(&[channel, reason]);
        }
    }

    pub fn remove_channel(&self, channel: &str) {
        let _ = self
            .deliveries
            .remove_label_values(&[channel, "success", "none"]);
        for reason in Reason::ALL {
            let _ = self
                .deliveries
                .remove_label_values(&[channel, "failure", reason.as_str()]);
        }
        let _ = self.durations.remove_label_values(&[channel]);
        for reason in SKIP_REASONS {
            let _ = self.skips.remove_label_values(&[channel, reason]);
        }
    }

    pub fn record(&self, channel: &str, result: Result<(), Reason>, elapsed: Duration) {
        let (outcome, reason) = match result {
            Ok(()) => ("success", "none"),
            Err(reason) => ("failure", reason.as_str()),
        };
        self.deliveries
            .with_label_values(&[channel, outcome, reason])
            .inc();
        self.durations
            .with_label_values(&[channel])
            .observe(elapsed.as_secs_f64());
    }

    /// For tests: notifications on `channel` with this outcome and reason.
    pub fn count(&self, channel: &str, outcome: &str, reason: &str) -> u64 {
        self.deliveries
            .get_metric_with_label_values(&[channel, outcome, reason])
            .map_or(0, |c| c.get())
    }
}

const LATENCY_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0];

/// Fleet-wide code outcomes: `relinkd_codes_delivered_total{outcome}` and
/// `relinkd_code_delivery_latency_seconds`.
#[derive(Clone)]
pub struct CodeMetrics {
    delivered: IntCounter,
    undelivered: IntCounter,
    latency: Histogram,
}

impl CodeMetrics {
    fn new(registry: &Registry) -> Self {
        let outcomes = IntCounterVec::new(
            Opts::new(
                "relinkd_codes_delivered_total",
                "Codes received from the vendor, by whether at least one channel delivered \
                 them before expiry (delivered) or none did (undelivered).",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let latency = Histogram::with_opts(
            HistogramOpts::new(
                "relinkd_code_delivery_latency_seconds",
                "Time from the first notAuthorized of an episode to its first delivered code.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )
        .expect("valid metric");
        let delivered = outcomes.with_label_values(&["delivered"]);
        let undelivered = outcomes.with_label_values(&["undelivered"]);
        register(registry, outcomes);
        register(registry, latency.clone());
        Self {
            delivered,
            undelivered,
            latency,
        }
    }

    pub fn code_delivered(&self, delivered: bool) {
        if delivered {
            self.delivered.inc();
        } else {
            self.undelivered.inc();
        }
    }

    pub fn first_code_delivered_after(&self, since_unlinked: Duration) {
        self.latency.observe(since_unlinked.as_secs_f64());
    }

    pub fn delivered(&self, delivered: bool) -> u64 {
        if delivered {
            self.delivered.get()
        } else {
            self.undelivered.get()
        }
    }
}

/// Outcomes of `relinkd_state_polls_total`.
pub const POLL_OUTCOMES: [&str; 2] = ["success", "failure"];

/// Outcomes of `relinkd_codes_requested_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeOutcome {
    Received,
    NotReceived,
    Error,
}

impl CodeOutcome {
    pub const ALL: [CodeOutcome; 3] = [Self::Received, Self::NotReceived, Self::Error];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::NotReceived => "not_received",
            Self::Error => "error",
        }
    }
}

const NO_STATE: usize = usize::MAX;

/// One instance's series, updated by its supervisor without locks.
pub struct InstanceMetrics {
    name: String,
    state: AtomicUsize,
    polls: [AtomicU64; 2],
    codes: [AtomicU64; 3],
    code_expiry_unix: AtomicU64,
    relinks: AtomicU64,
    episodes_paused: AtomicU64,
    paused: AtomicU64,
    unlinked_since_unix: AtomicU64,
    last_successful_poll_unix: AtomicU64,
}

impl InstanceMetrics {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            state: AtomicUsize::new(NO_STATE),
            polls: Default::default(),
            codes: Default::default(),
            code_expiry_unix: AtomicU64::new(0),
            relinks: AtomicU64::new(0),
            episodes_paused: AtomicU64::new(0),
            paused: AtomicU64::new(0),
            unlinked_since_unix: AtomicU64::new(0),
            last_successful_poll_unix: AtomicU64::new(0),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A copy of these values under another name.
    fn renamed(&self, name: &str) -> Self {
        let copy = |a: &AtomicU64| AtomicU64::new(a.load(Ordering::Relaxed));
        Self {
            name: name.to_owned(),
            state: AtomicUsize::new(self.state.load(Ordering::Relaxed)),
            polls: [copy(&self.polls[0]), copy(&self.polls[1])],
            codes: [
                copy(&self.codes[0]),
                copy(&self.codes[1]),
                copy(&self.codes[2]),
            ],
            code_expiry_unix: copy(&self.code_expiry_unix),
            relinks: copy(&self.relinks),
            episodes_paused: copy(&self.episodes_paused),
            paused: copy(&self.paused),
            unlinked_since_unix: copy(&self.unlinked_since_unix),
            last_successful_poll_unix: copy(&self.last_successful_poll_unix),
        }
    }

    /// Whether the last poll said `authorized`.
    pub fn is_authorized(&self) -> bool {
        self.state.load(Ordering::Relaxed) == InstanceState::Authorized.metric_index()
    }

    pub fn set_state(&self, state: &InstanceState) {
        self.state.store(state.metric_index(), Ordering::Relaxed);
    }

    pub fn poll(&self, success: bool) {
        self.polls[usize::from(!success)].fetch_add(1, Ordering::Relaxed);
        if success {
            self.last_successful_poll_unix.store(
                crate::clock::unix_seconds(crate::clock::now()),
                Ordering::Relaxed,
            );
        }
    }

    /// The episode as metrics see it: since when unlinked (`None`: no
    /// episode) and whether codes are paused.
    pub fn set_episode(&self, unlinked_since: Option<SystemTime>, paused: bool) {
        self.unlinked_since_unix.store(
            unlinked_since.map_or(0, crate::clock::unix_seconds),
            Ordering::Relaxed,
        );
        self.paused.store(u64::from(paused), Ordering::Relaxed);
    }

    pub fn code_requested(&self, outcome: CodeOutcome) {
        self.codes[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Unix seconds of the outstanding code's expiry; `None` clears it (0).
    pub fn set_code_expiry(&self, expiry: Option<SystemTime>) {
        let secs = expiry
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        self.code_expiry_unix.store(secs, Ordering::Relaxed);
    }

    pub fn relinked(&self) {
        self.relinks.fetch_add(1, Ordering::Relaxed);
    }

    pub fn episode_paused(&self) {
        self.episodes_paused.fetch_add(1, Ordering::Relaxed);
    }

    pub fn polls(&self, success: bool) -> u64 {
        self.polls[usize::from(!success)].load(Ordering::Relaxed)
    }

    pub fn codes(&self, outcome: CodeOutcome) -> u64 {
        self.codes[outcome as usize].load(Ordering::Relaxed)
    }

    pub fn relinks(&self) -> u64 {
        self.relinks.load(Ordering::Relaxed)
    }

    pub fn episodes_paused(&self) -> u64 {
        self.episodes_paused.load(Ordering::Relaxed)
    }
}

fn render_instances(table: &BTreeMap<u64, Arc<InstanceMetrics>>, out: &mut String) {
    family(
        out,
        "relinkd_instance_info",
        "gauge",
        "Always 1; joins an instance id (wa_instance) to its configured name.",
    );
    for (id, m) in table {
        let _ = writeln!(
            out,
            "relinkd_instance_info{{name=\"{}\",wa_instance=\"{id}\"}} 1",
            escape_label(&m.name)
        );
    }

    family(
        out,
        "relinkd_instance_state",
        "gauge",
        "The instance's last polled stateInstance, one-hot (unknown: a state relinkd does not know).",
    );
    for (id, m) in table {
        let current = m.state.load(Ordering::Relaxed);
        for (i, label) in InstanceState::METRIC_LABELS.iter().enumerate() {
            let value = u8::from(i == current);
            let _ = writeln!(
                out,
                "relinkd_instance_state{{state=\"{label}\",wa_instance=\"{id}\"}} {value}"
            );
        }
    }

    family(
        out,
        "relinkd_state_polls_total",
        "counter",
        "getStateInstance polls per instance, by outcome.",
    );
    for (id, m) in table {
        for (i, outcome) in POLL_OUTCOMES.iter().enumerate() {
            let value = m.polls[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "relinkd_state_polls_total{{outcome=\"{outcome}\",wa_instance=\"{id}\"}} {value}"
            );
        }
    }

    family(
        out,
        "relinkd_codes_requested_total",
        "counter",
        "getAuthorizationCode requests per instance: received a code, not_received (status false), error.",
    );
    for (id, m) in table {
        for outcome in CodeOutcome::ALL {
            let value = m.codes[outcome as usize].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "relinkd_codes_requested_total{{outcome=\"{}\",wa_instance=\"{id}\"}} {value}",
                outcome.as_str()
            );
        }
    }

    simple_family(
        out,
        table,
        "relinkd_code_expiry_timestamp_seconds",
        "gauge",
        "Unix time at which the outstanding code expires; 0 when no code is outstanding.",
        |m| m.code_expiry_unix.load(Ordering::Relaxed),
    );
    simple_family(
        out,
        table,
        "relinkd_relinks_total",
        "counter",
        "Linking episodes that ended with the instance authorized again.",
        |m| m.relinks.load(Ordering::Relaxed),
    );
    simple_family(
        out,
        table,
        "relinkd_episodes_paused_total",
        "counter",
        "Times the code budget was spent and the episode paused for the cooldown.",
        |m| m.episodes_paused.load(Ordering::Relaxed),
    );
    simple_family(
        out,
        table,
        "relinkd_instance_paused",
        "gauge",
        "1 while the instance's code budget is spent and codes are paused, else 0.",
        |m| m.paused.load(Ordering::Relaxed),
    );
    simple_family(
        out,
        table,
        "relinkd_instance_unlinked_since_timestamp_seconds",
        "gauge",
        "Unix time the current episode started (notAuthorized first seen); 0 when not in an episode.",
        |m| m.unlinked_since_unix.load(Ordering::Relaxed),
    );
    simple_family(
        out,
        table,
        "relinkd_last_successful_poll_timestamp_seconds",
        "gauge",
        "Unix time of the instance's last successful state poll; 0 before the first.",
        |m| m.last_successful_poll_unix.load(Ordering::Relaxed),
    );
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn simple_family(
    out: &mut String,
    table: &BTreeMap<u64, Arc<InstanceMetrics>>,
    name: &str,
    kind: &str,
    help: &str,
    value: impl Fn(&InstanceMetrics) -> u64,
) {
    family(out, name, kind, help);
    for (id, m) in table {
        let _ = writeln!(out, "{name}{{wa_instance=\"{id}\"}} {}", value(m));
    }
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_series_start_at_zero_and_are_one_hot() {
        let metrics = Metrics::new();
        let m = metrics.instance(1101000001, "sales \"line\"");
        let text = metrics.render();
        assert!(
            text.contains(
                "relinkd_instance_state{state=\"authorized\",wa_instance=\"1101000001\"} 0"
            )
        );
        assert!(text.contains("name=\"sales \\\"line\\\"\""));
        m.set_state(&InstanceState::NotAuthorized);
        let text = metrics.render();
        assert!(text.contains(
            "relinkd_instance_state{state=\"notAuthorized\",wa_instance=\"1101000001\"} 1"
        ));
        assert_eq!(text.matches("wa_instance=\"1101000001\"} 1").count(), 2); // info + state
    }

    #[test]
    fn a_renamed_instance_keeps_its_counters_and_state() {
        let metrics = Metrics::new();
        let m = metrics.instance(7, "old");
        m.poll(true);
        m.relinked();
        m.set_state(&InstanceState::Authorized);
        let renamed = metrics.instance(7, "new");
        assert_eq!(renamed.name(), "new");
        assert_eq!(renamed.polls(true), 1);
        assert_eq!(renamed.relinks(), 1);
        assert!(renamed.is_authorized());
    }

    #[test]
    fn process_metrics_have_their_usual_names() {
        let text = Metrics::new().render();
        assert!(text.contains("\nprocess_resident_memory_bytes "), "{text}");
        assert!(text.contains("\nprocess_start_time_seconds "));
        assert!(text.contains("relinkd_build_info{revision="));
    }

    #[test]
    fn api_series_exist_for_every_method_and_outcome() {
        let metrics = Metrics::new();
        let text = metrics.render();
        for method in Method::ALL {
            for outcome in ApiError::OUTCOMES {
                let line = format!(
                    "relinkd_api_requests_total{{method=\"{}\",outcome=\"{outcome}\"}} 0",
                    method.name()
                );
                assert!(text.contains(&line), "missing {line}");
            }
        }
    }
}
