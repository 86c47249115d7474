//! The linker's metrics: per instance (one series set per WhatsApp
//! instance, 50,000 on one daemon), plain atomics owned by each supervisor
//! and rendered straight to text at scrape time, so no lock is taken per
//! poll and no per-series objects are kept; and the fleet-wide polls and
//! code outcomes on the registry.
//!
//! A healthy instance has three series (its name, its state, its last
//! successful poll): what every instance does (polls that succeed) is
//! counted fleet-wide, what goes wrong is counted per instance, by reason,
//! from its first occurrence.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};

use crate::greenapi::{ApiError, InstanceState};
use crate::metrics::{Metrics, TextSource, register};

/// The linker's metrics; cheap to clone.
#[derive(Clone)]
pub struct LinkerMetrics {
    /// Fleet-wide code outcomes, counted by the supervisors.
    pub codes: CodeMetrics,
    /// Forwarded states the poll that followed disagreed with.
    pub forwarded_mismatches: IntCounter,
    /// Reboots that failed or were refused, fleet-wide (the per-instance
    /// `relinkd_reboots_total` counts confirmed ones).
    pub reboot_failures: IntCounter,
    /// `relinkd_state_polls_total{outcome}`, counted by every instance.
    polls: FleetPolls,
    /// Every instance's series; the fleet adds and removes instances, each
    /// supervisor updates its own, `/metrics` renders them.
    instances: Arc<InstanceTable>,
}

/// Every instance's series, by id.
#[derive(Default)]
struct InstanceTable(RwLock<BTreeMap<u64, Arc<InstanceMetrics>>>);

impl TextSource for InstanceTable {
    /// Renders a copy of the table's handles: the lock is held for the copy
    /// only, not for the render, so a reload adding or removing instances
    /// (which takes it to write) does not wait for a scrape.
    fn render(&self, out: &mut String) {
        let table: Vec<(u64, Arc<InstanceMetrics>)> = self
            .0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(id, m)| (*id, m.clone()))
            .collect();
        render_instances(&table, out);
    }
}

impl LinkerMetrics {
    /// Registers the fleet-wide families on `metrics`' registry and the
    /// per-instance ones as a text source.
    pub fn register(metrics: &Metrics) -> Self {
        let instances = Arc::new(InstanceTable::default());
        metrics.add_text_source(instances.clone());
        let forwarded_mismatches = IntCounter::new(
            "relinkd_forwarded_state_mismatch_total",
            "Forwarded stateInstanceChanged notifications whose state the poll that followed \
             did not confirm (the poll is the truth).",
        )
        .expect("valid metric");
        crate::metrics::register(metrics.registry(), forwarded_mismatches.clone());
        let reboot_failures = IntCounter::new(
            "relinkd_reboot_failures_total",
            "Reboots of instances stuck in starting that failed or that the vendor refused \
             (not counted in relinkd_reboots_total; retried at the error backoff).",
        )
        .expect("valid metric");
        crate::metrics::register(metrics.registry(), reboot_failures.clone());
        Self {
            codes: CodeMetrics::register(metrics.registry()),
            forwarded_mismatches,
            reboot_failures,
            polls: FleetPolls::register(metrics.registry()),
            instances,
        }
    }

    /// Relinks of every instance, in total.
    pub fn relinks_total(&self) -> u64 {
        let table = self.instances.0.read().unwrap_or_else(|e| e.into_inner());
        table
            .values()
            .map(|m| m.relinks.load(Ordering::Relaxed))
            .sum()
    }

    /// Registers an instance's series (all at 0) and returns its handle.
    /// Registering an id again returns the existing handle, so counters
    /// survive a supervisor restart on reload.
    pub fn instance(&self, id: u64, name: &str) -> Arc<InstanceMetrics> {
        let mut table = self.instances.0.write().unwrap_or_else(|e| e.into_inner());
        let entry = table
            .entry(id)
            .or_insert_with(|| Arc::new(InstanceMetrics::new(name, self.polls.clone())));
        if entry.name() != name {
            // Renamed in the config: a new handle for the info metric, with
            // the counters and the state carried over.
            *entry = Arc::new(entry.renamed(name));
        }
        entry.clone()
    }

