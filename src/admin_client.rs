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
        let daemon = config::load_daemon_section(path, &ProcessEnv, override_token.is_none())?;
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
