//! What every config test uses: a scratch directory, a minimal valid
//! config and edits of it, and loading with a chosen environment.

pub use std::collections::HashMap;
pub use std::fs;
pub use std::os::unix::fs::PermissionsExt;
pub use std::path::{Path, PathBuf};
pub use std::time::Duration;

pub use base64::Engine as _;
pub use relinkd::config::{
    ChannelKind, Config, ConfigError, EmailTls, InstanceSettings, LogFormat, TemplateOverrides,
    WebhookSecret, load_with,
};
pub use secrecy::ExposeSecret;

use std::sync::atomic::{AtomicUsize, Ordering};

/// A scratch directory removed on drop (no tempfile crate in the tree).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "relinkd-config-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `name` (creating parent dirs) with mode 0600.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        self.write_mode(name, contents, 0o600)
    }

    pub fn write_mode(&self, name: &str, contents: &str, mode: u32) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent");
        }
        fs::write(&path, contents).expect("write file");
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef00";

/// A minimal valid config: one console channel, one instance whose token is
/// in the file `token` next to the config.
pub const BASE: &str = r#"
[[channel]]
name = "ops"
type = "console"

[[instance]]
id = 1101000001
name = "sales-line"
api_url = "https://1101.api.greenapi.com/"
api_token_file = "token"
phone = 441234567890
channels = ["ops"]
"#;

/// Writes `toml` as `relinkd.toml` next to a 0600 `token` file and loads it
/// with `environment`.
pub fn load_in(
    dir: &TempDir,
    toml: &str,
    environment: &HashMap<String, String>,
) -> Result<Config, ConfigError> {
    dir.write("token", &format!("{TOKEN}\n"));
    let path = dir.write("relinkd.toml", toml);
    load_with(&path, environment)
}

pub fn load_str(toml: &str) -> Result<Config, ConfigError> {
    load_in(&TempDir::new(), toml, &env(&[]))
}

pub fn ok(toml: &str) -> Config {
    match load_str(toml) {
        Ok(config) => config,
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

/// The error `toml` must produce: as displayed (each item by its name and
/// line, as `places` specifies), then each problem under its plain key path
/// (`relinkd.toml: instance[0].phone: ...`), so a case can name the key it is about
/// whatever the item is called.
pub fn error(toml: &str) -> String {
    error_with(toml, &env(&[]))
}

pub fn error_with(toml: &str, environment: &HashMap<String, String>) -> String {
    let dir = TempDir::new();
    match load_in(&dir, toml, environment) {
        Ok(_) => panic!("expected an error for:\n{toml}"),
        Err(e) => {
            let file = dir.path().join("relinkd.toml");
            let keyed: Vec<String> = e
                .issues()
                .iter()
                .map(|i| format!("{}: {}: {}", file.display(), i.key, i.message))
                .collect();
            format!("{e}\n{BY_KEY}\n{}", keyed.join("\n"))
        }
    }
}

/// The lines of `error`'s output as the operator sees them (its items
/// placed by name and line, not by key path).
pub fn shown(error: &str) -> Vec<&str> {
    error.lines().take_while(|l| *l != BY_KEY).collect()
}

/// Where `error`'s output turns from what is shown to the problems by key.
const BY_KEY: &str = "-- by key path --";

/// One bad config per case: what it shows, the config, and the texts its
/// error must contain.
pub type Rejection<'a> = (&'a str, String, &'a [&'a str]);

/// Every case is refused with its texts, loaded with `environment`.
pub fn assert_rejected_with(cases: &[Rejection<'_>], environment: &HashMap<String, String>) {
    for (what, toml, needles) in cases {
        let e = error_with(toml, environment);
        for needle in *needles {
            assert!(e.contains(needle), "{what}: expected {needle:?} in:\n{e}");
        }
    }
}

/// Every case is refused with its texts.
pub fn assert_rejected(cases: &[Rejection<'_>]) {
    assert_rejected_with(cases, &env(&[]));
}

pub fn assert_has(haystack: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            haystack.contains(needle),
            "expected {needle:?} in:\n{haystack}"
        );
    }
}

/// `text` with `from` replaced by `to`; fails if `from` is not there (an
/// edit that does nothing would test the unedited config).
pub fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} is not in:\n{text}");
    text.replace(from, to)
}

pub fn replace(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "BASE has no {from:?}");
    BASE.replacen(from, to, 1)
}

pub fn with_instance_key(line: &str) -> String {
    replace(
        "channels = [\"ops\"]",
        &format!("channels = [\"ops\"]\n{line}"),
    )
}

pub fn with_defaults(body: &str) -> String {
    format!("[defaults]\n{body}\n{BASE}")
}

pub fn with_daemon(body: &str) -> String {
    format!("[daemon]\n{body}\n{BASE}")
}

/// BASE with one more channel, `extra` (channel[0]), which the instance
/// (id 1101000001) also uses. `body` is the rest of its `[[channel]]` table.
pub fn with_channel(body: &str) -> String {
    let base = BASE.replacen("channels = [\"ops\"]", "channels = [\"ops\", \"extra\"]", 1);
    format!("[[channel]]\nname = \"extra\"\n{body}\n{base}")
}

/// The environment the channel tests take their secrets from.
pub fn channel_env() -> HashMap<String, String> {
    env(&[
        ("BOT_TOKEN", "123456:bot-token"),
        ("SLACK_URL", "https://hooks.slack.com/services/T0/B0/xyz"),
        ("SMTP_PASSWORD", "smtp-password"),
    ])
}

pub fn ok_channel(body: &str) -> Config {
    match load_in(&TempDir::new(), &with_channel(body), &channel_env()) {
        Ok(config) => config,
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

pub fn channel_error(body: &str) -> String {
    let e = error_with(&with_channel(body), &channel_env());
    if std::env::var_os("SHOW").is_some() {
        eprintln!("---\n{e}");
    }
    e
}

pub const TELEGRAM: &str =
    "type = \"telegram\"\nbot_token_env = \"BOT_TOKEN\"\nchat_id = -1001234567890\n";
pub const SLACK: &str = "type = \"slack\"\nurl_env = \"SLACK_URL\"\n";
pub const EMAIL: &str = "type = \"email\"\nsmtp_host = \"smtp.example.com\"\n\
                     from = \"relinkd <relinkd@example.com>\"\nto = [\"ops@example.com\"]\n";
/// Sends through instance 7, which the test configs add with [`SENDER`].
pub const WHATSAPP: &str = "type = \"whatsapp\"\nvia = 7\nchat_ids = [\"79001234567@c.us\"]\n";
pub const SENDER: &str = "\n[[instance]]\nid = 7\nname = \"sender\"\n\
                      api_url = \"https://7103.api.green-api.com\"\napi_token_file = \"token\"\n\
                      phone = 79001234567\nchannels = [\"ops\"]\n";
