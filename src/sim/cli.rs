//! `relinkd sim`: run a simulated fleet from the command line.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::state::{AUTHORIZED, NOT_AUTHORIZED};
use super::{SimConfig, SimInstance, SimTls, Simulator, serve, serve_tls};

/// Arguments of `relinkd sim`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7700")]
    pub listen: SocketAddr,
    /// Number of instances.
    #[arg(long, default_value_t = 5)]
    pub instances: u64,
    /// How many of them (the first ones) start notAuthorized; the rest are authorized.
    #[arg(long, default_value_t = 1)]
    pub unlinked: u64,
    /// Id of the first instance; ids are consecutive.
    #[arg(long, default_value_t = 1_101_000_001)]
    pub first_id: u64,
    /// API token shared by all instances.
    #[arg(long, default_value = "sim-token")]
    pub token: String,
    /// Phone numbers: the i-th instance (counting from 0) gets phone-base + i.
    #[arg(long, default_value_t = 441_234_500_000)]
    pub phone_base: u64,
    /// How long a linking code stays valid.
    #[arg(long, default_value = "150s", value_parser = humantime::parse_duration)]
    pub code_ttl: Duration,
    /// Minimum time between two accepted state calls (and code requests) per instance.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub state_call_interval: Duration,
    /// Serve HTTPS, as the vendor does: a CA and a certificate for
    /// 127.0.0.1, ::1 and localhost are made at start, and the CA
    /// certificate (PEM) is written to CA_FILE, for relinkd's
    /// `[daemon] ca_file = "CA_FILE"`. The base URL becomes https://.
    #[arg(long, value_name = "CA_FILE")]
    pub tls: Option<PathBuf>,
}

impl Default for SimArgs {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7700)),
            instances: 5,
            unlinked: 1,
            first_id: 1_101_000_001,
            token: "sim-token".to_owned(),
            phone_base: 441_234_500_000,
            code_ttl: Duration::from_secs(150),
            state_call_interval: Duration::from_secs(1),
            tls: None,
        }
    }
}

/// The fleet described by `args`: ids `first_id + i`, phones `phone_base + i`
/// (i from 0), the first `unlinked` notAuthorized, the rest authorized. Stops
/// early rather than overflow a u64.
pub fn fleet(args: &SimArgs) -> Vec<SimInstance> {
    (0..args.instances)
        .map_while(|i| {
            Some(SimInstance {
                id: args.first_id.checked_add(i)?,
                token: args.token.clone(),
                phone: args.phone_base.checked_add(i)?,
                state: if i < args.unlinked {
                    NOT_AUTHORIZED
                } else {
                    AUTHORIZED
                }
                .to_owned(),
            })
        })
        .collect()
}

