//! The man pages: relinkd(1) and one page per subcommand (relinkd-run(1),
//! relinkd-config-example(1), ...), rendered by clap_mangen from the command
//! line's own definition, with the sections clap cannot know: EXIT STATUS on
//! every page, ENVIRONMENT and FILES on relinkd(1). `relinkd man` prints
//! relinkd(1); `relinkd man --dir DIR` writes every page, as the packages
//! ship them.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};

/// What each exit status means (the same on every command).
pub const EXIT_STATUS: [(&str, &str); 3] = [
    ("0", "Success."),
    (
        "1",
        "Failure: the config is invalid, the daemon cannot be reached, a message \
         cannot be delivered, ...; the reason is on standard error.",
    ),
    (
        "2",
        "Usage error: an unknown command or option, a missing argument.",
    ),
];

/// Every environment variable relinkd reads, with what it does. The
/// variables a config's `*_env` keys name are the admin's own.
pub const ENVIRONMENT: [(&str, &str); 13] = [
    (
        "RELINKD_CONFIG",
        "The config file, when --config is not given (default /etc/relinkd/relinkd.toml).",
    ),
    (
        "RELINKD_LOG_FORMAT",
        "text or json, as --log-format; over the config's [daemon] log_format.",
    ),
    (
        "RELINKD_ADMIN_TOKEN_FILE",
        "A file holding the admin token, as --admin-token-file (status, relink, \
         test-channel --digest).",
    ),
    (
        "RUST_LOG",
        "Which log lines are written, as an EnvFilter directive (default info, e.g. \
         relinkd=debug); an invalid value is an error at start-up.",
    ),
    (
        "TOKIO_WORKER_THREADS",
        "Worker threads of the async runtime (default 1).",
    ),
    (
        "HTTPS_PROXY, https_proxy",
        "Proxy for HTTPS requests to GREEN-API and the channels (upper case first).",
    ),
    (
        "HTTP_PROXY, http_proxy",
        "Proxy for plain HTTP requests; ignored when REQUEST_METHOD is set (a CGI \
         environment, where a client could set it).",
    ),
    (
        "ALL_PROXY, all_proxy",
        "Proxy for requests the two above do not cover.",
    ),
    (
        "NO_PROXY, no_proxy",
        "Hosts reached directly, not through a proxy (comma-separated).",
    ),
    (
        "STATE_DIRECTORY",
        "Set by systemd (StateDirectory=): the default [daemon] state_dir (else ./state).",
    ),
    (
        "CREDENTIALS_DIRECTORY",
        "Set by systemd (LoadCredential=): where *_credential secrets are read.",
    ),
    (
        "JOURNAL_STREAM",
        "Set by systemd when standard error is the journal: each log line then starts \
         with its syslog priority, so journalctl -p warning finds warnings and errors.",
    ),
    (
        "NOTIFY_SOCKET, WATCHDOG_USEC",
        "Set by systemd (Type=notify, WatchdogSec=): readiness, reload and stop \
         notifications and watchdog pings.",
    ),
];

/// The files relinkd and its package use.
pub const FILES: [(&str, &str); 7] = [
    (
        "/etc/relinkd/relinkd.toml",
        "The config (a conffile of the package; check it with relinkd check-config).",
    ),
    (
        "/etc/relinkd/credentials/",
        "Where the unit's example drop-in loads tokens and secrets from (LoadCredential=).",
    ),
    (
        "/var/lib/relinkd/state.json",
        "Episodes and codes across restarts (the unit's StateDirectory=).",
    ),
    (
        "/lib/systemd/system/relinkd.service",
        "The hardened unit; change it with drop-ins in /etc/systemd/system/relinkd.service.d/.",
    ),
    (
        "/usr/share/doc/relinkd/examples/",
        "relinkd.example.toml, relinkd.starter.toml and credentials.conf.example (a drop-in).",
    ),
    (
        "/usr/share/relinkd/",
        "Prometheus rules, an Alertmanager example and a Grafana dashboard.",
    ),
    (
        "/usr/share/doc/relinkd/README.md",
        "The full documentation: configuration, channels, metrics, the runbook.",
    ),
];

