//! `relinkd demo`: the whole loop on this machine with no account. A
//! simulated GREEN-API with four instances (one unlinked, one restricted),
//! the daemon against it, a console channel that prints codes, and a
//! simulated admin who receives codes by signed webhook and enters them.

use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine as _;
use tokio::net::TcpListener;

use crate::daemon::Daemon;
use crate::delivery::webhook::sign;
use crate::sim::{SimConfig, SimInstance, Simulator};

const TOKEN: &str = "demo-token-not-a-secret";
const HOOK_KEY: &[u8] = b"relinkd demo webhook signing key";
const INSTANCES: [(u64, &str, &str); 4] = [
    (1101000001, "sales-line", "notAuthorized"),
    (1101000002, "support-line", "authorized"),
    (1101000003, "billing-line", "authorized"),
    (1101000004, "promo-line", "yellowCard"),
];
/// The instance whose phone "drops its link" during the demo.
const DROPS: u64 = 1101000003;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Where the daemon serves /metrics (a free port is used if taken).
    #[arg(long, default_value = "127.0.0.1:7788")]
    pub listen: SocketAddr,
    /// How long the simulated admin takes to enter a delivered code.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub admin_delay: Duration,
    /// How long after start billing-line's phone drops its link.
    #[arg(long, default_value = "40s", value_parser = humantime::parse_duration)]
    pub drop_after: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo: {0}")]
    Io(#[from] std::io::Error),
    #[error("demo: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Daemon(#[from] crate::daemon::DaemonError),
}

pub async fn run(
    args: DemoArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DemoError> {
    let sim = Simulator::new(SimConfig {
        code_ttl: Duration::from_secs(60),
        ..SimConfig::default()
    });
    for (i, (id, _, state)) in INSTANCES.iter().enumerate() {
        sim.add_instance(SimInstance {
            id: *id,
            token: TOKEN.into(),
            phone: 441234500001 + i as u64,
            state: (*state).into(),
        });
    }
    let sim_listener = TcpListener::bind("127.0.0.1:0").await?;
    let sim_addr = sim_listener.local_addr()?;
    tokio::spawn(crate::sim::serve(
        sim_listener,
        sim.clone(),
        std::future::pending(),
    ));

    let admin_addr = start_simulated_admin(sim.clone(), args.admin_delay).await?;
    let listener = match TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(_) => TcpListener::bind("127.0.0.1:0").await?,
    };
    let listen = listener.local_addr()?;
    let dir = DemoDir::create()?;
    let config_path = dir.write_config(sim_addr, admin_addr, listen)?;
    let config = crate::config::load_with(&config_path, &Direct)?;
    println!(
        "\nrelinkd demo\n\
         - simulated GREEN-API: http://{sim_addr} (instances: http://{sim_addr}/sim/instances)\n\
         - config used:         {}\n\
         - metrics:             http://{listen}/metrics\n\
         - fleet status, from another terminal:\n    {relinkd} status --config {config}\n\
         - sales-line is unlinked: watch its code arrive below; a simulated admin enters it \
           after {}.\n\
         - promo-line is restricted (yellowCard): one alert, no codes.\n\
         - billing-line's phone drops its link after {}.\n\
         Ctrl-C stops the demo.\n",
        config_path.display(),
        humantime::format_duration(args.admin_delay),
        humantime::format_duration(args.drop_after),
        config = crate::terminal::shell_quote(&path_str(&config_path)),
        relinkd = crate::terminal::shell_quote(&this_binary()),
    );

    let drop_after = args.drop_after;
    let dropping = sim.clone();
    tokio::spawn(async move {
        tokio::time::sleep(drop_after).await;
        dropping.logout(DROPS);
        println!("\n[demo] billing-line's phone dropped its link (simulated logout)\n");
    });

    let loader: crate::daemon::Loader =
        std::sync::Arc::new(|path: &Path| crate::config::load_with(path, &Direct));
    Daemon::new(config)
        .with_loader(loader)
        .run(listener, shutdown)
        .await?;
    println!("relinkd demo stopped.");
    Ok(())
}

/// The process environment less its proxy variables: every connection the
/// demo makes stays on 127.0.0.1, whatever proxy the shell names.
struct Direct;

