//! relinkd's command line: parse, set up logging, load the config, run until
//! a signal.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory as _, Parser, Subcommand, ValueEnum};
use tracing::Level;

use relinkd::config::{self, Config, LogFormat};
use relinkd::control::Commands;
use relinkd::daemon::Daemon;
use relinkd::{admin_client, demo, manual, sim, telemetry, version};

const DEFAULT_CONFIG: &str = "/etc/relinkd/relinkd.toml";

/// The starter config `relinkd config example` prints.
const STARTER_CONFIG: &str = include_str!("../config/relinkd.starter.toml");

const EXIT_CODES: &str = "\
Exit status:
  0  success
  1  failure (the reason is on stderr)
  2  usage error (unknown command or option)";

#[derive(Parser)]
#[command(
    // -V and --version alike: the revision, the commit date, the compiler.
    version = version::LONG,
    about = "Keeps GREEN-API WhatsApp instances linked",
    after_help = EXIT_CODES,
)]
struct Cli {
    /// Log format, over `[daemon] log_format` (default: the config's, else text).
    #[arg(long, global = true, value_enum, env = "RELINKD_LOG_FORMAT")]
    log_format: Option<LogFormatArg>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

impl From<LogFormatArg> for LogFormat {
    fn from(arg: LogFormatArg) -> Self {
        match arg {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        }
    }
}

/// `--config`, shared by every command that reads one.
#[derive(clap::Args)]
struct ConfigArg {
    /// The config file.
    #[arg(long, short, default_value = DEFAULT_CONFIG, env = "RELINKD_CONFIG")]
    config: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Run {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Validate a config file and print a summary; exit 1 if it is invalid.
    CheckConfig {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Config helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The whole loop on this machine, no account needed: a simulated
    /// GREEN-API, the daemon, a console channel and a simulated admin.
    Demo(demo::DemoArgs),
    /// Run the GREEN-API simulator alone.
    Sim(sim::SimArgs),
    /// Send a test message through one channel, showing each attempt; exit
    /// 1 with the reason if it cannot be delivered.
    TestChannel {
        /// The channel's `name` in the config.
        name: String,
        #[command(flatten)]
        config: ConfigArg,
        /// Send a digest of the fleet instead, through the running daemon
        /// (it knows the fleet; needs the admin token).
        #[arg(long)]
        digest: bool,
        #[command(flatten)]
        token: admin_client::TokenArgs,
    },
    /// Show the running daemon's fleet (via its admin API).
    Status {
        #[command(flatten)]
        config: ConfigArg,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        token: admin_client::TokenArgs,
    },
    /// Ask the running daemon to poll an instance now (ends a pause and
    /// allows one code outside its linking windows; a code that is still
    /// valid is kept).
    Relink {
        /// The instance's id (idInstance) or its `name` in the config.
        instance: String,
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        token: admin_client::TokenArgs,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the man page relinkd(1) (roff), or write every page.
    Man {
        /// Write relinkd.1 and a page per subcommand (relinkd-run.1, ...)
        /// into this directory instead.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print a starter config (its tokens come from environment variables
    /// it names); it passes check-config once they are set.
    Example,
}

/// How long exit waits for blocking work still under way (a config read
/// stuck on a file must not keep the process from exiting).
const EXIT_GRACE: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            print_error(format_args!("cannot start the async runtime: {error}"));
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(dispatch(cli));
    runtime.shutdown_timeout(EXIT_GRACE);
    code
}

/// One worker thread unless `TOKIO_WORKER_THREADS` says otherwise: relinkd
/// waits on the network, and a second worker mostly adds wake-ups between
/// the two (the fleet benchmark measured about 16% more CPU per poll with
/// two). Blocking work (config reads, rendering /metrics) has threads of
/// its own.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        builder.worker_threads(1);
    }
    builder.enable_all().build()
}

async fn dispatch(cli: Cli) -> ExitCode {
    let log_format = cli.log_format.map(LogFormat::from);
    // Commands without a config log as text unless told otherwise.
    let logging = || start_logging(log_format.unwrap_or(LogFormat::Text));
    match cli.command {
        Command::Run { config } => run(&config.config, log_format).await,
        Command::CheckConfig { config } => check_config(&config.config),
        Command::Config(ConfigCommand::Example) => {
            print!("{STARTER_CONFIG}");
            ExitCode::SUCCESS
        }
        Command::Demo(args) => {
            match telemetry::init_for_a_terminal(log_format.unwrap_or(LogFormat::Text))
                .map_err(print_error)
            {
                Ok(()) => report(demo::run(args, shutdown_signal()).await),
                Err(()) => ExitCode::FAILURE,
            }
        }
        Command::Sim(args) => match logging() {
            Ok(()) => report(sim::run_cli(args, shutdown_signal()).await),
            Err(code) => code,
        },
        Command::TestChannel {
            name,
            config,
            digest: true,
            token,
        } => report(admin_client::send_digest(&config.config, &token, &name).await),
        Command::TestChannel { name, config, .. } => {
            test_channel(&config.config, &name, log_format).await
        }
        Command::Status {
            config,
            json,
            token,
        } => report(admin_client::status(&config.config, &token, json).await),
        Command::Relink {
            instance,
            config,
            token,
        } => report(admin_client::relink(&config.config, &token, &instance).await),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "relinkd",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
        // The man pages' footer has room for one line: the version alone.
        Command::Man { dir: None } => report(manual::render(
            Cli::command().version(version::VERSION),
            &mut std::io::stdout(),
        )),
        Command::Man { dir: Some(dir) } => {
            report(manual::write_all(Cli::command().version(version::VERSION), &dir).map(|_| ()))
        }
    }
}

/// `relinkd: {error}` on stderr, at error priority under the journal.
fn print_error(error: impl std::fmt::Display) {
    telemetry::to_stderr(Level::ERROR, format_args!("relinkd: {error}"));
}

/// The config at `path`, or the reason on stderr and a failing exit code.
fn load_config(path: &Path) -> Result<Config, ExitCode> {
    config::load(path).map_err(|error| {
        print_error(error);
        ExitCode::FAILURE
    })
}

/// Logging in `format`, or the reason (a bad `RUST_LOG`) and a failing code.
fn start_logging(format: LogFormat) -> Result<(), ExitCode> {
    telemetry::init(format).map_err(|error| {
        print_error(error);
        ExitCode::FAILURE
    })
}

/// The config, with logging set up in the format asked for (the flag or
/// `RELINKD_LOG_FORMAT` over the config's), and its warnings logged.
fn load_and_log(path: &Path, log_format: Option<LogFormat>) -> Result<Config, ExitCode> {
    let config = load_config(path)?;
    start_logging(log_format.unwrap_or(config.daemon.log_format))?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    Ok(config)
}

async fn run(path: &Path, log_format: Option<LogFormat>) -> ExitCode {
    let config = match load_and_log(path, log_format) {
        Ok(config) => config,
        Err(code) => return code,
    };
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

async fn test_channel(path: &Path, name: &str, log_format: Option<LogFormat>) -> ExitCode {
    let config = match load_and_log(path, log_format) {
        Ok(config) => config,
        Err(code) => return code,
    };
    match relinkd::test_channel::run(&config, name).await {
        Ok(()) => {
            println!("channel {name}: test message delivered");
            ExitCode::SUCCESS
        }
        Err(error) => {
            print_error(error);
            ExitCode::FAILURE
        }
    }
}

fn check_config(path: &Path) -> ExitCode {
    let config = match load_config(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    for warning in &config.warnings {
        telemetry::to_stderr(Level::WARN, format_args!("warning: {warning}"));
    }
    println!(
        "{}: ok: {} instances, {} channels, listen {}, digest {}",
        path.display(),
        config.instances.len(),
        config.channels.len(),
        config.daemon.listen,
        &config.digest[..config.digest.len().min(12)],
    );
    for line in config.daemon.egress.describe() {
        println!("{line}");
    }
    ExitCode::SUCCESS
}

fn report<E: std::fmt::Display>(result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            print_error(error);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_argument_has_help() {
        fn check(command: &clap::Command, path: &str) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                assert!(arg.get_help().is_some(), "{path} {id} has no help text");
            }
            for sub in command.get_subcommands() {
                assert!(
                    sub.get_about().is_some(),
                    "{path} {} has no about",
                    sub.get_name()
                );
                check(sub, &format!("{path} {}", sub.get_name()));
            }
        }
        check(&Cli::command(), "relinkd");
    }
}
