//! Integration tests of `relinkd::config` through its public API.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use relinkd::config::{
    ChannelKind, Config, ConfigError, EmailTls, InstanceSettings, LogFormat, TemplateOverrides,
    WebhookSecret, load_with,
};
use secrecy::ExposeSecret;

// ---------------------------------------------------------------- helpers

/// A scratch directory removed on drop (no tempfile crate in the tree).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
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

    fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `name` (creating parent dirs) with mode 0600.
    fn write(&self, name: &str, contents: &str) -> PathBuf {
        self.write_mode(name, contents, 0o600)
    }

    fn write_mode(&self, name: &str, contents: &str, mode: u32) -> PathBuf {
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

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef00";

/// A minimal valid config: one console channel, one instance whose token is
/// in the file `token` next to the config.
const BASE: &str = r#"
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
fn load_in(
    dir: &TempDir,
    toml: &str,
    environment: &HashMap<String, String>,
) -> Result<Config, ConfigError> {
    dir.write("token", &format!("{TOKEN}\n"));
    let path = dir.write("relinkd.toml", toml);
    load_with(&path, environment)
}

fn load_str(toml: &str) -> Result<Config, ConfigError> {
    load_in(&TempDir::new(), toml, &env(&[]))
}

fn ok(toml: &str) -> Config {
    match load_str(toml) {
        Ok(config) => config,
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

/// The Display of the error `toml` must produce.
fn error(toml: &str) -> String {
    error_with(toml, &env(&[]))
}

fn error_with(toml: &str, environment: &HashMap<String, String>) -> String {
    match load_in(&TempDir::new(), toml, environment) {
        Ok(_) => panic!("expected an error for:\n{toml}"),
        Err(e) => e.to_string(),
    }
}

fn assert_has(haystack: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            haystack.contains(needle),
            "expected {needle:?} in:\n{haystack}"
        );
    }
}

/// `text` with `from` replaced by `to`; fails if `from` is not there (an
/// edit that does nothing would test the unedited config).
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} is not in:\n{text}");
    text.replace(from, to)
}

fn replace(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "BASE has no {from:?}");
    BASE.replacen(from, to, 1)
}

fn with_instance_key(line: &str) -> String {
    replace(
        "channels = [\"ops\"]",
        &format!("channels = [\"ops\"]\n{line}"),
    )
}

fn with_defaults(body: &str) -> String {
    format!("[defaults]\n{body}\n{BASE}")
}

fn with_daemon(body: &str) -> String {
    format!("[daemon]\n{body}\n{BASE}")
}

// ------------------------------------------------------------- positives