/// Builds the fleet, binds, prints how to use it, and serves until `shutdown`.
pub async fn run_cli(
    args: SimArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let sim = Simulator::new(SimConfig {
        code_ttl: args.code_ttl,
        state_call_interval: args.state_call_interval,
    });
    let instances = fleet(&args);
    if instances.is_empty() {
        return Err("relinkd sim: --instances must be at least 1".into());
    }
    for instance in &instances {
        sim.add_instance(instance.clone());
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("relinkd sim: cannot listen on {}: {e}", args.listen))?;
    let tls = match &args.tls {
        Some(path) => {
            let tls = SimTls::generate().map_err(|e| format!("relinkd sim: {e}"))?;
            write_ca(path, tls.ca_pem()).map_err(|e| {
                format!(
                    "relinkd sim: cannot write the CA certificate to {}: {e}",
                    path.display()
                )
            })?;
            Some(tls)
        }
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{}", listener.local_addr()?);
    let banner = banner(&url, &args, &instances);
    {
        let mut out = std::io::stdout().lock();
        out.write_all(banner.as_bytes())?;
        out.flush()?;
    }
    tracing::info!(%url, instances = instances.len(), "GREEN-API simulator listening");
    match &tls {
        Some(tls) => serve_tls(listener, tls, sim, shutdown).await?,
        None => serve(listener, sim, shutdown).await?,
    }
    Ok(())
}

/// Writes the CA certificate whole or not at all (a reader never sees half
/// a file): a temporary file beside `path`, then a rename.
fn write_ca(path: &Path, pem: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(pem.as_bytes())?;
    file.as_file().sync_all()?;
    // A certificate is public: readable by the daemon's user too.
    std::fs::set_permissions(
        file.path(),
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o644),
    )?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// What `relinkd sim` prints at start.
fn banner(url: &str, args: &SimArgs, instances: &[SimInstance]) -> String {
    use std::fmt::Write as _;
    const SHOWN: usize = 10;
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(s, "GREEN-API simulator listening on {url}");
    let _ = writeln!(
        s,
        "code ttl {}, state calls at most 1 per {}",
        humantime::format_duration(args.code_ttl),
        humantime::format_duration(args.state_call_interval)
    );
    if let Some(ca) = &args.tls {
        let _ = writeln!(
            s,
            "TLS: certificate for 127.0.0.1, ::1 and localhost; its CA certificate is in {}",
            ca.display()
        );
    }
    let _ = writeln!(s, "\ninstances (api_url {url}, token {:?}):", args.token);
    for instance in instances.iter().take(SHOWN) {
        let _ = writeln!(
            s,
            "  {}  phone {}  {}",
            instance.id, instance.phone, instance.state
        );
    }
    if instances.len() > SHOWN {
        let _ = writeln!(s, "  ... and {} more", instances.len() - SHOWN);
    }
    let id = instances
        .iter()
        .find(|i| i.state == NOT_AUTHORIZED)
        .or(instances.first())
        .map_or_else(|| "{id}".to_owned(), |i| i.id.to_string());
    let _ = writeln!(s, "\ncontrol endpoints:");
    for (verb, path, what) in [
        (
            "GET   ",
            "/sim/instances".to_owned(),
            "all instances: id, state, code_valid",
        ),
        ("GET   ", format!("/sim/instances/{id}"), "one instance"),
        (
            "GET   ",
            format!("/sim/instances/{id}/code"),
            "the current code",
        ),
        (
            "POST  ",
            format!("/sim/instances/{id}/enter"),
            r#"{"code":"ABCD1234"}: link the device"#,
        ),
        (
            "POST  ",
            format!("/sim/instances/{id}/logout"),
            "unlink the device",
        ),
        (
            "POST  ",
            format!("/sim/instances/{id}/state"),
            r#"{"state":"blocked"}"#,
        ),
        (
            "POST  ",
            format!("/sim/instances/{id}/faults"),
            r#"{"method":"getStateInstance","kind":"status","code":502,"body":"bad gateway","times":3}"#,
        ),
        (
            "DELETE",
            format!("/sim/instances/{id}/faults"),
            "clear faults",
        ),
        (
            "GET   ",
            format!("/sim/instances/{id}/calls"),
            "vendor calls received",
        ),
        (
            "GET   ",
            format!("/sim/instances/{id}/messages"),
            "messages sent",
        ),
    ] {
        let _ = writeln!(s, "  {verb} {url}{path}  {what}");
    }
    let _ = writeln!(
        s,
        "\nexample relinkd config (with GREENAPI_TOKEN={:?} in the environment):\n",
        args.token
    );
    if let Some(ca) = &args.tls {
        let _ = writeln!(s, "[daemon]\nca_file = {:?}\n", ca.display().to_string());
    }
    let _ = writeln!(s, "[[channel]]\nname = \"console\"\ntype = \"console\"");
    for instance in instances.iter().take(SHOWN) {
        let _ = writeln!(
            s,
            "\n[[instance]]\nid = {}\nname = \"sim-{}\"\napi_url = \"{url}\"\n\
             api_token_env = \"GREENAPI_TOKEN\"\nphone = {}\nchannels = [\"console\"]",
            instance.id, instance.id, instance.phone
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_names_the_url_the_instances_and_a_config_snippet() {
        let args = SimArgs::default();
        let instances = fleet(&args);
        let text = banner("http://127.0.0.1:7700", &args, &instances);
        assert!(text.contains("listening on http://127.0.0.1:7700"));
        assert!(text.contains("1101000001  phone 441234500000  notAuthorized"));
        assert!(text.contains("1101000005  phone 441234500004  authorized"));
        assert!(text.contains("[[instance]]\nid = 1101000001\n"));
        assert!(text.contains("POST   http://127.0.0.1:7700/sim/instances/1101000001/enter"));
    }

    #[test]
    fn with_tls_the_banner_names_the_ca_file_and_puts_it_in_the_snippet() {
        let args = SimArgs {
            tls: Some(PathBuf::from("/tmp/sim-ca.pem")),
            ..SimArgs::default()
        };
        let instances = fleet(&args);
        let text = banner("https://127.0.0.1:7700", &args, &instances);
        assert!(text.contains("listening on https://127.0.0.1:7700"));
        assert!(text.contains("its CA certificate is in /tmp/sim-ca.pem"));
        assert!(text.contains("[daemon]\nca_file = \"/tmp/sim-ca.pem\"\n\n[[channel]]"));
        assert!(text.contains("api_url = \"https://127.0.0.1:7700\""));
    }

    #[test]
    fn fleet_stops_before_overflowing() {
        let args = SimArgs {
            first_id: u64::MAX - 1,
            ..SimArgs::default()
        };
        assert_eq!(fleet(&args).len(), 2);
    }
}
