//! relinkd's command line: parse, set up logging, load the config, run until
//! a signal.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use relinkd::config::{self, Config, LogFormat};
use relinkd::control::Commands;
use relinkd::daemon::Daemon;
use relinkd::{admin_client, demo, sim, telemetry};

const DEFAULT_CONFIG: &str = "/etc/relinkd/relinkd.toml";

#[derive(Parser)]
#[command(version, about = "Keeps GREEN-API WhatsApp instances linked", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Run {
        #[arg(long, short, default_value = DEFAULT_CONFIG, env = "RELINKD_CONFIG")]
        config: PathBuf,
    },
    /// Validate a config file and print a summary; exit 1 if it is invalid.
    CheckConfig {
        #[arg(long, short, default_value = DEFAULT_CONFIG, env = "RELINKD_CONFIG")]
        config: PathBuf,
    },
    /// The whole loop on this machine, no account needed: a simulated
    /// GREEN-API, the daemon, a console channel and a simulated admin.
    Demo(demo::DemoArgs),
    /// Run the GREEN-API simulator alone.
    Sim(sim::SimArgs),
    /// Send a test message through channel NAME; exit 1 with the reason if
    /// it cannot be delivered.
    TestChannel {
        name: String,
        #[arg(long, short, default_value = DEFAULT_CONFIG, env = "RELINKD_CONFIG")]
        config: PathBuf,
    },
    /// Show the running daemon's fleet (via its admin API).
    Status {
        #[arg(long, short, default_value = DEFAULT_CONFIG, env = "RELINKD_CONFIG")]
        config: PathBuf,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        token: admin_client::TokenArgs,
    },
    /// Ask the running daemon for codes now for instance ID (ends a pause).
    Relink {
        id: u64,
        #[arg(long, short, default_value = DEFAULT_CONFIG, env = "RELINKD_CONFIG")]
        config: PathBuf,
        #[command(flatten)]
        token: admin_client::TokenArgs,
    },
}

/// How long exit waits for blocking work still under way (a config read
/// stuck on a file must not keep the process from exiting).
const EXIT_GRACE: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("relinkd: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(dispatch(cli));
    runtime.shutdown_timeout(EXIT_GRACE);
    code
}

async fn dispatch(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run { config } => run(config).await,
        Command::CheckConfig { config } => check_config(config),
        Command::Demo(args) => {
            telemetry::init(LogFormat::Text);
            report(demo::run(args, shutdown_signal()).await)
        }
        Command::Sim(args) => {
            telemetry::init(LogFormat::Text);
            report(sim::run_cli(args, shutdown_signal()).await)
        }
        Command::TestChannel { name, config } => test_channel(config, &name).await,
        Command::Status {
            config,
            json,
            token,
        } => report(admin_client::status(&config, &token, json).await),
        Command::Relink { id, config, token } => {
            report(admin_client::relink(&config, &token, id).await)
        }
    }
}

/// The config at `path`, or the reason on stderr and a failing exit code.
fn load_config(path: &std::path::Path) -> Result<Config, ExitCode> {
    config::load(path).map_err(|error| {
        eprintln!("relinkd: {error}");
        ExitCode::FAILURE
    })
}

async fn run(path: PathBuf) -> ExitCode {
    let config = match load_config(&path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    telemetry::init(config.daemon.log_format);
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let listen = config.daemon.listen;
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%listen, %error, "cannot listen on [daemon] listen");
            return ExitCode::FAILURE;
        }
    };
    let daemon = Daemon::new(config);
    reload_on_sighup(daemon.commands());
    report(daemon.run(listener, shutdown_signal()).await)
}

/// SIGHUP sends the daemon the same `Reload` the admin API does.
fn reload_on_sighup(commands: Commands) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler installs");
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            commands.request_reload();
        }
    });
}

async fn test_channel(path: PathBuf, name: &str) -> ExitCode {
    let config = match load_config(&path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    telemetry::init(config.daemon.log_format);
    match relinkd::test_channel::run(&config, name).await {
        Ok(()) => {
            println!("channel {name}: test message delivered");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("relinkd: {error}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(path: PathBuf) -> ExitCode {
    let config = match load_config(&path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    for warning in &config.warnings {
        eprintln!("warning: {warning}");
    }
    println!(
        "{}: ok: {} instances, {} channels, listen {}, digest {}",
        path.display(),
        config.instances.len(),
        config.channels.len(),
        config.daemon.listen,
        &config.digest[..config.digest.len().min(12)],
    );
    ExitCode::SUCCESS
}

fn report<E: std::fmt::Display>(result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("relinkd: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (systemd stop). The handlers are
/// installed now, before the daemon reports ready.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler installs");
    async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    }
}
