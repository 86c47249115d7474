//! `[daemon]`: where relinkd listens and keeps its state, its log format,
//! the admin token, its limits, and how it reaches the outside (`ca_file`,
//! the proxy variables).

use std::net::SocketAddr;
use std::path::PathBuf;

use super::raw::RawDaemon;
use super::{DaemonConfig, LogFormat};
use crate::outbound::{CaFile, Egress, Proxies, ca_certificates};
use crate::validation::{
    Report, SecretContext, Sources, integer, read_regular, resolve, resolve_path, socket_addr,
};

const DEFAULT_LISTEN: ([u8; 4], u16) = ([127, 0, 0, 1], 7788);
const DEFAULT_STATE_DIR: &str = "./state";
const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 64;
const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// Largest CA file read (a full public bundle is about 220 KiB).
const MAX_CA_FILE_BYTES: u64 = 1 << 20;

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
        egress: Egress::default(),
    }
}

/// How outbound connections reach the outside: `ca_file`'s certificates
/// and the environment's proxies.
pub(super) fn egress(raw: &RawDaemon, ctx: &SecretContext<'_>, report: &mut Report) -> Egress {
    let ca_file = raw
        .ca_file
        .as_deref()
        .and_then(|path| ca_file(path, ctx, report));
    let proxies = Proxies::from_env(|name| ctx.env.var(name)).unwrap_or_else(|problem| {
        report.error(format!("${}", problem.variable), problem.why);
        Proxies::default()
    });
    Egress { ca_file, proxies }
}

/// `ca_file`: a regular file of PEM CA certificates, read like every file a
/// config names (never a FIFO, at most 1 MiB).
fn ca_file(path: &str, ctx: &SecretContext<'_>, report: &mut Report) -> Option<CaFile> {
    const KEY: &str = "daemon.ca_file";
    if path.trim().is_empty() {
        report.error(
            KEY,
            "is empty: give the path of a PEM file of CA certificates",
        );
        return None;
    }
    let path = resolve_path(ctx.config_dir, path);
    let bytes = match read_regular(&path, MAX_CA_FILE_BYTES) {
        Ok((bytes, _mode)) => bytes,
        Err(problem) => {
            report.error(KEY, format!("{}: {problem}", path.display()));
            return None;
        }
    };
    match ca_certificates(&bytes) {
        Ok(read) => {
            if read.has_private_key {
                report.warn(
                    KEY,
                    &format!(
                        "{} holds a private key besides its certificates; a CA file needs \
                         only certificates: keep the key elsewhere",
                        path.display()
                    ),
                );
            }
            Some(CaFile {
                path,
                certificates: read.certificates,
            })
        }
        Err(problem) => {
            report.error(KEY, format!("{}: {problem}", path.display()));
            None
        }
    }
}
