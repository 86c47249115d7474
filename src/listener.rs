//! The admin listener's connections: at most `max_connections` at once (the
//! excess is closed at once and counted), a client that does not finish its
//! request headers within [`HEADER_READ_TIMEOUT`] is dropped, and so is a
//! connection on which no byte moves for [`IDLE_TIMEOUT`]. So idle or slow
//! clients can hold neither the listener nor the file descriptors that vendor
//! calls and channel deliveries need.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::shutdown::Tasks;

/// A client must send its whole request head within this.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection on which nothing is read or written for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// At most this share of the process's file descriptors goes to the
/// listener; the rest is for vendor calls, channels and the state file.
const FD_SHARE_DIVISOR: u64 = 4;
/// Pause after a failed `accept` (e.g. out of file descriptors), so the loop
/// does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The listener's metrics, registered on the registry passed in.
#[derive(Clone)]
pub struct ListenerMetrics {
    open: IntGauge,
    max: IntGauge,
    refused: IntCounter,
    timed_out: IntCounterVec,
}

impl ListenerMetrics {
    pub fn register(registry: &Registry) -> Self {
        let open = IntGauge::new(
            "relinkd_listener_connections",
            "Connections to the admin listener open now.",
        )
        .expect("valid metric");
        let max = IntGauge::new(
            "relinkd_listener_max_connections",
            "The most connections the admin listener holds at once ([daemon] max_connections, \
             capped at a quarter of the open-files limit).",
        )
        .expect("valid metric");
        let refused = IntCounter::new(
            "relinkd_listener_connections_refused_total",
            "Connections closed on arrival because the admin listener held max_connections.",
        )
        .expect("valid metric");
        let timed_out = IntCounterVec::new(
            Opts::new(
                "relinkd_listener_connections_timed_out_total",
                "Connections the admin listener closed: header (request head not complete \
                 within 10 s) or idle (nothing read or written for 60 s).",
            ),
            &["reason"],
        )
        .expect("valid metric");
        for reason in ["header", "idle"] {
            timed_out.with_label_values(&[reason]);
        }
        for collector in [
            Box::new(open.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(max.clone()),
            Box::new(refused.clone()),
            Box::new(timed_out.clone()),
        ] {
            registry
                .register(collector)
                .expect("each metric is registered once");
        }
        Self {
            open,
            max,
            refused,
            timed_out,
        }
    }
}

/// How many connections the listener may hold: `configured`, but never more
/// than a quarter of the open-files limit (so the listener cannot take the
/// descriptors that outbound requests need). Also says why, if capped.
pub fn connection_limit(configured: usize) -> (usize, Option<String>) {
    let Some(files) = open_files_limit() else {
        return (configured, None);
    };
    let share = usize::try_from((files / FD_SHARE_DIVISOR).max(1)).unwrap_or(usize::MAX);
    if configured <= share {
        return (configured, None);
    }
    let why = format!(
        "[daemon] max_connections = {configured} is more than a quarter of the open-files \
         limit ({files}); using {share} (raise LimitNOFILE= to allow more)"
    );
    (share, Some(why))
}

/// The soft limit on open files, from /proc (Linux); `None` elsewhere.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Serves `router` on `listener` until `tasks` is cancelled, then lets open
/// connections (tasks of `tasks` too) finish their requests and closes them.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    max_connections: usize,
    metrics: ListenerMetrics,
    tasks: Tasks,
) {
    let slots = Arc::new(Semaphore::new(max_connections));
    metrics
        .max
        .set(i64::try_from(max_connections).unwrap_or(i64::MAX));
    let mut accept_errors = 0u64;
    loop {
        let accepted = tokio::select! {
            () = tasks.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                // Out of descriptors or the like: say so now and then, wait.
                accept_errors += 1;
                if accept_errors.is_power_of_two() {
                    tracing::warn!(%error, failures = accept_errors, "admin listener: accept failed");
                }
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics.refused.inc();
            drop(stream);
            continue;
        };
        let (router, metrics, stop) = (router.clone(), metrics.clone(), tasks.child_token());
        tasks.spawn(async move {
            metrics.open.inc();
            if let Some(reason) = serve_connection(stream, router, stop).await {
                metrics.timed_out.with_label_values(&[reason]).inc();
            }
            metrics.open.dec();
            drop(slot);
        });
    }
}

/// One connection; `Some(reason)` if it was closed for taking too long.
async fn serve_connection(
    stream: TcpStream,
    router: Router,
    stop: CancellationToken,
) -> Option<&'static str> {
    let activity = Activity::default();
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let service = TowerToHyperService::new(router);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    tokio::select! {
        served = connection.as_mut() => match served {
            Err(error) if error.is_timeout() => Some("header"),
            _ => None,
        },
        () = activity.idle_for(IDLE_TIMEOUT) => Some("idle"),
        () = stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
            None
        }
    }
}

/// When a connection last moved a byte, in milliseconds on tokio's clock
/// since it was opened.
#[derive(Clone)]
struct Activity {
    opened: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Default for Activity {
    fn default() -> Self {
        Self {
            opened: Instant::now(),
            last_ms: Arc::default(),
        }
    }
}

impl Activity {
    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Resolves once nothing has moved for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let last = self.opened + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + limit;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// A stream that notes every read and write in its [`Activity`].
struct Watched {
    inner: TcpStream,
    activity: Activity,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
