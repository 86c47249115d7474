//! No secret of a config appears in any text relinkd makes of it, and no
//! input makes loading panic.

use crate::support::*;

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
    // 2 mode (secrets/admin, read by two keys, is warned about once), 5
    // inline (one of them the Slack URL), 1 password sent in clear.
    assert_eq!(config.warnings.len(), 8, "{all}");
    assert_has(
        &all,
        &[
            "channel \"tg-inline\" (line 32): bot_token: secret is written inline",
            "channel \"slack-inline\" (line 38): url: the Slack webhook URL is a secret",
            "channel \"slack-file\" (line 43): url_file: ",
            "channel \"mail-inline\" (line 56): password: secret is written inline",
            "channel \"mail-inline\" (line 54): tls: is \"none\": the SMTP password is sent in clear text",
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