impl crate::config::Environment for Direct {
    fn var(&self, name: &str) -> Option<String> {
        if crate::outbound::PROXY_VARIABLES.contains(&name) {
            return None;
        }
        crate::config::ProcessEnv.var(name)
    }
}

/// This program as a command that runs from any directory: after `cargo
/// run` nothing named relinkd is on `PATH`.
fn this_binary() -> String {
    std::env::current_exe()
        .map(|path| path.display().to_string())
        .unwrap_or_else(|_| "relinkd".to_owned())
}

/// Receives signed webhooks like an admin's integration would, and "enters"
/// each code after a human's delay.
async fn start_simulated_admin(sim: Simulator, delay: Duration) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new()
        .route("/hook", post(admin_hook))
        .with_state((sim, delay));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

async fn admin_hook(
    State((sim, delay)): State<(Simulator, Duration)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(id), Some(timestamp), Some(signature)) = (
        header("webhook-id"),
        header("webhook-timestamp").and_then(|t| t.parse::<u64>().ok()),
        header("webhook-signature"),
    ) else {
        return StatusCode::BAD_REQUEST;
    };
    if sign(HOOK_KEY, id, timestamp, &body) != signature {
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    if let (Some("code"), Some(instance), Some(code)) = (
        event["event"].as_str(),
        event["instance"]["id"].as_u64(),
        event["code"].as_str(),
    ) {
        let name = event["instance"]["name"].as_str().unwrap_or("?").to_owned();
        let code = code.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            match sim.enter_code(instance, &code) {
                Ok(()) => println!("\n[demo] the admin of {name} entered the code in WhatsApp\n"),
                Err(e) => println!("\n[demo] the admin of {name} could not enter the code: {e}\n"),
            }
        });
    }
    StatusCode::NO_CONTENT
}

/// A private directory for the demo's config and secret files, removed on exit.
struct DemoDir(PathBuf);

impl DemoDir {
    fn create() -> std::io::Result<Self> {
        let path = std::env::temp_dir().join(format!("relinkd-demo-{}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))?;
        Ok(Self(path))
    }

    fn secret_file(&self, name: &str, contents: &str) -> std::io::Result<PathBuf> {
        let path = self.0.join(name);
        std::fs::write(&path, contents)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        Ok(path)
    }

    fn write_config(
        &self,
        sim: SocketAddr,
        admin: SocketAddr,
        listen: SocketAddr,
    ) -> std::io::Result<PathBuf> {
        let token = self.secret_file("greenapi-token", TOKEN)?;
        let admin_token =
            self.secret_file("admin-token", &format!("{:032x}", rand::random::<u128>()))?;
        let secret = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(HOOK_KEY)
        );
        let secret = self.secret_file("admin-hook.whsec", &secret)?;
        let mut toml = format!(
            "# Written by `relinkd demo`.\n\
             [daemon]\nlisten = \"{listen}\"\nstate_dir = {state:?}\nadmin_token_file = {admin_token:?}\n\n\
             [defaults]\npoll_interval = \"10s\"\nlinking_poll_interval = \"2s\"\n\
             code_ttl = \"60s\"\ncodes_per_episode = 4\ncooldown = \"5m\"\nrequest_timeout = \"10s\"\n\n\
             [[channel]]\nname = \"console\"\ntype = \"console\"\n\n\
             [[channel]]\nname = \"admin\"\ntype = \"webhook\"\nurl = \"http://{admin}/hook\"\n\
             secret_file = {secret:?}\n",
            state = path_str(&self.0.join("state")),
            admin_token = path_str(&admin_token),
            secret = path_str(&secret),
        );
        for (i, (id, name, _)) in INSTANCES.iter().enumerate() {
            toml.push_str(&format!(
                "\n[[instance]]\nid = {id}\nname = \"{name}\"\napi_url = \"http://{sim}\"\n\
                 api_token_file = {token:?}\nphone = {phone}\nchannels = [\"console\", \"admin\"]\n",
                token = path_str(&token),
                phone = 441234500001 + i as u64,
            ));
        }
        let path = self.0.join("relinkd.toml");
        std::fs::write(&path, toml)?;
        Ok(path)
    }
}

fn path_str(path: &Path) -> String {
    path.display().to_string()
}

impl Drop for DemoDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
