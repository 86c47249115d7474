//! `[daemon]`: where relinkd listens and keeps its state, its log format,
//! the admin token and its limits.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::raw::RawDaemon;
use super::{DaemonConfig, LogFormat};
use crate::validation::{Report, SecretContext, Sources, integer, resolve, socket_addr};

const DEFAULT_LISTEN: ([u8; 4], u16) = ([127, 0, 0, 1], 7788);
const DEFAULT_STATE_DIR: &str = "./state";
const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 64;
const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// The `[daemon]` section: where relinkd listens and keeps its state, its
/// logs, the admin token, and its limits.
pub(super) fn check(raw: &RawDaemon, ctx: &SecretContext<'_>, report: &mut Report) -> DaemonConfig {
    let default_listen = SocketAddr::from(DEFAULT_LISTEN);
    let listen = match raw.listen.as_deref() {
        Some(text) => report
            .check("daemon.listen", socket_addr(text))
            .unwrap_or(default_listen),
        None => default_listen,
    };

    let state_dir = match raw.state_dir.as_deref() {
        Some("") => {
            report.error("daemon.state_dir", "must not be empty");
            PathBuf::from(DEFAULT_STATE_DIR)
        }
        Some(dir) => PathBuf::from(dir),
        None => ctx
            .env
            .var("STATE_DIRECTORY")
            .and_then(|v| {
                v.split(':')
                    .next()
                    .filter(|d| !d.is_empty())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
    };

    let log_format = match raw.log_format.as_deref() {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            report.error(
                "daemon.log_format",
                format!("must be \"text\" or \"json\" (got {other:?})"),
            );
            LogFormat::Text
        }
    };

    let sources = Sources {
        base: "admin_token",
        file: raw.admin_token_file.clone(),
        env: raw.admin_token_env.clone(),
        credential: raw.admin_token_credential.clone(),
        inline: raw.admin_token.as_ref().map(|s| s.0.clone()),
        inline_warning: None,
    };
    let admin_token = resolve("daemon", &sources, ctx, report)
        .ok()
        .flatten()
        .map(|loaded| loaded.value);

    let sources = Sources {
        base: "greenapi_webhook_token",
        file: raw.greenapi_webhook_token_file.clone(),
        env: raw.greenapi_webhook_token_env.clone(),
        credential: raw.greenapi_webhook_token_credential.clone(),
        inline: raw.greenapi_webhook_token.as_ref().map(|s| s.0.clone()),
        inline_warning: None,
    };
    let greenapi_webhook_token = resolve("daemon", &sources, ctx, report)
        .ok()
        .flatten()
        .map(|loaded| loaded.value);

    let max_concurrent_requests = match &raw.max_concurrent_requests {
        Some(value) => report
            .check("daemon.max_concurrent_requests", integer(value, 1, 10_000))
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(DEFAULT_MAX_CONCURRENT_REQUESTS),
        None => DEFAULT_MAX_CONCURRENT_REQUESTS,
    };

    let max_connections = match &raw.max_connections {
        Some(value) => report
            .check("daemon.max_connections", integer(value, 1, 100_000))
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(DEFAULT_MAX_CONNECTIONS),
        None => DEFAULT_MAX_CONNECTIONS,
    };

    DaemonConfig {
        listen,
        state_dir,
        log_format,
        admin_token,
        greenapi_webhook_token,
        max_concurrent_requests,
        max_connections,
    }
}