#[test]
fn full_fixture_loads_every_key() {
    let dir = TempDir::new();
    let path = dir.write("relinkd.toml", include_str!("fixtures/config/full.toml"));
    dir.write("secrets/admin", "admin-token-value\n");
    dir.write("secrets/1101000001", "token-one\n\n");
    let files_key = base64::engine::general_purpose::STANDARD.encode(b"files key bytes");
    dir.write("secrets/files.whsec", &format!("whsec_{files_key}\n"));
    dir.write("creds/token-7", "token-seven");
    dir.write("creds/audit-secret", "YXVkaXQ"); // bare base64 of "audit", no padding
    dir.write("secrets/telegram-bot", "123456:bot-file-token\n");
    dir.write("creds/tg-token", "123456:bot-cred-token");
    dir.write(
        "secrets/slack-url",
        "https://hooks.slack.com/services/T0/B0/file\n",
    );
    dir.write(
        "creds/slack-url",
        "https://hooks.slack.com/services/T0/B0/cred",
    );
    dir.write("creds/smtp-password", "smtp-cred-password");
    dir.write("secrets/smtp-password", "smtp-file-password\n");
    let ops_key = base64::engine::general_purpose::STANDARD.encode(b"ops key");
    let environment = env(&[
        ("OPS_HOOK_SECRET", &format!("whsec_{ops_key}")),
        ("SUPPORT_TOKEN", "token-two"),
        ("TG_TOKEN", "123456:bot-env-token"),
        ("SLACK_URL", "https://hooks.slack.com/services/T0/B0/env"),
        ("SMTP_PASSWORD", "smtp-env-password"),
        (
            "CREDENTIALS_DIRECTORY",
            dir.path().join("creds").to_str().unwrap(),
        ),
        ("STATE_DIRECTORY", "/ignored/because/state_dir/is/set"),
    ]);
    let config = load_with(&path, &environment).unwrap_or_else(|e| panic!("{e}"));

    let bytes = fs::read(&path).unwrap();
    assert_eq!(config.digest, relinkd::config::sha256_hex(&bytes));
    assert_eq!(config.digest.len(), 64);
    assert!(
        config
            .digest
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    assert_eq!(config.path, path);

    let d = &config.daemon;
    assert_eq!(d.listen, "0.0.0.0:9100".parse().unwrap());
    assert_eq!(d.state_dir, PathBuf::from("/var/lib/relinkd-test"));
    assert_eq!(d.log_format, LogFormat::Json);
    assert_eq!(
        d.admin_token.as_ref().unwrap().expose_secret(),
        "admin-token-value"
    );
    assert_eq!(d.max_concurrent_requests, 128);

    assert_eq!(config.channels.len(), 15);
    let ops = config.channel("ops-hook").unwrap();
    assert_eq!(ops.attempt_timeout, Duration::from_secs(5));
    assert_eq!(ops.rate_limit_per_minute, Some(120));
    assert_eq!(
        ops.templates,
        TemplateOverrides {
            code: Some("{{ instance_name }}: {{ code }} (expires {{ expires_at_utc }})".into()),
            linked: Some("{{ instance_name }} is linked".into()),
            paused: Some("{{ instance_name }}: paused until {{ paused_until_utc }}".into()),
            alert: Some("{{ instance_name }} is {{ state }}".into()),
            resumed: Some("{{ instance_name }}: codes resume".into()),
            subject: None,
        }
    );
    match &ops.kind {
        ChannelKind::Webhook(relinkd::config::WebhookConfig { url, secret }) => {
            assert_eq!(url, "https://hooks.example.com/relinkd");
            assert_eq!(secret.as_ref().unwrap().expose(), b"ops key");
        }
        other => panic!("{other:?}"),
    }
    match &config.channel("audit.hook_2").unwrap().kind {
        ChannelKind::Webhook(relinkd::config::WebhookConfig { url, secret }) => {
            assert_eq!(url, "http://127.0.0.1:8080/hook");
            assert_eq!(secret.as_ref().unwrap().expose(), b"audit");
        }
        other => panic!("{other:?}"),
    }
    match &config.channel("files-hook").unwrap().kind {
        ChannelKind::Webhook(relinkd::config::WebhookConfig { secret, .. }) => {
            assert_eq!(secret.as_ref().unwrap().expose(), b"files key bytes")
        }
        other => panic!("{other:?}"),
    }
    let console = config.channel("console").unwrap();
    assert!(matches!(console.kind, ChannelKind::Console(_)));
    assert_eq!(console.attempt_timeout, Duration::from_secs(1));
    assert_eq!(console.rate_limit_per_minute, None);
    assert_eq!(console.templates, TemplateOverrides::default());

    let telegram = |name: &str| match &config.channel(name).unwrap().kind {
        ChannelKind::Telegram(relinkd::config::TelegramConfig {
            bot_token,
            chat_id,
            api_base,
        }) => (
            bot_token.expose_secret().to_owned(),
            chat_id.clone(),
            api_base.clone(),
        ),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        telegram("tg-ops"),
        (
            "123456:bot-file-token".to_owned(),
            "-1001234567890".to_owned(),
            "https://tg-proxy.example.com/bot-api".to_owned()
        )
    );
    assert_eq!(
        telegram("tg-channel"),
        (
            "123456:bot-env-token".to_owned(),
            "@relinkd_alerts".to_owned(),
            "https://api.telegram.org".to_owned()
        )
    );
    assert_eq!(telegram("tg-group").0, "123456:bot-cred-token");
    assert_eq!(telegram("tg-group").1, "-100777");
    let tg_ops = config.channel("tg-ops").unwrap();
    assert_eq!(tg_ops.attempt_timeout, Duration::from_secs(8));
    assert_eq!(tg_ops.rate_limit_per_minute, Some(15));
    assert_eq!(
        config
            .channel("tg-group")
            .unwrap()
            .templates
            .code
            .as_deref(),
        Some("<b>{{ code }}</b>")
    );

    for (name, url) in [
        ("slack-ops", "https://hooks.slack.com/services/T0/B0/file"),
        ("slack-env", "https://hooks.slack.com/services/T0/B0/env"),
        ("slack-cred", "https://hooks.slack.com/services/T0/B0/cred"),
    ] {
        match &config.channel(name).unwrap().kind {
            ChannelKind::Slack(relinkd::config::SlackConfig { url: loaded }) => {
                assert_eq!(loaded.expose_secret(), url)
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        config.channel("slack-ops").unwrap().rate_limit_per_minute,
        Some(60)
    );

    let mail = config.channel("mail-ops").unwrap();
    match &mail.kind {
        ChannelKind::Email(relinkd::config::EmailConfig {
            smtp_host,
            smtp_port,
            tls,
            username,
            password,
            from,
            to,
        }) => {
            assert_eq!(smtp_host, "smtp.example.com");
            assert_eq!(*smtp_port, 2525);
            assert_eq!(*tls, EmailTls::Tls);
            assert_eq!(username.as_deref(), Some("relinkd"));
            assert_eq!(
                password.as_ref().unwrap().expose_secret(),
                "smtp-cred-password"
            );
            assert_eq!(from, "relinkd <relinkd@example.com>");
            assert_eq!(
                to,
                &vec![
                    "ops@example.com".to_owned(),
                    "On Call <oncall@example.com>".to_owned()
                ]
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        mail.templates.subject.as_deref(),
        Some("relinkd: {{ event }} for {{ instance_name }}")
    );
    assert_eq!(
        mail.templates.code.as_deref(),
        Some("Code for {{ instance_name }}: {{ code }}")
    );
    let password_of = |name: &str| match &config.channel(name).unwrap().kind {
        ChannelKind::Email(relinkd::config::EmailConfig {
            password,
            smtp_port,
            tls,
            ..
        }) => (
            password.as_ref().map(|p| p.expose_secret().to_owned()),
            *smtp_port,
            *tls,
        ),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        password_of("mail-file"),
        (Some("smtp-file-password".into()), 587, EmailTls::StartTls)
    );
    assert_eq!(password_of("mail-plain"), (None, 25, EmailTls::None));
    assert_eq!(
        password_of("mail-auth-env"),
        (Some("smtp-env-password".into()), 587, EmailTls::StartTls)
    );

    let wa = config.channel("wa-admins").unwrap();
    match &wa.kind {
        ChannelKind::Whatsapp(relinkd::config::WhatsappConfig { via, chat_ids }) => {
            assert_eq!(*via, 7);
            assert_eq!(
                chat_ids,
                &vec![
                    "79001234567@c.us".to_owned(),
                    "120363043968066561@g.us".to_owned(),
                    "79001234567-1581234567@g.us".to_owned()
                ]
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(wa.rate_limit_per_minute, Some(10));

    assert_eq!(config.instances.len(), 3);
    let one = &config.instances[0];
    assert_eq!(one.id, 1101000001);
    assert_eq!(one.name, "sales-line");
    assert_eq!(one.api_url, "https://1101.api.greenapi.com");
    assert_eq!(one.api_token.expose_secret(), "token-one");
    assert_eq!(one.phone, 441234567890);
    assert_eq!(
        one.channels,
        vec![
            "ops-hook",
            "console",
            "tg-ops",
            "tg-channel",
            "tg-group",
            "wa-admins"
        ]
    );
    assert_eq!(
        one.settings,
        InstanceSettings {
            poll_interval: Duration::from_secs(90),
            linking_poll_interval: Duration::from_secs(3),
            code_ttl: Duration::from_secs(100),
            codes_per_episode: 7,
            cooldown: Duration::from_secs(7200),
            request_timeout: Duration::from_secs(15),
            backoff_max: Duration::from_secs(60),
            timezone: Some("America/New_York".into()),
        }
    );
    let two = &config.instances[1];
    assert_eq!(two.id, 110100000002);
    assert_eq!(two.api_url, "http://localhost:3000");
    assert_eq!(two.api_token.expose_secret(), "token-two");
    assert_eq!(two.phone, 4915123456789);
    assert_eq!(
        two.settings,
        InstanceSettings {
            poll_interval: Duration::from_secs(30),
            linking_poll_interval: Duration::from_secs(2),
            code_ttl: Duration::from_secs(150),
            codes_per_episode: 3,
            cooldown: Duration::from_secs(45 * 60),
            request_timeout: Duration::from_secs(20),
            backoff_max: Duration::from_secs(600),
            timezone: Some("Europe/London".into()),
        }
    );
    let three = config.instance(7).unwrap();
    assert_eq!(three.api_token.expose_secret(), "token-seven");
    assert_eq!(three.phone, 1234567);
    // The tz database's spelling of the name.
    assert_eq!(three.settings.timezone.as_deref(), Some("UTC"));
}

#[test]
fn example_config_loads() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config/relinkd.example.toml");
    let dir = TempDir::new();
    let path = dir.write("relinkd.toml", &fs::read_to_string(example).unwrap());
    dir.write("tokens/admin", "admin\n");
    dir.write("tokens/1101000001", "t1\n");
    dir.write("tokens/1101000002", "t2\n");
    dir.write(
        "tokens/ops-hook.whsec",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n",
    );
    dir.write("tokens/telegram-bot", "123456:telegram\n");
    dir.write(
        "tokens/slack-webhook-url",
        "https://hooks.slack.com/services/T0/B0/example\n",
    );
    dir.write("tokens/smtp-password", "smtp\n");
    let config = load_with(&path, &env(&[])).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    assert_eq!(config.instances.len(), 2);
    let types: Vec<&str> = config.channels.iter().map(|c| c.kind.type_name()).collect();
    assert_eq!(
        types,
        [
            "webhook", "console", "telegram", "slack", "email", "whatsapp"
        ]
    );
    assert_eq!(config.instances[0].settings, InstanceSettings::default());
    assert_eq!(config.instances[1].settings.codes_per_episode, 2);
    assert_eq!(
        config.instances[1].settings.timezone.as_deref(),
        Some("Europe/Berlin")
    );
    assert_eq!(config.daemon.state_dir, PathBuf::from("./state"));
}

#[test]
fn defaults_apply_when_nothing_is_set() {
    let config = ok(BASE);
    let d = &config.daemon;
    assert_eq!(d.listen, "127.0.0.1:7788".parse().unwrap());
    assert_eq!(d.state_dir, PathBuf::from("./state"));
    assert_eq!(d.log_format, LogFormat::Text);
    assert!(d.admin_token.is_none());
    assert_eq!(d.max_concurrent_requests, 64);
    assert_eq!(config.channels[0].attempt_timeout, Duration::from_secs(10));
    let s = &config.instances[0].settings;
    assert_eq!(
        *s,
        InstanceSettings {
            poll_interval: Duration::from_secs(60),
            linking_poll_interval: Duration::from_secs(5),
            code_ttl: Duration::from_secs(150),
            codes_per_episode: 4,
            cooldown: Duration::from_secs(3600),
            request_timeout: Duration::from_secs(40),
            backoff_max: Duration::from_secs(300),
            timezone: None,
        }
    );
    assert_eq!(*s, InstanceSettings::default());
    assert_eq!(config.instances[0].api_url, "https://1101.api.greenapi.com");
    assert_eq!(config.instances[0].api_token.expose_secret(), TOKEN);
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn defaults_section_applies_to_instances_without_overrides() {
    let config = ok(&with_defaults(
        "code_ttl = \"2m 30s\"\ncooldown = \"90m\"\nbackoff_max = \"500ms\"",
    ));
    let s = &config.instances[0].settings;
    assert_eq!(s.code_ttl, Duration::from_secs(150));
    assert_eq!(s.cooldown, Duration::from_secs(90 * 60));
    assert_eq!(s.backoff_max, Duration::from_millis(500));
    assert_eq!(s.poll_interval, Duration::from_secs(60));
}

#[test]
fn per_instance_override_beats_defaults() {
    let toml = with_defaults("poll_interval = \"30s\"\ncodes_per_episode = 2").replacen(
        "channels = [\"ops\"]",
        "channels = [\"ops\"]\npoll_interval = \"2m\"",
        1,
    );
    let config = ok(&toml);
    let s = &config.instances[0].settings;
    assert_eq!(s.poll_interval, Duration::from_secs(120));
    assert_eq!(
        s.codes_per_episode, 2,
        "non-overridden keys still come from [defaults]"
    );
}

#[test]
fn state_dir_defaults_to_state_directory_env() {
    let dir = TempDir::new();
    let config = load_in(
        &dir,
        BASE,
        &env(&[("STATE_DIRECTORY", "/var/lib/relinkd:/var/lib/other")]),
    )
    .unwrap();
    assert_eq!(config.daemon.state_dir, PathBuf::from("/var/lib/relinkd"));
}

#[test]
fn sub_second_poll_interval_is_clamped_with_warning() {
    let toml = with_defaults("poll_interval = \"500ms\"").replacen(
        "channels = [\"ops\"]",
        "channels = [\"ops\"]\nlinking_poll_interval = \"200ms\"",
        1,
    );
    let config = ok(&toml);
    let s = &config.instances[0].settings;
    assert_eq!(s.poll_interval, Duration::from_secs(1));
    assert_eq!(s.linking_poll_interval, Duration::from_secs(1));
    let all = config.warnings.join("\n");
    assert_has(
        &all,
        &[
            "defaults.poll_interval: 500ms is below the 1s minimum",
            "instance[0].linking_poll_interval: 200ms",
        ],
    );
}

#[test]
fn inline_token_warns() {
    let config = ok(&replace(
        "api_token_file = \"token\"",
        "api_token = \"inline-token\"",
    ));
    assert_eq!(
        config.instances[0].api_token.expose_secret(),
        "inline-token"
    );
    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    assert_has(
        &config.warnings[0],
        &[
            "relinkd.toml: instance[0].api_token: ",
            "inline",
            "api_token_file or api_token_credential",
        ],
    );
}

#[test]
fn world_readable_token_file_warns() {
    let dir = TempDir::new();
    dir.write_mode("open-token", "tok\n", 0o644);
    let config = load_in(
        &dir,
        &replace(
            "api_token_file = \"token\"",
            "api_token_file = \"open-token\"",
        ),
        &env(&[]),
    )
    .unwrap();
    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    assert_has(
        &config.warnings[0],
        &[
            "instance[0].api_token_file",
            "open-token",
            "readable by group or others",
            "0644",
            "chmod 600",
        ],
    );
}

#[test]
fn credentials_directory_works() {
    let dir = TempDir::new();
    dir.write("creds/sales", "cred-token\n");
    let creds = dir.path().join("creds");
    let config = load_in(
        &dir,
        &replace(
            "api_token_file = \"token\"",
            "api_token_credential = \"sales\"",
        ),
        &env(&[("CREDENTIALS_DIRECTORY", creds.to_str().unwrap())]),
    )
    .unwrap();
    assert_eq!(config.instances[0].api_token.expose_secret(), "cred-token");
}

#[test]
fn env_token_works_and_is_trimmed() {
    let dir = TempDir::new();
    let config = load_in(
        &dir,
        &replace(
            "api_token_file = \"token\"",
            "api_token_env = \"SALES_TOKEN\"",
        ),
        &env(&[("SALES_TOKEN", "env-token\n")]),
    )
    .unwrap();
    assert_eq!(config.instances[0].api_token.expose_secret(), "env-token");
}

#[test]
fn relative_token_path_resolves_next_to_the_config() {
    let dir = TempDir::new();
    dir.write("nested/tokens/sales", "nested-token\n");
    let config_path = dir.write(
        "nested/relinkd.toml",
        &replace(
            "api_token_file = \"token\"",
            "api_token_file = \"tokens/sales\"",
        ),
    );
    // The working directory is the crate root, not the config's directory.
    let config = load_with(&config_path, &env(&[])).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.instances[0].api_token.expose_secret(),
        "nested-token"
    );
}

#[test]
fn twelve_digit_id_is_accepted() {
    let config = ok(&replace("id = 1101000001", "id = 110100000001"));
    assert_eq!(config.instances[0].id, 110_100_000_001);
}

#[test]
fn phone_as_digit_string_is_accepted() {
    let config = ok(&replace("phone = 441234567890", "phone = \"441234567890\""));
    assert_eq!(config.instances[0].phone, 441234567890);
}

#[test]
fn empty_fleet_is_valid_with_warning() {
    let config = ok("[daemon]\nlog_format = \"json\"\n");
    assert!(config.instances.is_empty());
    assert_has(
        &config.warnings.join("\n"),
        &["instance: no [[instance]] is configured"],
    );
}

#[test]
fn webhook_secret_accepts_prefix_or_bare_base64_with_or_without_padding() {
    for text in ["whsec_aGVsbG8=", "whsec_aGVsbG8", "aGVsbG8="] {
        assert_eq!(
            WebhookSecret::decode(text).unwrap().expose(),
            b"hello",
            "{text}"
        );
    }
    assert!(WebhookSecret::decode("whsec_").is_err());
    assert!(WebhookSecret::decode("whsec_not base64!").is_err());
}

#[test]
fn digest_changes_with_the_file() {
    let a = ok(BASE).digest;
    let b = ok(&format!("{BASE}\n# comment\n")).digest;
    assert_ne!(a, b);
    assert_eq!(
        relinkd::config::sha256_hex(b""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

// ------------------------------------------------------------ rejections

#[test]
fn unreadable_config_file_is_a_read_error() {
    let dir = TempDir::new();
    let err = load_with(&dir.path().join("missing.toml"), &env(&[])).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert_has(
        &err.to_string(),
        &["missing.toml: cannot read the config file"],
    );
}

#[test]
fn toml_syntax_error_keeps_line_and_column() {
    let e = error("[daemon]\nlisten = \n");
    assert_has(&e, &["relinkd.toml: line 2, column", "string"]);
}

#[test]
fn unknown_key_in_daemon_is_rejected() {
    let e = error(&with_daemon("listne = \"127.0.0.1:1\""));
    assert_has(
        &e,
        &[
            "relinkd.toml: line 2, column 1: daemon.listne: unknown field `listne`",
            "`listen`",
        ],
    );
}

#[test]
fn unknown_key_in_defaults_is_rejected() {
    for key in [
        "linking_window = \"0 0 8-19 * * Mon-Fri\"",
        "time_zone = \"Europe/London\"",
    ] {
        let e = error(&with_defaults(key));
        let name = key.split(' ').next().unwrap();
        assert_has(
            &e,
            &["line 2, column 1", &format!("unknown field `{name}`")],
        );
    }
}

#[test]
fn unknown_key_in_channel_is_rejected() {
    let e = error(&replace(
        "type = \"console\"",
        "type = \"console\"\ncolour = \"red\"",
    ));
    assert_has(
        &e,
        &["line 5, column 1: channel[0].colour: unknown field `colour`"],
    );
}

#[test]
fn unknown_key_in_instance_is_rejected() {
    let e = error(&with_instance_key("linking_window = \"x\""));
    assert_has(&e, &["unknown field `linking_window`", "line 13, column 1"]);
}

#[test]
fn unknown_top_level_table_is_rejected() {
    let e = error(&format!("{BASE}\n[[instances]]\nid = 1\n"));
    assert_has(&e, &["unknown field `instances`", "`instance`"]);
}

#[test]
fn secret_key_on_console_channel_is_rejected() {
    let e = error(&replace(
        "type = \"console\"",
        "type = \"console\"\nsecret_file = \"x\"",
    ));
    assert_has(
        &e,
        &["relinkd.toml: channel[0].secret_file: not allowed for a console channel"],
    );
}

#[test]
fn bad_duration_is_rejected() {
    let e = error(&with_defaults("cooldown = \"5 parsecs\""));
    assert_has(
        &e,
        &[
            "relinkd.toml: defaults.cooldown: invalid duration \"5 parsecs\"",
            "parsecs",
        ],
    );
    let e = error(&with_defaults("cooldown = 60"));
    assert_has(
        &e,
        &["defaults.cooldown: must be a duration string such as \"60s\""],
    );
}

#[test]
fn zero_duration_is_rejected() {
    let e = error(&with_instance_key("request_timeout = \"0s\""));
    assert_has(
        &e,
        &["instance[0].request_timeout: must be greater than zero"],
    );
    let e = error(&replace(
        "type = \"console\"",
        "type = \"console\"\ntimeout = \"0ms\"",
    ));
    assert_has(&e, &["channel[0].timeout: must be greater than zero"]);
}

#[test]
fn phone_with_plus_or_spaces_is_rejected() {
    let e = error(&replace("phone = 441234567890", "phone = \"+44 1234\""));
    assert_has(
        &e,
        &[
            "relinkd.toml: instance[0].phone: must be digits only",
            "no + or spaces",
        ],
    );
}

#[test]
fn phone_too_short_is_rejected() {
    let e = error(&replace("phone = 441234567890", "phone = 12345"));
    assert_has(
        &e,
        &["relinkd.toml: instance[0].phone: must be 7 to 15 digits (got 5)"],
    );
}

#[test]
fn phone_too_long_is_rejected() {
    let e = error(&replace(
        "phone = 441234567890",
        "phone = \"1234567890123456\"",
    ));
    assert_has(&e, &["instance[0].phone: must be 7 to 15 digits (got 16)"]);
}

#[test]
fn id_zero_is_rejected() {
    let e = error(&replace("id = 1101000001", "id = 0"));
    assert_has(&e, &["instance[0].id: must be a positive integer (got 0)"]);
}

#[test]
fn negative_id_is_rejected() {
    let e = error(&replace("id = 1101000001", "id = -5"));
    assert_has(&e, &["instance[0].id: must be a positive integer (got -5)"]);
}

#[test]
fn string_id_is_rejected() {
    let e = error(&replace("id = 1101000001", "id = \"1101000001\""));
    assert_has(
        &e,
        &["instance[0].id: must be a TOML integer, not a string"],
    );
    let e = error(&replace("id = 1101000001", "id = \"sales\""));
    assert_has(
        &e,
        &["instance[0].id: must be a positive integer", "\"sales\""],
    );
}

#[test]
fn duplicate_ids_are_rejected() {
    let second = BASE.split("[[instance]]").nth(1).unwrap();
    let second = edit(second, "sales-line", "other-line");
    let e = error(&format!("{BASE}\n[[instance]]{second}"));
    assert_has(
        &e,
        &["instance[1].id: duplicate id 1101000001 (also instance[0])"],
    );
}

#[test]
fn duplicate_instance_names_are_rejected() {
    let second = BASE.split("[[instance]]").nth(1).unwrap();
    let second = edit(second, "1101000001", "1101000002");
    let e = error(&format!("{BASE}\n[[instance]]{second}"));
    assert_has(
        &e,
        &["instance[1].name: duplicate instance name \"sales-line\" (also instance[0])"],
    );
}

#[test]
fn duplicate_channel_names_are_rejected() {
    let e = error(&format!(
        "[[channel]]\nname = \"ops\"\ntype = \"console\"\n{BASE}"
    ));
    assert_has(
        &e,
        &["channel[1].name: duplicate channel name \"ops\" (also channel[0])"],
    );
}

#[test]
fn invalid_channel_name_is_rejected() {
    let e = error(&edit(
        &replace("name = \"ops\"", "name = \"ops hook\""),
        "[\"ops\"]",
        "[\"ops hook\"]",
    ));
    assert_has(
        &e,
        &[
            "channel[0].name: must be 1 to 64 characters",
            "metric label",
        ],
    );
}

#[test]
fn unknown_channel_reference_is_rejected() {
    let e = error(&replace(
        "channels = [\"ops\"]",
        "channels = [\"ops\", \"pager\"]",
    ));
    assert_has(
        &e,
        &["instance[0].channels: unknown channel \"pager\"; configured channels: \"ops\""],
    );
}

#[test]
fn empty_channel_list_is_rejected() {
    let e = error(&replace("channels = [\"ops\"]", "channels = []"));
    assert_has(
        &e,
        &["instance[0].channels: must list at least one channel"],
    );
}

#[test]
fn missing_token_is_rejected() {
    let e = error(&replace("api_token_file = \"token\"\n", ""));
    assert_has(
        &e,
        &[
            "instance[0].api_token: missing",
            "api_token_file, api_token_env, api_token_credential or api_token",
        ],
    );
}

#[test]
fn two_token_sources_are_rejected() {
    let e = error(&replace(
        "api_token_file = \"token\"",
        "api_token_file = \"token\"\napi_token_env = \"SALES_TOKEN\"",
    ));
    assert_has(
        &e,
        &["instance[0].api_token: given in more than one way (api_token_file, api_token_env)"],
    );
}

#[test]
fn unreadable_token_file_is_rejected() {
    let e = error(&replace(
        "api_token_file = \"token\"",
        "api_token_file = \"nope/missing\"",
    ));
    assert_has(
        &e,
        &[
            "instance[0].api_token_file: ",
            "nope/missing",
            "cannot read",
        ],
    );
    // A directory is not a token file either (tests may run as root, so no chmod 000).
    let e = error(&replace(
        "api_token_file = \"token\"",
        "api_token_file = \".\"",
    ));
    assert_has(
        &e,
        &["instance[0].api_token_file: ", "is not a regular file"],
    );
}

#[test]
fn empty_token_file_is_rejected() {
    let dir = TempDir::new();
    dir.write("blank", " \n\n");
    let e = load_in(
        &dir,
        &replace("api_token_file = \"token\"", "api_token_file = \"blank\""),
        &env(&[]),
    )
    .unwrap_err()
    .to_string();
    assert_has(&e, &["instance[0].api_token_file: ", "blank: is empty"]);
}

#[test]
fn unset_env_var_is_rejected() {
    let toml = replace(
        "api_token_file = \"token\"",
        "api_token_env = \"SALES_TOKEN\"",
    );
    let e = error(&toml);
    assert_has(
        &e,
        &["instance[0].api_token_env: environment variable SALES_TOKEN is not set"],
    );
    let e = error_with(&toml, &env(&[("SALES_TOKEN", "")]));
    assert_has(
        &e,
        &["instance[0].api_token_env: environment variable SALES_TOKEN is empty"],
    );
}

#[test]
fn missing_credentials_directory_is_rejected() {
    let toml = replace(
        "api_token_file = \"token\"",
        "api_token_credential = \"sales\"",
    );
    let e = error(&toml);
    assert_has(
        &e,
        &[
            "instance[0].api_token_credential: ",
            "$CREDENTIALS_DIRECTORY",
            "not set",
            "set by systemd's LoadCredential=",
        ],
    );
    let dir = TempDir::new();
    let creds = dir.path().to_str().unwrap().to_owned();
    let e = error_with(&toml, &env(&[("CREDENTIALS_DIRECTORY", &creds)]));
    assert_has(
        &e,
        &[
            "instance[0].api_token_credential: credential \"sales\" not found in $CREDENTIALS_DIRECTORY",
        ],
    );
}

#[test]
fn bad_whsec_secret_is_rejected() {
    let hook = "[[channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"https://h.example\"\nsecret_env = \"HOOK_SECRET\"\n";
    let toml = format!("{hook}{BASE}");
    let e = error_with(&toml, &env(&[("HOOK_SECRET", "whsec_%%%notbase64")]));
    assert_has(
        &e,
        &[
            "channel[0].secret_env: not a valid Standard Webhooks secret",
            "whsec_",
        ],
    );
    let e = error_with(&toml, &env(&[("HOOK_SECRET", "whsec_")]));
    assert_has(&e, &["channel[0].secret_env: ", "empty key"]);
}

#[test]
fn bad_webhook_url_is_rejected() {
    let toml = format!(
        "[[channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"ftp://h.example\"\n{BASE}"
    );
    assert_has(
        &error(&toml),
        &["channel[0].url: must start with http:// or https://"],
    );
    let toml = format!("[[channel]]\nname = \"hook\"\ntype = \"webhook\"\n{BASE}");
    assert_has(&error(&toml), &["channel[0].url: missing"]);
}

#[test]
fn bad_api_url_is_rejected() {
    let e = error(&replace(
        "https://1101.api.greenapi.com/",
        "1101.api.greenapi.com",
    ));
    assert_has(
        &e,
        &["instance[0].api_url: must start with http:// or https://"],
    );
}

#[test]
fn codes_per_episode_zero_is_rejected() {
    let e = error(&with_defaults("codes_per_episode = 0"));
    assert_has(
        &e,
        &["defaults.codes_per_episode: must be at least 1 (got 0)"],
    );
}

#[test]
fn codes_per_episode_eight_is_rejected_with_lockout_reason() {
    let e = error(&with_instance_key("codes_per_episode = 8"));
    assert_has(
        &e,
        &[
            "instance[0].codes_per_episode: must be at most 7 (got 8)",
            "WhatsApp locks a number out",
            "about 7 codes in a row",
        ],
    );
}

#[test]
fn bad_listen_address_is_rejected() {
    let e = error(&with_daemon("listen = \"localhost:7788\""));
    assert_has(
        &e,
        &[
            "relinkd.toml: daemon.listen: must be an IP address and port",
            "\"localhost:7788\"",
        ],
    );
}

#[test]
fn max_concurrent_requests_out_of_range_is_rejected() {
    let e = error(&with_daemon("max_concurrent_requests = 0"));
    assert_has(
        &e,
        &["daemon.max_concurrent_requests: must be between 1 and 10000 (got 0)"],
    );
}

#[test]
fn unknown_channel_type_is_rejected() {
    let e = error(&replace("type = \"console\"", "type = \"pager\""));
    assert_has(
        &e,
        &[
            "channel[0].type: unknown channel type \"pager\"; known types are \"webhook\", \
             \"console\", \"telegram\", \"slack\", \"email\", \"whatsapp\"",
        ],
    );
}

#[test]
fn bad_log_format_is_rejected() {
    let e = error(&with_daemon("log_format = \"xml\""));
    assert_has(
        &e,
        &["daemon.log_format: must be \"text\" or \"json\" (got \"xml\")"],
    );
}

#[test]
fn all_problems_are_reported_one_per_line() {
    let toml =
        with_daemon("log_format = \"xml\"").replacen("phone = 441234567890", "phone = 12", 1);
    let err = load_str(&toml).unwrap_err();
    assert!(matches!(err, ConfigError::Multiple { .. }));
    let text = err.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].ends_with(
            "relinkd.toml: daemon.log_format: must be \"text\" or \"json\" (got \"xml\")"
        )
    );
    assert!(lines[1].ends_with("relinkd.toml: instance[0].phone: must be 7 to 15 digits (got 2)"));
    assert_eq!(err.issues().len(), 2);
}

// ------------------------------------------------ telegram, slack, email, whatsapp

/// BASE with one more channel, `extra` (channel[0]), which the instance
/// (id 1101000001) also uses. `body` is the rest of its `[[channel]]` table.
fn with_channel(body: &str) -> String {
    let base = BASE.replacen("channels = [\"ops\"]", "channels = [\"ops\", \"extra\"]", 1);
    format!("[[channel]]\nname = \"extra\"\n{body}\n{base}")
}

/// The environment the channel tests take their secrets from.
fn channel_env() -> HashMap<String, String> {
    env(&[
        ("BOT_TOKEN", "123456:bot-token"),
        ("SLACK_URL", "https://hooks.slack.com/services/T0/B0/xyz"),
        ("SMTP_PASSWORD", "smtp-password"),
    ])
}

fn ok_channel(body: &str) -> Config {
    match load_in(&TempDir::new(), &with_channel(body), &channel_env()) {
        Ok(config) => config,
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

fn channel_error(body: &str) -> String {
    let e = error_with(&with_channel(body), &channel_env());
    if std::env::var_os("SHOW").is_some() {
        eprintln!("---\n{e}");
    }
    e
}

const TELEGRAM: &str =
    "type = \"telegram\"\nbot_token_env = \"BOT_TOKEN\"\nchat_id = -1001234567890\n";
const SLACK: &str = "type = \"slack\"\nurl_env = \"SLACK_URL\"\n";
const EMAIL: &str = "type = \"email\"\nsmtp_host = \"smtp.example.com\"\n\
                     from = \"relinkd <relinkd@example.com>\"\nto = [\"ops@example.com\"]\n";
/// Sends through instance 7, which the test configs add with [`SENDER`].
const WHATSAPP: &str = "type = \"whatsapp\"\nvia = 7\nchat_ids = [\"79001234567@c.us\"]\n";
const SENDER: &str = "\n[[instance]]\nid = 7\nname = \"sender\"\n\
                      api_url = \"https://7103.api.green-api.com\"\napi_token_file = \"token\"\n\
                      phone = 79001234567\nchannels = [\"ops\"]\n";

#[test]
fn telegram_api_base_defaults_and_chat_id_forms_are_accepted() {
    let config = ok_channel(TELEGRAM);
    let extra = config.channel("extra").unwrap();
    match &extra.kind {
        ChannelKind::Telegram(relinkd::config::TelegramConfig {
            bot_token,
            chat_id,
            api_base,
        }) => {
            assert_eq!(bot_token.expose_secret(), "123456:bot-token");
            assert_eq!(chat_id, "-1001234567890");
            assert_eq!(api_base, "https://api.telegram.org");
        }
        other => panic!("{other:?}"),
    }
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    for (written, stored) in [
        ("chat_id = 123456789", "123456789"),
        ("chat_id = \"-1001234567890\"", "-1001234567890"),
        ("chat_id = \"@relinkd_ops\"", "@relinkd_ops"),
        ("chat_id = \"@abcde\"", "@abcde"),
    ] {
        let config = ok_channel(&edit(TELEGRAM, "chat_id = -1001234567890", written));
        match &config.channel("extra").unwrap().kind {
            ChannelKind::Telegram(relinkd::config::TelegramConfig { chat_id, .. }) => {
                assert_eq!(chat_id, stored, "{written}")
            }
            other => panic!("{other:?}"),
        }
    }
    let config = ok_channel(&format!("{TELEGRAM}api_base = \"http://127.0.0.1:8081/\""));
    match &config.channel("extra").unwrap().kind {
        ChannelKind::Telegram(relinkd::config::TelegramConfig { api_base, .. }) => {
            assert_eq!(api_base, "http://127.0.0.1:8081")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn email_port_defaults_follow_tls() {
    for (tls, expected_tls, port) in [
        ("", EmailTls::StartTls, 587),
        ("tls = \"starttls\"", EmailTls::StartTls, 587),
        ("tls = \"tls\"", EmailTls::Tls, 465),
        ("tls = \"none\"", EmailTls::None, 25),
    ] {
        let config = ok_channel(&format!("{EMAIL}{tls}"));
        match &config.channel("extra").unwrap().kind {
            ChannelKind::Email(relinkd::config::EmailConfig {
                smtp_host,
                smtp_port,
                tls: got,
                username,
                password,
                from,
                to,
            }) => {
                assert_eq!((*got, *smtp_port), (expected_tls, port), "{tls}");
                assert_eq!(smtp_host, "smtp.example.com");
                assert!(username.is_none() && password.is_none());
                assert_eq!(from, "relinkd <relinkd@example.com>");
                assert_eq!(to, &vec!["ops@example.com".to_owned()]);
            }
            other => panic!("{other:?}"),
        }
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }
    let config = ok_channel(&format!("{EMAIL}tls = \"tls\"\nsmtp_port = 2465"));
    match &config.channel("extra").unwrap().kind {
        ChannelKind::Email(relinkd::config::EmailConfig { smtp_port, .. }) => {
            assert_eq!(*smtp_port, 2465)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn email_with_username_loads_its_password() {
    let config = ok_channel(&format!(
        "{EMAIL}username = \"relinkd\"\npassword_env = \"SMTP_PASSWORD\""
    ));
    match &config.channel("extra").unwrap().kind {
        ChannelKind::Email(relinkd::config::EmailConfig {
            username, password, ..
        }) => {
            assert_eq!(username.as_deref(), Some("relinkd"));
            assert_eq!(password.as_ref().unwrap().expose_secret(), "smtp-password");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn rate_limit_is_none_when_absent_and_kept_when_set() {
    for body in [TELEGRAM, SLACK, EMAIL, "type = \"console\"\n"] {
        let config = ok_channel(body);
        assert_eq!(
            config.channel("extra").unwrap().rate_limit_per_minute,
            None,
            "{body}"
        );
        let config = ok_channel(&format!("{body}rate_limit_per_minute = 100000"));
        assert_eq!(
            config.channel("extra").unwrap().rate_limit_per_minute,
            Some(100_000),
            "{body}"
        );
    }
    let config = ok(BASE);
    assert_eq!(config.channels[0].rate_limit_per_minute, None);
}

#[test]
fn templates_are_kept_and_default_to_none() {
    let config = ok_channel(TELEGRAM);
    assert_eq!(
        config.channel("extra").unwrap().templates,
        TemplateOverrides::default()
    );
    let config = ok_channel(&format!(
        "{EMAIL}\n[channel.templates]\nsubject = \"{{{{ instance_name }}}}: {{{{ event }}}}\"\n\
         alert = \"{{% if state %}}{{{{ state }}}}{{% endif %}}\"\n"
    ));
    let templates = &config.channel("extra").unwrap().templates;
    assert_eq!(
        templates.subject.as_deref(),
        Some("{{ instance_name }}: {{ event }}")
    );
    assert_eq!(
        templates.alert.as_deref(),
        Some("{% if state %}{{ state }}{% endif %}")
    );
    assert_eq!(templates.code, None);
}

#[test]
fn timezone_overrides_per_instance() {
    let two = format!(
        "{}{}",
        with_defaults("timezone = \"Europe/London\""),
        edit(
            SENDER,
            "channels = [\"ops\"]",
            "channels = [\"ops\"]\ntimezone = \"Asia/Tokyo\""
        )
    );
    let config = ok(&two);
    assert_eq!(
        config
            .instance(1101000001)
            .unwrap()
            .settings
            .timezone
            .as_deref(),
        Some("Europe/London"),
        "inherited from [defaults]"
    );
    assert_eq!(
        config.instance(7).unwrap().settings.timezone.as_deref(),
        Some("Asia/Tokyo")
    );
    // Only an instance.
    let config = ok(&with_instance_key("timezone = \"America/Sao_Paulo\""));
    assert_eq!(
        config.instances[0].settings.timezone.as_deref(),
        Some("America/Sao_Paulo")
    );
    // Neither: UTC only.
    assert_eq!(ok(BASE).instances[0].settings.timezone, None);
}

#[test]
fn slack_inline_url_is_accepted_with_a_secret_warning() {
    let config =
        ok_channel("type = \"slack\"\nurl = \"https://hooks.slack.com/services/T0/B0/inline\"\n");
    match &config.channel("extra").unwrap().kind {
        ChannelKind::Slack(relinkd::config::SlackConfig { url }) => assert_eq!(
            url.expose_secret(),
            "https://hooks.slack.com/services/T0/B0/inline"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    assert_has(
        &config.warnings[0],
        &[
            "relinkd.toml: channel[0].url: the Slack webhook URL is a secret",
            "use url_file or url_credential instead",
        ],
    );
    assert!(!config.warnings[0].contains("hooks.slack.com"));
}

#[test]
fn whatsapp_channel_sends_through_another_instance() {
    let config = ok(&format!(
        "{}{SENDER}",
        with_channel(&edit(
            WHATSAPP,
            "[\"79001234567@c.us\"]",
            "[\"79001234567@c.us\", \"120363043968066561@g.us\", \"79001234567-1581234567@g.us\"]"
        ))
    ));
    match &config.channel("extra").unwrap().kind {
        ChannelKind::Whatsapp(relinkd::config::WhatsappConfig { via, chat_ids }) => {
            assert_eq!(*via, 7);
            assert_eq!(chat_ids.len(), 3);
            assert_eq!(chat_ids[1], "120363043968066561@g.us");
        }
        other => panic!("{other:?}"),
    }
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn whatsapp_channel_through_the_instance_itself_warns() {
    // The instance (1101000001) lists "extra", which sends through it.
    let config = ok(&with_channel(&edit(
        WHATSAPP,
        "via = 7",
        "via = 1101000001",
    )));
    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    assert_has(
        &config.warnings[0],
        &[
            "relinkd.toml: instance[0].channels: channel \"extra\" sends through this instance \
             itself; relinkd skips it for this instance's own messages",
        ],
    );
}

#[test]
fn rate_limit_out_of_range_is_rejected() {
    let e = channel_error(&format!("{TELEGRAM}rate_limit_per_minute = 0"));
    assert_has(
        &e,
        &["channel[0].rate_limit_per_minute: must be between 1 and 100000 (got 0)"],
    );
    let e = channel_error(&format!("{SLACK}rate_limit_per_minute = 100001"));
    assert_has(
        &e,
        &["channel[0].rate_limit_per_minute: must be between 1 and 100000 (got 100001)"],
    );
    let e = channel_error("type = \"console\"\nrate_limit_per_minute = \"60\"");
    assert_has(
        &e,
        &["channel[0].rate_limit_per_minute: must be an integer, not a string"],
    );
}

#[test]
fn template_syntax_error_is_rejected() {
    let e = channel_error(&format!(
        "{TELEGRAM}\n[channel.templates]\ncode = \"fine\\n{{{{ code \"\nlinked = \"{{% endif %}}\"\n"
    ));
    assert_has(
        &e,
        &[
            "relinkd.toml: channel[0].templates.code: not a valid template: syntax error: \
             unexpected end of input, expected end of variable block (line 2)",
            "relinkd.toml: channel[0].templates.linked: not a valid template: syntax error: \
             unknown statement endif (line 1)",
        ],
    );
    let e = channel_error("type = \"console\"\ntemplates = { resumed = \" \" }");
    assert_has(
        &e,
        &[
            "channel[0].templates.resumed: must not be empty (remove the key to use the default text)",
        ],
    );
}

#[test]
fn unknown_template_key_is_rejected() {
    let e = channel_error(&format!(
        "{TELEGRAM}\n[channel.templates]\ncode = \"x\"\nexpired = \"y\"\n"
    ));
    assert_has(
        &e,
        &[
            "channel[0].templates.expired: unknown field `expired`",
            "`code`, `linked`, `paused`, `alert`, `resumed`, `subject`",
        ],
    );
}

#[test]
fn subject_template_on_a_non_email_channel_is_rejected() {
    for (body, type_name) in [
        (TELEGRAM, "a telegram channel"),
        (SLACK, "a slack channel"),
        ("type = \"console\"\n", "a console channel"),
    ] {
        let e = channel_error(&format!("{body}templates = {{ subject = \"hi\" }}"));
        assert_has(
            &e,
            &[&format!(
                "channel[0].templates.subject: only email channels have a subject (this is \
                 {type_name})"
            )],
        );
    }
}

#[test]
fn keys_of_another_channel_type_are_rejected_naming_key_and_type() {
    let e = channel_error(&format!(
        "{TELEGRAM}url = \"https://x.example\"\nsecret_file = \"s\"\nvia = 7\nsmtp_host = \"h\""
    ));
    let issues: Vec<&str> = e.lines().collect();
    assert_eq!(issues.len(), 4, "{e}");
    assert_has(
        &e,
        &[
            "channel[0].url: not allowed for a telegram channel (url is a key of webhook and \
             slack channels; a telegram channel takes name, type, timeout, \
             rate_limit_per_minute, templates, bot_token_file, bot_token_env, \
             bot_token_credential, bot_token, chat_id and api_base)",
            "channel[0].secret_file: not allowed for a telegram channel (secret_file is a key \
             of webhook channels;",
            "channel[0].via: not allowed for a telegram channel (via is a key of whatsapp \
             channels;",
            "channel[0].smtp_host: not allowed for a telegram channel (smtp_host is a key of \
             email channels;",
        ],
    );
    let e = channel_error(&format!("{EMAIL}chat_id = 5"));
    assert_has(
        &e,
        &[
            "channel[0].chat_id: not allowed for an email channel (chat_id is a key of telegram \
           channels;",
        ],
    );
    let e = channel_error("type = \"console\"\nchat_ids = [\"79001234567@c.us\"]");
    assert_has(
        &e,
        &[
            "channel[0].chat_ids: not allowed for a console channel (chat_ids is a key of \
           whatsapp channels; a console channel takes only name, type, timeout, \
           rate_limit_per_minute and templates)",
        ],
    );
    let e =
        channel_error("type = \"webhook\"\nurl = \"https://x.example\"\nurl_env = \"SLACK_URL\"");
    assert_has(
        &e,
        &[
            "channel[0].url_env: not allowed for a webhook channel (url_env is a key of slack \
           channels;",
        ],
    );
}

#[test]
fn telegram_bot_token_is_required_once() {
    let e = channel_error("type = \"telegram\"\nchat_id = 5");
    assert_has(
        &e,
        &[
            "channel[0].bot_token: missing: a telegram channel needs its bot's token (from \
           @BotFather); set exactly one of bot_token_file, bot_token_env, \
           bot_token_credential or bot_token",
        ],
    );
    let e = channel_error(&format!("{TELEGRAM}bot_token_file = \"token\""));
    assert_has(
        &e,
        &[
            "channel[0].bot_token: given in more than one way (bot_token_file, bot_token_env); \
           use exactly one",
        ],
    );
    let e = error_with(&with_channel(TELEGRAM), &env(&[]));
    assert_has(
        &e,
        &["channel[0].bot_token_env: environment variable BOT_TOKEN is not set"],
    );
}

#[test]
fn telegram_inline_bot_token_warns() {
    let config = ok_channel("type = \"telegram\"\nbot_token = \"1:inline\"\nchat_id = 5");
    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    assert_has(
        &config.warnings[0],
        &[
            "channel[0].bot_token: secret is written inline in the config file; use \
           bot_token_file or bot_token_credential instead",
        ],
    );
}

#[test]
fn telegram_chat_id_is_required_and_checked() {
    let e = channel_error("type = \"telegram\"\nbot_token_env = \"BOT_TOKEN\"");
    assert_has(
        &e,
        &[
            "channel[0].chat_id: missing: the chat to send to, a numeric id (e.g. \
           -1001234567890) or \"@channelusername\"",
        ],
    );
    for (written, got) in [
        ("\"ops-chat\"", "(got \"ops-chat\")"),
        ("\"@abcd\"", "(got \"@abcd\")"),
        ("\"@has-dash\"", "(got \"@has-dash\")"),
        (
            "\"@abcdefghijklmnopqrstuvwxyz0123456\"",
            "(got \"@abcdefghijklmnopqrstuvwxyz0123456\")",
        ),
        ("1.5", "(got the float 1.5)"),
        ("0", "(got 0, which is no chat)"),
    ] {
        let e = channel_error(&edit(TELEGRAM, "-1001234567890", written));
        assert_has(
            &e,
            &[
                "channel[0].chat_id: must be a numeric chat id such as -1001234567890, or \"@\" \
                 and a public chat's username (5 to 32 of A-Z, a-z, 0-9 and '_')",
                got,
            ],
        );
    }
}

#[test]
fn telegram_bad_api_base_is_rejected() {
    let e = channel_error(&format!("{TELEGRAM}api_base = \"api.telegram.org\""));
    assert_has(
        &e,
        &["channel[0].api_base: must start with http:// or https://"],
    );
}

#[test]
fn slack_url_is_required_once() {
    let e = channel_error("type = \"slack\"");
    assert_has(
        &e,
        &[
            "channel[0].url: missing: a slack channel needs its incoming-webhook URL; set \
           exactly one of url_file, url_env, url_credential or url",
        ],
    );
    let e = channel_error(&format!("{SLACK}url = \"https://hooks.slack.com/x\""));
    assert_has(
        &e,
        &["channel[0].url: given in more than one way (url_env, url); use exactly one"],
    );
}

#[test]
fn slack_url_that_is_not_http_is_rejected_without_showing_it() {
    let dir = TempDir::new();
    dir.write("slack-url", "hooks.slack.com/services/T0/B0/hidden\n");
    let e = load_in(
        &dir,
        &with_channel("type = \"slack\"\nurl_file = \"slack-url\""),
        &env(&[]),
    )
    .unwrap_err()
    .to_string();
    assert_has(
        &e,
        &[
            "channel[0].url_file: must start with http:// or https:// (the URL is a secret: it \
           is not shown)",
        ],
    );
    assert!(!e.contains("hooks.slack.com"), "{e}");
    let e = channel_error("type = \"slack\"\nurl = \"https://\"");
    assert_has(&e, &["channel[0].url: has no host after the scheme"]);
}

#[test]
fn email_smtp_host_is_required_and_checked() {
    let without = edit(EMAIL, "smtp_host = \"smtp.example.com\"\n", "");
    assert_has(
        &channel_error(&without),
        &[
            "channel[0].smtp_host: missing: the SMTP server's host name, e.g. smtp_host = \
           \"smtp.example.com\"",
        ],
    );
    for (host, problem) in [
        ("\"\"", "channel[0].smtp_host: must not be empty"),
        (
            "\"smtp example.com\"",
            "channel[0].smtp_host: must not contain spaces (got \"smtp example.com\")",
        ),
        (
            "\"smtps://smtp.example.com\"",
            "channel[0].smtp_host: must be a host name such as \"smtp.example.com\", not a URL",
        ),
    ] {
        let e = channel_error(&edit(EMAIL, "\"smtp.example.com\"", host));
        assert_has(&e, &[problem]);
    }
}

#[test]
fn email_bad_tls_is_rejected() {
    let e = channel_error(&format!("{EMAIL}tls = \"ssl\""));
    assert_has(
        &e,
        &["channel[0].tls: must be \"none\", \"starttls\" or \"tls\" (got \"ssl\")"],
    );
}

#[test]
fn email_port_out_of_range_is_rejected() {
    for (port, got) in [("0", "(got 0)"), ("65536", "(got 65536)")] {
        let e = channel_error(&format!("{EMAIL}smtp_port = {port}"));
        assert_has(
            &e,
            &["channel[0].smtp_port: must be between 1 and 65535", got],
        );
    }
}

#[test]
fn email_username_without_password_is_rejected() {
    let e = channel_error(&format!("{EMAIL}username = \"relinkd\""));
    assert_has(
        &e,
        &[
            "channel[0].password: missing: username is set, so SMTP authentication needs a \
           password; set exactly one of password_file, password_env, password_credential or \
           password",
        ],
    );
    let e = channel_error(&format!(
        "{EMAIL}username = \"\"\npassword_env = \"SMTP_PASSWORD\""
    ));
    assert_has(&e, &["channel[0].username: must not be empty"]);
}

#[test]
fn email_password_without_username_is_rejected() {
    for key in [
        "password_env = \"SMTP_PASSWORD\"",
        "password_file = \"token\"",
    ] {
        let e = channel_error(&format!("{EMAIL}{key}"));
        let name = key.split(' ').next().unwrap();
        assert_has(
            &e,
            &[&format!(
                "channel[0].{name}: given without username: SMTP authentication needs both \
                 (set username, or remove the password)"
            )],
        );
    }
}

#[test]
fn email_password_over_plain_smtp_warns() {
    let config = ok_channel(&format!(
        "{EMAIL}tls = \"none\"\nusername = \"relinkd\"\npassword_env = \"SMTP_PASSWORD\""
    ));
    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    assert_has(
        &config.warnings[0],
        &[
            "relinkd.toml: channel[0].tls: is \"none\": the SMTP password is sent in clear \
           text; use \"starttls\" or \"tls\"",
        ],
    );
}

#[test]
fn email_from_must_be_a_mailbox() {
    let e = channel_error(&edit(
        EMAIL,
        "from = \"relinkd <relinkd@example.com>\"\n",
        "",
    ));
    assert_has(
        &e,
        &["channel[0].from: missing: the sender, e.g. from = \"relinkd <relinkd@example.com>\""],
    );
    let e = channel_error(&edit(
        EMAIL,
        "relinkd <relinkd@example.com>",
        "relinkd at example",
    ));
    assert_has(
        &e,
        &[
            "channel[0].from: not a valid mailbox \"relinkd at example\" (expected an address \
           such as \"relinkd@example.com\" or \"relinkd <relinkd@example.com>\")",
        ],
    );
}

#[test]
fn email_to_must_be_a_non_empty_list_of_mailboxes() {
    let e = channel_error(&edit(EMAIL, "to = [\"ops@example.com\"]\n", ""));
    assert_has(
        &e,
        &["channel[0].to: missing: the recipients, e.g. to = [\"ops@example.com\"]"],
    );
    let e = channel_error(&edit(EMAIL, "[\"ops@example.com\"]", "[]"));
    assert_has(&e, &["channel[0].to: must list at least one recipient"]);
    let e = channel_error(&edit(
        EMAIL,
        "[\"ops@example.com\"]",
        "[\"ops@example.com\", \"Ops <ops>\", \"a@b.example, c@d.example\"]",
    ));
    assert_has(
        &e,
        &[
            "channel[0].to[1]: not a valid mailbox \"Ops <ops>\"",
            "channel[0].to[2]: not a valid mailbox \"a@b.example, c@d.example\"",
        ],
    );
    assert!(!e.contains("to[0]"), "{e}");
}

#[test]
fn whatsapp_via_must_name_a_configured_instance() {
    let e = error(&with_channel(
        "type = \"whatsapp\"\nchat_ids = [\"79001234567@c.us\"]",
    ));
    assert_has(
        &e,
        &[
            "channel[0].via: missing: the id of the [[instance]] that sends the messages, e.g. \
           via = 1101000001",
        ],
    );
    let e = error(&with_channel(WHATSAPP));
    assert_has(
        &e,
        &["channel[0].via: no [[instance]] has id 7; configured ids: 1101000001"],
    );
    let e = error(&format!(
        "{}{SENDER}",
        with_channel(&edit(WHATSAPP, "via = 7", "via = \"7\""))
    ));
    assert_has(
        &e,
        &["channel[0].via: must be a TOML integer, not a string (write 7 without quotes)"],
    );
    let e = error(&format!(
        "{}{SENDER}",
        with_channel(&edit(WHATSAPP, "via = 7", "via = \"sender\""))
    ));
    assert_has(
        &e,
        &[
            "channel[0].via: must be the id (idInstance, a positive integer) of a configured \
           [[instance]] (got the string \"sender\")",
        ],
    );
}

#[test]
fn whatsapp_chat_ids_must_be_c_us_or_g_us() {
    let toml = |chat_ids: &str| {
        format!(
            "{}{SENDER}",
            with_channel(&edit(
                WHATSAPP,
                "chat_ids = [\"79001234567@c.us\"]",
                chat_ids
            ))
        )
    };
    assert_has(
        &error(&toml("")),
        &[
            "channel[0].chat_ids: missing: the chats to send to, e.g. chat_ids = \
           [\"79001234567@c.us\"]",
        ],
    );
    assert_has(
        &error(&toml("chat_ids = []")),
        &["channel[0].chat_ids: must list at least one chat"],
    );
    let e = error(&toml(
        "chat_ids = [\"79001234567@c.us\", \"+79001234567@c.us\", \"123456@c.us\", \
         \"79001234567\", \"abc-1@g.us\", \"120363043968066561@g.us\"]",
    ));
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 4, "{e}");
    assert_has(
        &e,
        &[
            "channel[0].chat_ids[1]: must be \"<number>@c.us\" for a person (7 to 15 digits, \
             international form without +, e.g. \"79001234567@c.us\") or \"<group id>@g.us\" \
             for a group (digits and dashes, e.g. \"120363043968066561@g.us\"); got \
             \"+79001234567@c.us\"",
            "channel[0].chat_ids[2]: a person's number before @c.us must be 7 to 15 digits \
             (got 6 in \"123456@c.us\")",
            "channel[0].chat_ids[3]: must be \"<number>@c.us\"",
            "channel[0].chat_ids[4]: must be \"<number>@c.us\"",
        ],
    );
}

#[test]
fn unknown_timezone_is_rejected() {
    let e = error(&with_defaults("timezone = \"Mars/Olympus\""));
    assert_has(
        &e,
        &[
            "relinkd.toml: defaults.timezone: unknown time zone \"Mars/Olympus\" (expected an \
           IANA name such as \"Europe/London\", \"America/New_York\" or \"UTC\")",
        ],
    );
    let e = error(&with_instance_key("timezone = \"GMT+25\""));
    assert_has(&e, &["instance[0].timezone: unknown time zone \"GMT+25\""]);
    let e = error(&with_instance_key("timezone = 3"));
    assert_has(
        &e,
        &[
            "instance[0].timezone: must be an IANA name such as \"Europe/London\"",
            "(got the integer 3)",
        ],
    );
}

#[test]
fn every_problem_of_a_new_channel_is_reported() {
    let e = channel_error(
        "type = \"email\"\nsmtp_host = \"a b\"\ntls = \"ssl\"\npassword = \"p\"\n\
         from = \"x\"\nto = []\nrate_limit_per_minute = 0\nchat_id = 1\n",
    );
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 7, "{e}");
    for key in [
        "rate_limit_per_minute",
        "chat_id",
        "smtp_host",
        "tls",
        "password",
        "from",
        "to",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!("channel[0].{key}: "))),
            "{key} not reported:\n{e}"
        );
    }
}

// --------------------------------------------------------------- secrets

const MARKER: &str = "Zq9MARKERsecretVALUE7x";

/// Asserts the marker (and, for webhook keys, its base64) is nowhere in `text`.
fn assert_no_secret(what: &str, text: &str) {
    let b64 = base64::engine::general_purpose::STANDARD.encode(MARKER);
    for needle in [MARKER, b64.as_str(), "987654321987"] {
        assert!(!text.contains(needle), "{what} leaks a secret:\n{text}");
    }
}

#[test]
fn secrets_never_appear_in_debug_warnings_or_errors() {
    let whsec = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(MARKER)
    );
    let dir = TempDir::new();
    dir.write_mode("secrets/admin", MARKER, 0o644); // also triggers a warning
    dir.write("creds/token", MARKER);
    dir.write("secrets/hook", &whsec);
    let slack_url = format!("https://hooks.slack.com/services/T0/B0/{MARKER}");
    dir.write_mode("secrets/slack", &slack_url, 0o640); // also triggers a warning
    dir.write("creds/smtp", MARKER);
    let creds = dir.path().join("creds");
    let environment = env(&[
        ("TOKEN_ENV", MARKER),
        ("HOOK_ENV", &whsec),
        ("CREDENTIALS_DIRECTORY", creds.to_str().unwrap()),
        ("BAD_HOOK", &format!("whsec_{MARKER}!!")),
        ("SLACK_ENV", &slack_url),
        ("BAD_SLACK", &format!("ftp://hooks.example/{MARKER}")),
        ("SPACED_SLACK", &format!("https://hooks.example/ {MARKER}")),
    ]);
    let toml = format!(
        r#"
[daemon]
admin_token_file = "secrets/admin"

[[channel]]
name = "a"
type = "webhook"
url = "https://a.example"
secret_file = "secrets/hook"

[[channel]]
name = "b"
type = "webhook"
url = "https://b.example"
secret_env = "HOOK_ENV"

[[channel]]
name = "c"
type = "webhook"
url = "https://c.example"
secret = "{whsec}"

[[channel]]
name = "tg-env"
type = "telegram"
bot_token_env = "TOKEN_ENV"
chat_id = -100123

[[channel]]
name = "tg-inline"
type = "telegram"
bot_token = "{MARKER}"
chat_id = "@relinkd_ops"

[[channel]]
name = "slack-inline"
type = "slack"
url = "{slack_url}"

[[channel]]
name = "slack-file"
type = "slack"
url_file = "secrets/slack"

[[channel]]
name = "slack-env"
type = "slack"
url_env = "SLACK_ENV"

[[channel]]
name = "mail-inline"
type = "email"
smtp_host = "smtp.example.com"
tls = "none"
username = "relinkd"
password = "{MARKER}"
from = "relinkd@example.com"
to = ["ops@example.com"]

[[channel]]
name = "mail-cred"
type = "email"
smtp_host = "smtp.example.com"
username = "relinkd"
password_credential = "smtp"
from = "relinkd@example.com"
to = ["ops@example.com"]

[[instance]]
id = 1
name = "file"
api_url = "https://x.example"
api_token_file = "secrets/admin"
phone = 1234567
channels = ["a", "b", "c", "tg-env", "tg-inline", "slack-inline", "slack-file", "slack-env", "mail-inline", "mail-cred"]

[[instance]]
id = 2
name = "env"
api_url = "https://x.example"
api_token_env = "TOKEN_ENV"
phone = 1234567
channels = ["a"]

[[instance]]
id = 3
name = "cred"
api_url = "https://x.example"
api_token_credential = "token"
phone = 1234567
channels = ["a"]

[[instance]]
id = 4
name = "inline"
api_url = "https://x.example"
api_token = "{MARKER}"
phone = 1234567
channels = ["a"]
"#
    );
    let path = dir.write("relinkd.toml", &toml);
    let config = load_with(&path, &environment).unwrap_or_else(|e| panic!("{e}"));
    // Loaded correctly...
    assert_eq!(
        config.daemon.admin_token.as_ref().unwrap().expose_secret(),
        MARKER
    );
    for inst in &config.instances {
        assert_eq!(inst.api_token.expose_secret(), MARKER);
    }
    for ch in &config.channels {
        match &ch.kind {
            ChannelKind::Webhook(relinkd::config::WebhookConfig { secret, .. }) => {
                assert_eq!(secret.as_ref().unwrap().expose(), MARKER.as_bytes())
            }
            ChannelKind::Telegram(relinkd::config::TelegramConfig { bot_token, .. }) => {
                assert_eq!(bot_token.expose_secret(), MARKER)
            }
            ChannelKind::Slack(relinkd::config::SlackConfig { url }) => {
                assert_eq!(url.expose_secret(), slack_url)
            }
            ChannelKind::Email(relinkd::config::EmailConfig { password, .. }) => {
                assert_eq!(password.as_ref().unwrap().expose_secret(), MARKER)
            }
            other => unreachable!("{other:?}"),
        }
    }
    // ...and never shown.
    assert_no_secret("Debug", &format!("{config:?}"));
    assert_no_secret("Debug (pretty)", &format!("{config:#?}"));
    let all = config.warnings.join("\n");
    // 3 mode, 5 inline (one of them the Slack URL), 1 password sent in clear.
    assert_eq!(config.warnings.len(), 9, "{all}");
    assert_has(
        &all,
        &[
            "channel[4].bot_token: secret is written inline",
            "channel[5].url: the Slack webhook URL is a secret",
            "channel[6].url_file: ",
            "channel[8].password: secret is written inline",
            "channel[8].tls: is \"none\": the SMTP password is sent in clear text",
        ],
    );
    for w in &config.warnings {
        assert_no_secret("warning", w);
    }

    // Every error we can provoke around a secret.
    let errors = [
        // invalid webhook secret (value is invalid base64 containing the marker)
        toml.replacen("secret_env = \"HOOK_ENV\"", "secret_env = \"BAD_HOOK\"", 1),
        toml.replacen(
            &format!("secret = \"{whsec}\""),
            &format!("secret = \"{MARKER}!!\""),
            1,
        ),
        // inline secret of the wrong type
        toml.replacen(
            &format!("api_token = \"{MARKER}\""),
            "api_token = 987654321987",
            1,
        ),
        toml.replacen(&format!("secret = \"{whsec}\""), "secret = 987654321987", 1),
        // syntax error on the line holding the secret
        toml.replacen(
            &format!("api_token = \"{MARKER}\""),
            &format!("api_token = \"{MARKER}"),
            1,
        ),
        toml.replacen(
            &format!("api_token = \"{MARKER}\""),
            &format!("api_token = {MARKER}"),
            1,
        ),
        // misspelt key holding a secret
        toml.replacen(
            &format!("api_token = \"{MARKER}\""),
            &format!("api_tokn = \"{MARKER}\""),
            1,
        ),
        // two sources, one inline
        toml.replacen(
            &format!("api_token = \"{MARKER}\""),
            &format!("api_token = \"{MARKER}\"\napi_token_env = \"TOKEN_ENV\""),
            1,
        ),
        // duplicate key holding the secret
        toml.replacen(
            &format!("api_token = \"{MARKER}\""),
            &format!("api_token = \"{MARKER}\"\napi_token = \"{MARKER}\""),
            1,
        ),
        // an instance that fails for another reason, with secrets loaded
        toml.replacen("id = 2", "id = 0", 1)
            .replacen("phone = 1234567", "phone = 12", 1),
        // a secret on a console channel
        format!("[[channel]]\nname = \"k\"\ntype = \"console\"\nsecret = \"{MARKER}\"\n"),
        // admin token given twice
        toml.replacen(
            "admin_token_file = \"secrets/admin\"",
            &format!("admin_token_file = \"secrets/admin\"\nadmin_token = \"{MARKER}\""),
            1,
        ),
        // Slack URLs that are not http(s) URLs, from each kind of source
        toml.replacen("url_env = \"SLACK_ENV\"", "url_env = \"BAD_SLACK\"", 1),
        toml.replacen("url_env = \"SLACK_ENV\"", "url_env = \"SPACED_SLACK\"", 1),
        toml.replacen(
            &format!("url = \"{slack_url}\""),
            &format!("url = \"{MARKER}\""),
            1,
        ),
        toml.replacen(&format!("url = \"{slack_url}\""), "url = 987654321987", 1),
        // Slack URL given twice
        toml.replacen(
            "url_env = \"SLACK_ENV\"",
            &format!("url_env = \"SLACK_ENV\"\nurl = \"{slack_url}\""),
            1,
        ),
        // bot token of the wrong type, twice, or on a channel of another type
        toml.replacen(
            &format!("bot_token = \"{MARKER}\""),
            "bot_token = 987654321987",
            1,
        ),
        toml.replacen(
            &format!("bot_token = \"{MARKER}\""),
            &format!("bot_token = \"{MARKER}\"\nbot_token_env = \"TOKEN_ENV\""),
            1,
        ),
        toml.replacen(
            "url = \"https://a.example\"",
            &format!("url = \"https://a.example\"\nbot_token = \"{MARKER}\""),
            1,
        ),
        // a telegram channel failing for another reason, token loaded
        toml.replacen("chat_id = -100123", "chat_id = \"nobody\"", 1),
        // password without username, twice, wrong type, on a slack channel
        toml.replacen("username = \"relinkd\"\npassword = ", "password = ", 1),
        toml.replacen(
            &format!("password = \"{MARKER}\""),
            &format!("password = \"{MARKER}\"\npassword_credential = \"smtp\""),
            1,
        ),
        toml.replacen(
            &format!("password = \"{MARKER}\""),
            "password = 987654321987",
            1,
        ),
        toml.replacen(
            "url_file = \"secrets/slack\"",
            &format!("url_file = \"secrets/slack\"\npassword = \"{MARKER}\""),
            1,
        ),
        // an email channel failing for another reason, password loaded
        toml.replacen("to = [\"ops@example.com\"]", "to = []", 1),
    ];
    for (i, bad) in errors.iter().enumerate() {
        let path = dir.write("bad.toml", bad);
        match load_with(&path, &environment) {
            Ok(_) => panic!("case {i} unexpectedly loaded"),
            Err(e) => {
                if std::env::var_os("SHOW").is_some() {
                    eprintln!("--- case {i}\n{e}");
                }
                assert_no_secret(&format!("error case {i}"), &e.to_string());
                assert_no_secret(&format!("error case {i} (Debug)"), &format!("{e:?}"));
            }
        }
    }
}

#[test]
fn arbitrary_input_never_panics() {
    // A few hostile inputs: non-UTF-8, deep nesting, huge numbers, odd types.
    let dir = TempDir::new();
    let inputs: [&[u8]; 10] = [
        b"\xff\xfe\x00garbage",
        b"[[instance]]\nid = 9223372036854775807\nphone = 9223372036854775807\n",
        b"[defaults]\ncooldown = \"99999999999999999999s\"\n",
        b"[defaults]\ncooldown = \"1000000 years\"\ncode_ttl = 1.5\n",
        b"[[channel]]\n[[instance]]\n[[instance]]\nchannels = [\"\"]\n",
        b"[daemon]\nlisten = \"[::1]:70000\"\nstate_dir = \"\"\n",
        b"instance = 3\n",
        b"[daemon]\nadmin_token_credential = \"../etc/passwd\"\nadmin_token_file = \"/dev/zero\"\n",
        b"[daemon]\nadmin_token_file = \"/dev/zero\"\n",
        b"[daemon]\nadmin_token_credential = \"../etc/passwd\"\n",
    ];
    for input in inputs {
        let path = dir.path().join("x.toml");
        fs::write(&path, input).unwrap();
        let result = load_with(&path, &env(&[]));
        if std::env::var_os("SHOW").is_some() {
            eprintln!("---\n{}", result.as_ref().unwrap_err());
        }
        assert!(result.is_err(), "{:?}", String::from_utf8_lossy(input));
    }
}

// ------------------------------------------------- hardening (issue 8)

#[test]
fn a_fifo_as_a_secret_file_or_config_is_refused_at_once_without_hanging() {
    let dir = TempDir::new();
    let fifo = dir.path().join("token-fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let toml = replace(
        "api_token_file = \"token\"",
        "api_token_file = \"token-fifo\"",
    );
    // On a thread, so a regression hangs one thread, not the suite: the
    // answer must come at once (nobody ever writes to the FIFO).
    let (tx, rx) = std::sync::mpsc::channel();
    let path = dir.write("relinkd.toml", &toml);
    std::thread::spawn(move || {
        let _ = tx.send(
            load_with(&path, &env(&[]))
                .map(|_| ())
                .map_err(|e| e.to_string()),
        );
    });
    let result = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("loading a config that names a FIFO hung");
    let e = result.unwrap_err();
    assert_has(
        &e,
        &[
            "instance[0].api_token_file: ",
            "token-fifo",
            "is not a regular file",
        ],
    );

    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(
            load_with(&fifo, &env(&[]))
                .map(|_| ())
                .map_err(|e| e.to_string()),
        );
    });
    let e = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("loading a FIFO as the config hung")
        .unwrap_err();
    assert_has(
        &e,
        &["cannot read the config file", "is not a regular file"],
    );
}

#[test]
fn sub_second_code_ttl_or_cooldown_is_rejected() {
    for (key, value) in [
        ("code_ttl", "1ns"),
        ("cooldown", "1ns"),
        ("code_ttl", "999ms"),
    ] {
        let e = error(&with_defaults(&format!("{key} = \"{value}\"")));
        assert_has(
            &e,
            &[
                &format!("defaults.{key}: must be at least 1s"),
                "WhatsApp locks the number out",
            ],
        );
        let e = error(&with_instance_key(&format!("{key} = \"{value}\"")));
        assert_has(&e, &[&format!("instance[0].{key}: must be at least 1s")]);
    }
}

#[test]
fn settings_that_spend_whatsapps_pairing_budget_fast_are_warned_about_not_refused() {
    let config = ok(&with_defaults(
        "code_ttl = \"20s\"\ncooldown = \"1m\"\ncodes_per_episode = 7",
    ));
    let all = config.warnings.join("\n");
    assert_has(
        &all,
        &[
            "defaults.code_ttl: 20s is far shorter than a code lives",
            "defaults.cooldown: 1m is short",
            "defaults: codes_per_episode = 7, code_ttl = 20s and cooldown = 1m allow up to 126 \
             linking codes an hour",
        ],
    );
    assert_eq!(config.warnings.len(), 3, "{all}");
    // The budget alone: 5 codes per 12.5 minutes and a 30 minute pause.
    let config = ok(&with_defaults("codes_per_episode = 5\ncooldown = \"30m\""));
    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    assert_has(
        &config.warnings[0],
        &["allow up to 10 linking codes an hour"],
    );
    // The defaults are fine; so is the most a budget may hold with them.
    assert!(ok(BASE).warnings.is_empty());
    assert!(
        ok(&with_defaults("codes_per_episode = 7"))
            .warnings
            .is_empty()
    );
    // An instance that overrides the budget is warned about by its own key.
    let config = ok(&with_instance_key("cooldown = \"10s\""));
    assert_has(
        &config.warnings.join("\n"),
        &["instance[0].cooldown: 10s is short"],
    );
}

#[test]
fn a_template_too_costly_to_render_is_rejected() {
    let bomb = "{% for i in range(100000) %}{% for j in range(100000) %}{{ code }}{% endfor %}{% endfor %}";
    let toml = format!(
        "{BASE}\n[[channel]]\nname = \"extra\"\ntype = \"console\"\n\
         [channel.templates]\ncode = '{bomb}'\n"
    );
    let e = error(&toml);
    assert_has(&e, &["channel[1].templates.code: too costly to render"]);
}
