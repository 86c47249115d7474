//! A GREEN-API simulator: a test double of the vendor's HTTP API, faithful to
//! `GREENAPI.md`, used by `relinkd sim`, `relinkd demo`, integration tests and
//! benchmarks.
//!
//! * Vendor routes: `{base}/waInstance{id}/{method}/{token}` with
//!   `getStateInstance`, `getAuthorizationCode`, `getWaSettings`, `logout`,
//!   `reboot` and `sendMessage`, with the vendor's rate limits and error bodies.
//! * Control routes under `/sim/...` (JSON) to inspect and drive instances:
//!   enter a code, log out, change state, inject faults.
//! * All time is tokio time (`tokio::time::Instant`, `tokio::time::sleep`), so
//!   tests can run the simulator under a paused clock. The server runs in the
//!   caller's runtime and spawns no threads.
//!
//! Choices where the vendor says nothing (see also the item docs):
//! * A reboot puts the instance into `starting` for 5 s of tokio time, then
//!   it returns to the state it had before the reboot, except that an instance
//!   that was `starting` comes back `notAuthorized` (a reboot clears the
//!   vendor's "stuck in starting" bug). A reboot or a logout drops any code.
//! * Request checks run in this order: path shape (404), instance id (403),
//!   token (401), method name (404), HTTP verb (405), faults, request body
//!   (400), rate limit (429), then the method itself. Every request that names
//!   a known instance is recorded in its call log, wrong tokens included.

mod cli;
mod control;
mod faults;
mod http;
mod reply;
mod state;
mod stats;
mod store;
mod tls;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::time::Instant;

pub use cli::{SimArgs, fleet, run_cli};
pub use faults::{Fault, FaultKind};
pub use tls::{SimTls, TlsError};

use state::InstanceSim;
use store::Store;

/// How the simulated vendor behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// How long an issued linking code stays valid (vendor: about 2.5 min).
    pub code_ttl: Duration,
    /// Minimum time between two accepted state calls (`getStateInstance`,
    /// `getWaSettings`, `logout`, `reboot`) of one instance, and separately
    /// between two accepted `getAuthorizationCode` calls (vendor: 1/s).
    pub state_call_interval: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            code_ttl: Duration::from_secs(150),
            state_call_interval: Duration::from_secs(1),
        }
    }
}

/// One simulated instance as it is created.
#[derive(Debug, Clone)]
pub struct SimInstance {
    pub id: u64,
    pub token: String,
    pub phone: u64,
    /// Any string: `notAuthorized`, `authorized`, `blocked`, `starting`, ...
    pub state: String,
}

/// A request that reached an instance (the path named a known instance id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// When the request arrived (tokio time).
    pub at: Instant,
    /// The method segment of the path, as sent.
    pub method: String,
    /// The status answered; 0 while still in flight or for a `Hang` fault.
    pub status: u16,
}

/// An accepted `sendMessage` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    pub chat_id: String,
    pub message: String,
}

/// Why [`Simulator::enter_code`] refused a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnterError {
    #[error("unknown instance")]
    UnknownInstance,
    #[error("no code has been issued")]
    NoCode,
    #[error("the code has expired")]
    Expired,
    #[error("wrong code")]
    WrongCode,
}

impl EnterError {
    /// A stable snake_case name, used by the control routes.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UnknownInstance => "unknown_instance",
            Self::NoCode => "no_code",
            Self::Expired => "expired",
            Self::WrongCode => "wrong_code",
        }
    }
}

/// The simulator: a cheaply cloneable handle on shared state.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: SimConfig,
    pub(crate) started: Instant,
    /// `started` on the wall clock (the stats' times are wall-clock).
    pub(crate) started_wall: std::time::SystemTime,
    pub(crate) store: Store,
    /// `getStateInstance` calls per second (`GET /sim/stats`).
    pub(crate) state_calls: stats::CallsPerSecond,
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("config", &self.inner.config)
            .field("instances", &self.inner.store.len())
            .finish()
    }
}

