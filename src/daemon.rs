//! The daemon: from a loaded config to running supervisors and a listener,
//! until the shutdown future resolves.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::TcpListener;

use crate::admin::{self, AdminState};
use crate::config::Config;
use crate::delivery::Dispatcher;
use crate::greenapi::Client;
use crate::linker::Fleet;
use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("admin listener failed: {0}")]
    Listener(#[source] std::io::Error),
}

/// Runs relinkd on `config`, serving the admin API on `listener`, until
/// `shutdown` resolves. Tests pass their own listener, metrics and shutdown.
pub async fn run(
    config: Config,
    listener: TcpListener,
    metrics: Metrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    let listen = listener.local_addr().map_err(DaemonError::Listener)?;
    let ready = Arc::new(AtomicBool::new(false));
    let router = admin::router(AdminState {
        metrics: metrics.clone(),
        ready: ready.clone(),
    });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await
    });

    let client = Client::new(config.daemon.max_concurrent_requests, metrics.api.clone());
    let http = reqwest::Client::builder()
        .user_agent(concat!("relinkd/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::limited(3))
        .build()
        .expect("the HTTP client's fixed settings are valid");
    let dispatcher = Dispatcher::from_config(&config.channels, http, metrics.deliveries.clone());
    let mut fleet = Fleet::new(client, dispatcher, metrics.clone());
    fleet.start(&config);
    metrics.reload_succeeded();
    ready.store(true, Ordering::Release);
    tracing::info!(
        instances = fleet.len(),
        channels = config.channels.len(),
        %listen,
        "relinkd running"
    );

    tokio::pin!(shutdown);
    let result = tokio::select! {
        () = &mut shutdown => Ok(()),
        served = &mut Box::pin(wait_server(server)) => served,
    };
    ready.store(false, Ordering::Release);
    tracing::info!("shutting down");
    fleet.shutdown().await;
    let _ = stop_tx.send(());
    result
}

async fn wait_server(
    server: tokio::task::JoinHandle<std::io::Result<()>>,
) -> Result<(), DaemonError> {
    match server.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(DaemonError::Listener(e)),
        Err(e) => Err(DaemonError::Listener(std::io::Error::other(e))),
    }
}