/// Renders relinkd(1) of `cli` (the whole command line) into `w`.
pub fn render(cli: clap::Command, w: &mut dyn Write) -> io::Result<()> {
    page(&built(cli), true, w)
}

/// Writes every page of `cli` into `dir` (`relinkd.1`, `relinkd-run.1`,
/// ...); returns their paths, relinkd(1) first.
pub fn write_all(cli: clap::Command, dir: &Path) -> io::Result<Vec<PathBuf>> {
    fn write(cmd: &clap::Command, top: bool, dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
        let name = cmd.get_display_name().unwrap_or_else(|| cmd.get_name());
        let path = dir.join(format!("{name}.1"));
        let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        let mut file = io::BufWriter::new(std::fs::File::create(&path).map_err(named)?);
        page(cmd, top, &mut file).map_err(named)?;
        file.flush().map_err(named)?;
        out.push(path);
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            write(sub, false, dir, out)?;
        }
        Ok(())
    }
    let mut out = Vec::new();
    write(&built(cli), true, dir, &mut out)?;
    Ok(out)
}

/// `cli` as the pages show it: built (so each subcommand knows its page's
/// name, `relinkd-run`, and the global options), and without clap's `help`
/// subcommand, which would be listed as a page no one writes.
fn built(cli: clap::Command) -> clap::Command {
    let mut cmd = cli.disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// One page: what clap_mangen renders, then EXIT STATUS, and on relinkd(1)
/// (`top`) ENVIRONMENT and FILES; subcommands' pages point to relinkd(1).
fn page(cmd: &clap::Command, top: bool, w: &mut dyn Write) -> io::Result<()> {
    let man = Man::new(cmd.clone()).source(format!("relinkd {}", crate::version::VERSION));
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(w)?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(w)?;
    }
    // relinkd's after-help is its exit codes: EXIT STATUS says it here.
    if !top && (cmd.get_after_help().is_some() || cmd.get_after_long_help().is_some()) {
        man.render_extra_section(w)?;
    }
    let mut roff = Roff::new();
    listed(&mut roff, "EXIT STATUS", &EXIT_STATUS);
    if top {
        listed(&mut roff, "ENVIRONMENT", &ENVIRONMENT);
        listed(&mut roff, "FILES", &FILES);
        roff.control("SH", ["SEE ALSO"]);
        roff.text([
            roman("systemctl(1), journalctl(1), systemd-creds(1), systemd.exec(5); "),
            roman("the README, /usr/share/doc/relinkd/README.md."),
        ]);
    } else {
        let environment = options_environment(cmd);
        if !environment.is_empty() {
            let entries: Vec<(&str, &str)> = environment
                .iter()
                .map(|(name, what)| (name.as_str(), what.as_str()))
                .collect();
            listed(&mut roff, "ENVIRONMENT", &entries);
        }
        roff.control("SH", ["SEE ALSO"]);
        roff.text([
            bold("relinkd"),
            roman("(1), for every variable relinkd reads and the files it uses."),
        ]);
    }
    roff.to_writer(w)?;
    if cmd.get_version().is_some() || cmd.get_long_version().is_some() {
        man.render_version_section(w)?;
    }
    Ok(())
}

/// The variables `cmd`'s options take their values from, each with what
/// [`ENVIRONMENT`] says of it (else which option it stands for).
fn options_environment(cmd: &clap::Command) -> Vec<(String, String)> {
    cmd.get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter_map(|arg| {
            let name = arg.get_env()?.to_string_lossy().into_owned();
            let what = ENVIRONMENT
                .iter()
                .find(|(names, _)| names.split(", ").any(|n| n == name))
                .map(|(_, what)| (*what).to_owned())
                .unwrap_or_else(|| match arg.get_long() {
                    Some(long) => format!("As --{long}."),
                    None => format!("As {}.", arg.get_id()),
                });
            Some((name, what))
        })
        .collect()
}

/// A section of tagged paragraphs: each name in bold (a path in italics).
fn listed(roff: &mut Roff, heading: &str, entries: &[(&str, &str)]) {
    roff.control("SH", [heading]);
    for (name, what) in entries {
        roff.control("TP", []);
        roff.text([if name.starts_with('/') {
            italic(*name)
        } else {
            bold(*name)
        }]);
        roff.text([roman(*what)]);
    }
}
