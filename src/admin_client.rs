//! `relinkd status` and `relinkd relink ID`: clients of a running daemon's
//! admin API, reading its address and the admin token from the config.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::config::{self, ConfigError, ProcessEnv};
use crate::linker::InstanceStatus;

#[derive(Debug, Clone, clap::Args)]
pub struct TokenArgs {
    /// Read the admin token from this file instead of the config (e.g. when
    /// the config names a systemd credential this shell cannot read).
    #[arg(long, env = "RELINKD_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "{0}\n  a shell cannot read the service's credentials: pass the admin token with \
         --admin-token-file FILE (or RELINKD_ADMIN_TOKEN_FILE), e.g. for a plain credential\n    \
         sudo relinkd status --admin-token-file /etc/relinkd/credentials/admin-token\n  \
         and for an encrypted one\n    \
         sudo systemd-creds decrypt --name=admin-token FILE.cred - \
         | sudo relinkd status --admin-token-file /dev/stdin"
    )]
    CredentialOutsideService(ConfigError),
    #[error("{0}: cannot read the admin token: {1}")]
    TokenFile(PathBuf, std::io::Error),
    #[error(
        "{0}: no admin token: set [daemon] admin_token_file (or _env, _credential), or pass --admin-token-file"
    )]
    NoToken(PathBuf),
    #[error("cannot reach relinkd at {url}: {detail} (is it running?)")]
    Unreachable { url: String, detail: String },
    #[error("relinkd answered {status}: {message}")]
    Refused { status: u16, message: String },
}

struct Api {
    /// `http://{[daemon] listen}`.
    base: String,
    /// The admin token, sent only as a bearer header.
    token: SecretString,
    /// Follows no redirect: a redirect would carry the token elsewhere.
    http: reqwest::Client,
}

impl Api {
    fn from_config(path: &Path, args: &TokenArgs) -> Result<Self, ClientError> {
        let override_token = match &args.admin_token_file {
            Some(file) => {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| ClientError::TokenFile(file.clone(), e))?;
                Some(SecretString::from(text.trim().to_owned()))
            }
            None => None,
        };
        let daemon = config::load_daemon_section(path, &ProcessEnv, override_token.is_none())
            .map_err(|error| {
                let credential = error
                    .issues()
                    .iter()
                    .any(|i| i.key == "daemon.admin_token_credential");
                if credential {
                    ClientError::CredentialOutsideService(error)
                } else {
                    ClientError::Config(error)
                }
            })?;
        let token = override_token
            .or(daemon.admin_token)
            .ok_or_else(|| ClientError::NoToken(path.to_path_buf()))?;
        let mut host = daemon.listen;
        if host.ip().is_unspecified() {
            host.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        Ok(Self {
            base: format!("http://{host}"),
            token,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .no_proxy()
                // The token goes to the daemon and nowhere else.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("the HTTP client's fixed settings are valid"),
        })
    }

    async fn call(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<serde_json::Value, ClientError> {
        let response = request
            .bearer_auth(self.token.expose_secret())
            .send()
            .await
            .map_err(|e| ClientError::Unreachable {
                url: self.base.clone(),
                detail: crate::outbound::describe_without_url(e),
            })?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if !status.is_success() {
            return Err(ClientError::Refused {
                status: status.as_u16(),
                message: body["error"].as_str().unwrap_or("no message").to_owned(),
            });
        }
        Ok(body)
    }
}

pub async fn status(path: &Path, args: &TokenArgs, json: bool) -> Result<(), ClientError> {
    let api = Api::from_config(path, args)?;
    let body = api
        .call(api.http.get(format!("{}/api/v1/instances", api.base)))
        .await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        );
        return Ok(());
    }
    let instances: Vec<InstanceStatus> =
        serde_json::from_value(body["instances"].clone()).unwrap_or_default();
    print!("{}", table(&instances));
    print!("{}", delivery_errors(&instances));
    println!("{}", body["summary"].as_str().unwrap_or(""));
    Ok(())
}