impl Simulator {
    pub fn new(config: SimConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                started: Instant::now(),
                started_wall: std::time::SystemTime::now(),
                store: Store {
                    map: RwLock::new(HashMap::new()),
                },
                state_calls: stats::CallsPerSecond::default(),
            }),
        }
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// Adds an instance; an instance with the same id is replaced (its codes,
    /// faults and logs start afresh).
    pub fn add_instance(&self, instance: SimInstance) {
        let id = instance.id;
        self.inner.store.insert(id, InstanceSim::new(instance));
    }

    /// Number of instances.
    pub fn len(&self) -> usize {
        self.inner.store.len()
    }

    /// True when there are no instances.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ids of all instances, sorted.
    pub fn ids(&self) -> Vec<u64> {
        self.inner.store.ids()
    }

    pub fn state(&self, id: u64) -> Option<String> {
        self.with(id, |i| i.state().to_owned())
    }

    /// Sets any state string. Cancels a pending reboot; keeps the code.
    pub fn set_state(&self, id: u64, state: &str) {
        self.with(id, |i| i.set_state(state));
    }

    /// The latest code, if it has not expired.
    pub fn current_code(&self, id: u64) -> Option<String> {
        let now = Instant::now();
        self.with(id, |i| i.current_code(now).map(str::to_owned))
            .flatten()
    }

    /// What the person does on the phone: enters a code. The current,
    /// unexpired code turns the instance `authorized` and is consumed. The
    /// comparison ignores case, spaces and dashes (`GAPI-2018`).
    pub fn enter_code(&self, id: u64, code: &str) -> Result<(), EnterError> {
        let now = Instant::now();
        self.with(id, |i| i.enter(code, now))
            .unwrap_or(Err(EnterError::UnknownInstance))
    }

    /// Unlinks the device: state `notAuthorized`, code dropped.
    pub fn logout(&self, id: u64) {
        self.with(id, InstanceSim::logout);
    }

    /// Replaces the instance's fault list with `[fault]`.
    pub fn set_fault(&self, id: u64, fault: Fault) {
        self.with(id, |i| i.faults = vec![fault]);
    }

    /// Appends a fault; the first matching fault of the list applies.
    pub fn add_fault(&self, id: u64, fault: Fault) {
        self.with(id, |i| i.faults.push(fault));
    }

    pub fn clear_faults(&self, id: u64) {
        self.with(id, |i| i.faults.clear());
    }

    /// The faults still pending for an instance.
    pub fn faults(&self, id: u64) -> Vec<Fault> {
        self.with(id, |i| i.faults.clone()).unwrap_or_default()
    }

    /// Requests that reached this instance, oldest first (the last
    /// [`CALL_LOG_CAP`] are kept).
    pub fn calls(&self, id: u64) -> Vec<CallRecord> {
        self.with(id, |i| i.calls()).unwrap_or_default()
    }

    /// How many `getAuthorizationCode` calls answered `status: true`.
    pub fn codes_issued(&self, id: u64) -> u64 {
        self.with(id, |i| i.codes_issued).unwrap_or(0)
    }

    /// Accepted `sendMessage` bodies, oldest first (the last
    /// [`MESSAGE_LOG_CAP`] are kept).
    pub fn sent_messages(&self, id: u64) -> Vec<SentMessage> {
        self.with(id, |i| i.sent.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Vendor routes plus `/sim` control routes. Served this way (rather than
    /// by [`serve`]) a `Hang` fault is only released when the client gives up.
    pub fn router(&self) -> axum::Router {
        // The sender is dropped at once: "released" never fires.
        let (_, release) = tokio::sync::watch::channel(false);
        router(self.clone(), release)
    }

    fn with<R>(&self, id: u64, f: impl FnOnce(&mut InstanceSim) -> R) -> Option<R> {
        self.inner.store.with(id, Instant::now(), f)
    }
}

/// Shared by every handler.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub(crate) sim: Simulator,
    /// Becomes `true` when the server shuts down: held requests are released.
    pub(crate) release: tokio::sync::watch::Receiver<bool>,
}

/// The control routes and the vendor routes.
fn router(sim: Simulator, release: tokio::sync::watch::Receiver<bool>) -> axum::Router {
    control::routes()
        .route("/{wa}/{method}/{token}", axum::routing::any(http::vendor))
        .with_state(Ctx { sim, release })
}

/// How many call records are kept per instance.
pub const CALL_LOG_CAP: usize = 1000;
/// How many sent messages are kept per instance.
pub const MESSAGE_LOG_CAP: usize = 1000;
/// How long a reboot keeps an instance in `starting`.
pub const REBOOT_DURATION: Duration = Duration::from_secs(5);

/// Serves the simulator on `listener` in the current runtime until `shutdown`
/// completes, then shuts down gracefully. Requests held by a `Hang` fault or
/// by injected latency are released at shutdown (answered 503 / 504).
pub async fn serve(
    listener: tokio::net::TcpListener,
    sim: Simulator,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_on(listener, sim, shutdown).await
}

/// Like [`serve`], over HTTPS with `tls`'s certificate (clients trust
/// [`SimTls::ca_pem`]).
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    tls: &SimTls,
    sim: Simulator,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_on(tls.listen(listener)?, sim, shutdown).await
}

async fn serve_on<L>(
    listener: L,
    sim: Simulator,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    let app = router(sim, release_rx);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Receivers live in the router; an error only means none is left.
            let _ = release_tx.send(true);
        })
        .await
}