    pub fn remove_instance(&self, id: u64) {
        self.instances
            .0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }
}

/// `relinkd_state_polls_total{outcome}`: every instance's polls, fleet-wide.
#[derive(Clone)]
struct FleetPolls(Arc<[IntCounter; 2]>);

impl FleetPolls {
    fn register(registry: &Registry) -> Self {
        let polls = IntCounterVec::new(
            Opts::new(
                "relinkd_state_polls_total",
                "getStateInstance polls of every instance, by outcome (success, failure); \
                 relinkd_instance_poll_failures_total says which instance failed and why.",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let counters = ["success", "failure"].map(|outcome| polls.with_label_values(&[outcome]));
        register(registry, polls);
        Self(Arc::new(counters))
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
    fn register(registry: &Registry) -> Self {
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
}

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
    /// Failed polls by `ApiError::outcome_index` (0, success, unused).
    poll_failures: [AtomicU64; ApiError::OUTCOMES.len()],
    /// Where every poll is also counted.
    fleet_polls: FleetPolls,
    codes: [AtomicU64; 3],
    code_expiry_unix: AtomicU64,
    relinks: AtomicU64,
    episodes_paused: AtomicU64,
    paused: AtomicU64,
    waiting: AtomicU64,
    reboots: AtomicU64,
    unlinked_since_unix: AtomicU64,
    last_successful_poll_unix: AtomicU64,
}

impl InstanceMetrics {
    fn new(name: &str, fleet_polls: FleetPolls) -> Self {
        Self {
            name: name.to_owned(),
            state: AtomicUsize::new(NO_STATE),
            poll_failures: Default::default(),
            fleet_polls,
            codes: Default::default(),
            code_expiry_unix: AtomicU64::new(0),
            relinks: AtomicU64::new(0),
            episodes_paused: AtomicU64::new(0),
            paused: AtomicU64::new(0),
            waiting: AtomicU64::new(0),
            reboots: AtomicU64::new(0),
            unlinked_since_unix: AtomicU64::new(0),
            last_successful_poll_unix: AtomicU64::new(0),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether any of its sparse series (failures, codes, and the sparse
    /// families) has a value to render.
    fn has_sparse_series(&self) -> bool {
        let nonzero = |n: &AtomicU64| n.load(Ordering::Relaxed) != 0;
        self.poll_failures.iter().skip(1).any(nonzero)
            || self.codes.iter().any(nonzero)
            || SPARSE_FAMILIES.iter().any(|f| (f.value)(self) != 0)
    }

    /// A copy of these values under another name.
    fn renamed(&self, name: &str) -> Self {
        let copy = |a: &AtomicU64| AtomicU64::new(a.load(Ordering::Relaxed));
        Self {
            name: name.to_owned(),
            state: AtomicUsize::new(self.state.load(Ordering::Relaxed)),
            poll_failures: std::array::from_fn(|i| copy(&self.poll_failures[i])),
            fleet_polls: self.fleet_polls.clone(),
            codes: [
                copy(&self.codes[0]),
                copy(&self.codes[1]),
                copy(&self.codes[2]),
            ],
            code_expiry_unix: copy(&self.code_expiry_unix),
            relinks: copy(&self.relinks),
            episodes_paused: copy(&self.episodes_paused),
            paused: copy(&self.paused),
            waiting: copy(&self.waiting),
            reboots: copy(&self.reboots),
            unlinked_since_unix: copy(&self.unlinked_since_unix),
            last_successful_poll_unix: copy(&self.last_successful_poll_unix),
        }
    }

    pub fn set_state(&self, state: &InstanceState) {
        self.state.store(state.metric_index(), Ordering::Relaxed);
    }

    pub fn poll_succeeded(&self) {
        self.fleet_polls.0[0].inc();
        self.last_successful_poll_unix.store(
            crate::clock::unix_seconds(crate::clock::now()),
            Ordering::Relaxed,
        );
    }

    pub fn poll_failed(&self, error: &ApiError) {
        self.fleet_polls.0[1].inc();
        self.poll_failures[error.outcome_index()].fetch_add(1, Ordering::Relaxed);
    }

    /// The episode as metrics see it: since when unlinked (`None`: no
    /// episode), whether codes are paused (the budget is spent) and whether
    /// the instance waits for a linking window.
    pub fn set_episode(&self, unlinked_since: Option<SystemTime>, paused: bool, waiting: bool) {
        self.waiting.store(u64::from(waiting), Ordering::Relaxed);
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

    pub fn rebooted(&self) {
        self.reboots.fetch_add(1, Ordering::Relaxed);
    }

    pub fn episode_paused(&self) {
        self.episodes_paused.fetch_add(1, Ordering::Relaxed);
    }

    #[cfg(test)]
    fn poll_failures(&self) -> u64 {
        self.poll_failures
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .sum()
    }

    #[cfg(test)]
    fn relinks(&self) -> u64 {
        self.relinks.load(Ordering::Relaxed)
    }
}

/// What the render needs of one instance after the one walk over its
/// metrics: the families every instance has.
struct Row {
    id: u64,
    state: usize,
    last_successful_poll: u64,
}

/// The per-instance families. The instances' metrics are scattered over
/// the heap, and a walk over 50,000 of them for each of a dozen families
/// was a cache miss per instance per family, most of the render's time; so
/// they are walked once, and again only for the few with a sparse series.
fn render_instances(table: &[(u64, Arc<InstanceMetrics>)], out: &mut String) {
    family(
        out,
        "relinkd_instance_info",
        "gauge",
        "Always 1; joins an instance id (wa_instance) to its configured name.",
    );
    let mut rows = Vec::with_capacity(table.len());
    // Those with a sparse series (a failure, a code, a relink, ...).
    let mut sparse: Vec<(u64, &InstanceMetrics)> = Vec::new();
    for (id, m) in table {
        let _ = writeln!(
            out,
            "relinkd_instance_info{{name=\"{}\",wa_instance=\"{id}\"}} 1",
            escape_label(&m.name)
        );
        rows.push(Row {
            id: *id,
            state: m.state.load(Ordering::Relaxed),
            last_successful_poll: m.last_successful_poll_unix.load(Ordering::Relaxed),
        });
        if m.has_sparse_series() {
            sparse.push((*id, m));
        }
    }

    family(
        out,
        "relinkd_instance_state",
        "gauge",
        "1 for the instance's last polled stateInstance (unknown: a state relinkd does not know); \
         one series per instance, none before its first poll.",
    );
    for row in &rows {
        if let Some(label) = InstanceState::METRIC_LABELS.get(row.state) {
            let id = row.id;
            let _ = writeln!(
                out,
                "relinkd_instance_state{{state=\"{label}\",wa_instance=\"{id}\"}} 1"
            );
        }
    }

    family(
        out,
        "relinkd_instance_poll_failures_total",
        "counter",
        "Failed getStateInstance polls per instance, by reason (as in relinkd_api_requests_total); \
         a reason appears at its first failure.",
    );
    for (id, m) in &sparse {
        for (reason, failures) in ApiError::OUTCOMES.iter().zip(&m.poll_failures).skip(1) {
            let value = failures.load(Ordering::Relaxed);
            if value == 0 {
                continue;
            }
            let _ = writeln!(
                out,
                "relinkd_instance_poll_failures_total{{reason=\"{reason}\",wa_instance=\"{id}\"}} {value}"
            );
        }
    }

    family(
        out,
        "relinkd_codes_requested_total",
        "counter",
        "getAuthorizationCode requests per instance: received a code, not_received (status false), error; an outcome appears at its first request.",
    );
    for (id, m) in &sparse {
        for outcome in CodeOutcome::ALL {
            let value = m.codes[outcome as usize].load(Ordering::Relaxed);
            if value == 0 {
                continue;
            }
            let _ = writeln!(
                out,
                "relinkd_codes_requested_total{{outcome=\"{}\",wa_instance=\"{id}\"}} {value}",
                outcome.as_str()
            );
        }
    }

    for f in &SPARSE_FAMILIES {
        family(out, f.name, f.kind, f.help);
        for (id, m) in &sparse {
            let value = (f.value)(m);
            if value != 0 {
                let _ = writeln!(out, "{}{{wa_instance=\"{id}\"}} {value}", f.name);
            }
        }
    }

    family(
        out,
        "relinkd_last_successful_poll_timestamp_seconds",
        "gauge",
        "Unix time of the instance's last successful state poll; 0 before the first.",
    );
    for row in &rows {
        let (id, value) = (row.id, row.last_successful_poll);
        let _ = writeln!(
            out,
            "relinkd_last_successful_poll_timestamp_seconds{{wa_instance=\"{id}\"}} {value}"
        );
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A family with one value per instance, no other label, and a series
/// only where the value is not 0: a fleet of 50,000 must not export 50,000
/// zeros per family.
struct SparseFamily {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    value: fn(&InstanceMetrics) -> u64,
}

/// The sparse families of one value each, in the order rendered.
const SPARSE_FAMILIES: [SparseFamily; 7] = [
    SparseFamily {
        name: "relinkd_code_expiry_timestamp_seconds",
        kind: "gauge",
        help: "Unix time at which the outstanding code expires; only while a code is outstanding.",
        value: |m| m.code_expiry_unix.load(Ordering::Relaxed),
    },
    SparseFamily {
        name: "relinkd_relinks_total",
        kind: "counter",
        help: "Linking episodes that ended with the instance authorized again; from the first.",
        value: |m| m.relinks.load(Ordering::Relaxed),
    },
    SparseFamily {
        name: "relinkd_episodes_paused_total",
        kind: "counter",
        help: "Times the code budget was spent and the episode paused for the cooldown; from the first.",
        value: |m| m.episodes_paused.load(Ordering::Relaxed),
    },
    SparseFamily {
        name: "relinkd_instance_paused",
        kind: "gauge",
        help: "1 while the instance's code budget is spent and codes are paused; absent otherwise.",
        value: |m| m.paused.load(Ordering::Relaxed),
    },
    SparseFamily {
        name: "relinkd_reboots_total",
        kind: "counter",
        help: "Reboots the vendor confirmed, asked for because the instance was starting longer than reboot_stuck_after; from the first.",
        value: |m| m.reboots.load(Ordering::Relaxed),
    },
    SparseFamily {
        name: "relinkd_instance_waiting_for_window",
        kind: "gauge",
        help: "1 while the instance is unlinked outside its linking windows and no code is requested; absent otherwise.",
        value: |m| m.waiting.load(Ordering::Relaxed),
    },
    SparseFamily {
        name: "relinkd_instance_unlinked_since_timestamp_seconds",
        kind: "gauge",
        help: "Unix time the current episode started (notAuthorized first seen); only during an episode.",
        value: |m| m.unlinked_since_unix.load(Ordering::Relaxed),
    },
];

/// A label value as the text format needs it; borrowed unless it has a
/// character to escape (a name rarely has one, and 50,000 copies per
/// scrape showed in the profile).
fn escape_label(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return std::borrow::Cow::Borrowed(value);
    }
    std::borrow::Cow::Owned(
        value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_exports_one_state_series_and_no_zeros() {
        let metrics = Metrics::new();
        let linker = LinkerMetrics::register(&metrics);
        let m = linker.instance(1101000001, "sales \"line\"");
        let text = metrics.render();
        assert!(text.contains("name=\"sales \\\"line\\\"\""));
        // Before the first poll: its info and its last successful poll (0).
        assert_eq!(
            text.matches("wa_instance=\"1101000001\"").count(),
            2,
            "{text}"
        );
        m.set_state(&InstanceState::NotAuthorized);
        m.poll_succeeded();
        let text = metrics.render();
        assert!(text.contains(
            "relinkd_instance_state{state=\"notAuthorized\",wa_instance=\"1101000001\"} 1"
        ));
        assert!(
            !text.contains("state=\"authorized\""),
            "one state, not one-hot"
        );
        assert!(
            !text.contains("relinkd_instance_poll_failures_total{"),
            "no zero counters"
        );
        assert!(!text.contains("relinkd_instance_paused{"), "no zero gauges");
        assert!(text.contains("relinkd_state_polls_total{outcome=\"success\"} 1"));
        // info, state, last successful poll.
        assert_eq!(
            text.matches("wa_instance=\"1101000001\"").count(),
            3,
            "{text}"
        );
    }

    #[test]
    fn a_failing_instance_is_named_with_its_reason_and_counted_fleet_wide() {
        let metrics = Metrics::new();
        let linker = LinkerMetrics::register(&metrics);
        let failing = linker.instance(1101000001, "failing");
        linker.instance(1101000002, "healthy").poll_succeeded();
        failing.poll_failed(&ApiError::Timeout);
        failing.poll_failed(&ApiError::Timeout);
        failing.poll_failed(&ApiError::QuotaExceeded);
        let text = metrics.render();
        for line in [
            "relinkd_instance_poll_failures_total{reason=\"timeout\",wa_instance=\"1101000001\"} 2",
            "relinkd_instance_poll_failures_total{reason=\"quota\",wa_instance=\"1101000001\"} 1",
            "relinkd_state_polls_total{outcome=\"failure\"} 3",
            "relinkd_state_polls_total{outcome=\"success\"} 1",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with("relinkd_instance_poll_failures_total{")
                    && l.contains("1101000002")),
            "the healthy instance has no failure series"
        );
    }

    #[test]
    fn sparse_series_are_rendered_for_the_instances_that_have_them_and_no_other() {
        let metrics = Metrics::new();
        let linker = LinkerMetrics::register(&metrics);
        for id in 1..=50 {
            linker.instance(id, &format!("line-{id}")).poll_succeeded();
        }
        let busy = linker.instance(20, "line-20");
        busy.code_requested(CodeOutcome::Received);
        busy.relinked();
        busy.rebooted();
        busy.episode_paused();
        busy.set_episode(Some(UNIX_EPOCH + Duration::from_secs(1_000)), true, false);
        busy.set_code_expiry(Some(UNIX_EPOCH + Duration::from_secs(2_000)));
        linker
            .instance(33, "line-33")
            .poll_failed(&ApiError::Timeout);
        linker
            .instance(40, "line-40")
            .code_requested(CodeOutcome::Error);
        let text = metrics.render();
        for line in [
            "relinkd_codes_requested_total{outcome=\"received\",wa_instance=\"20\"} 1",
            "relinkd_relinks_total{wa_instance=\"20\"} 1",
            "relinkd_reboots_total{wa_instance=\"20\"} 1",
            "relinkd_episodes_paused_total{wa_instance=\"20\"} 1",
            "relinkd_instance_paused{wa_instance=\"20\"} 1",
            "relinkd_instance_unlinked_since_timestamp_seconds{wa_instance=\"20\"} 1000",
            "relinkd_code_expiry_timestamp_seconds{wa_instance=\"20\"} 2000",
            "relinkd_instance_poll_failures_total{reason=\"timeout\",wa_instance=\"33\"} 1",
            "relinkd_codes_requested_total{outcome=\"error\",wa_instance=\"40\"} 1",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        let series = |family: &str| {
            text.lines()
                .filter(|l| l.starts_with(&format!("{family}{{")))
                .count()
        };
        assert_eq!(series("relinkd_instance_info"), 50);
        assert_eq!(series("relinkd_last_successful_poll_timestamp_seconds"), 50);
        for family in [
            "relinkd_relinks_total",
            "relinkd_instance_paused",
            "relinkd_instance_poll_failures_total",
        ] {
            assert_eq!(series(family), 1, "{family}");
        }
        assert_eq!(series("relinkd_codes_requested_total"), 2);
        assert_eq!(text.matches("# HELP relinkd_relinks_total ").count(), 1);
    }

    #[test]
    fn a_renamed_instance_keeps_its_counters_and_state() {
        let linker = LinkerMetrics::register(&Metrics::new());
        let m = linker.instance(7, "old");
        m.poll_failed(&ApiError::Timeout);
        m.relinked();
        m.set_state(&InstanceState::Authorized);
        let renamed = linker.instance(7, "new");
        assert_eq!(renamed.name(), "new");
        assert_eq!(renamed.poll_failures(), 1);
        assert_eq!(renamed.relinks(), 1);
        assert_eq!(
            renamed.state.load(Ordering::Relaxed),
            InstanceState::Authorized.metric_index()
        );
    }
}