/// Relinks the instance `which` names (an id or a configured name) and says
/// what the daemon will do.
pub async fn relink(path: &Path, args: &TokenArgs, which: &str) -> Result<(), ClientError> {
    let api = Api::from_config(path, args)?;
    let mut url = reqwest::Url::parse(&api.base).expect("the base is an http URL");
    url.path_segments_mut()
        .expect("an http URL has a path")
        .extend(["api", "v1", "instances", which, "relink"]);
    let body = api.call(api.http.post(url)).await?;
    println!(
        "relink requested for {} ({}): {}.",
        body["name"].as_str().unwrap_or(which),
        body["id"],
        body["will"].as_str().unwrap_or("it polls now")
    );
    Ok(())
}

/// Asks the running daemon to send a digest of the fleet to `channel` now.
pub async fn send_digest(path: &Path, args: &TokenArgs, channel: &str) -> Result<(), ClientError> {
    let api = Api::from_config(path, args)?;
    let mut url = reqwest::Url::parse(&api.base).expect("the base is an http URL");
    url.path_segments_mut()
        .expect("an http URL has a path")
        .extend(["api", "v1", "channels", channel, "digest"]);
    api.call(api.http.post(url)).await?;
    println!("channel {channel}: digest delivered");
    Ok(())
}

/// The channels whose last attempt for an instance failed, one line each
/// (nothing when every channel delivers).
pub fn delivery_errors(instances: &[InstanceStatus]) -> String {
    let mut out = String::new();
    for s in instances {
        for (channel, failed) in &s.delivery_errors {
            if out.is_empty() {
                out.push_str("delivery errors (last failed attempt per channel):\n");
            }
            let _ = writeln!(
                out,
                "  {} ({}) via {channel}: {}, attempt {}, at {}",
                s.name, s.id, failed.error, failed.attempt, failed.at
            );
        }
    }
    out
}

/// A fixed-width table of statuses, one line per instance.
pub fn table(instances: &[InstanceStatus]) -> String {
    let rows: Vec<[String; 8]> = instances
        .iter()
        .map(|s| {
            [
                s.id.to_string(),
                s.name.clone(),
                s.state.clone().unwrap_or_else(|| "-".into()),
                s.state_since.clone().unwrap_or_else(|| "-".into()),
                s.phase.to_owned(),
                format!("{}/{}", s.codes_used, s.codes_per_episode),
                format!("{} at {}", s.next_action, s.next_at),
                s.last_error.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let header = [
        "ID",
        "NAME",
        "STATE",
        "SINCE",
        "PHASE",
        "CODES",
        "NEXT",
        "LAST ERROR",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                let _ = write!(out, "{cell}");
            } else {
                let _ = write!(out, "{cell:<w$}  ");
            }
        }
        out.push('\n');
    };
    line(&header);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(name: &str, errors: serde_json::Value) -> InstanceStatus {
        serde_json::from_value(serde_json::json!({
            "id": 1101000001u64, "name": name, "state": "notAuthorized", "state_since": null,
            "phase": "linking", "episode_started": null, "codes_used": 1, "codes_per_episode": 3,
            "code_expires_at": null, "paused_until": null, "next_action": "poll",
            "next_at": "2026-12-01T10:00:00Z", "last_error": null, "consecutive_failures": 0,
            "delivery_errors": errors,
        }))
        .unwrap()
    }

    #[test]
    fn a_channel_failing_for_an_instance_gets_a_line_under_the_table() {
        let failing = status(
            "sales-line",
            serde_json::json!({"hook": {"error": "server (HTTP 503)", "attempt": 3, "at": "2026-12-01T10:00:05Z"}}),
        );
        assert_eq!(
            delivery_errors(&[failing]),
            "delivery errors (last failed attempt per channel):\n  \
             sales-line (1101000001) via hook: server (HTTP 503), attempt 3, at 2026-12-01T10:00:05Z\n"
        );
        assert_eq!(
            delivery_errors(&[status("quiet", serde_json::json!({}))]),
            ""
        );
    }

    #[test]
    fn a_status_from_an_older_daemon_without_delivery_errors_still_reads() {
        let mut old = serde_json::to_value(status("old", serde_json::json!({}))).unwrap();
        old.as_object_mut().unwrap().remove("delivery_errors");
        let read: InstanceStatus = serde_json::from_value(old).unwrap();
        assert!(read.delivery_errors.is_empty());
    }
}
