//! Valid configs load, with their defaults and warnings.

use crate::support::*;

#[test]
fn full_fixture_loads_every_key() {
    let dir = TempDir::new();
    let path = dir.write("relinkd.toml", include_str!("../fixtures/config/full.toml"));
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
            digest: None,
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
    assert_eq!(&*one.api_url, "https://1101.api.greenapi.com");
    assert_eq!(one.api_token.expose_secret(), "token-one");
    assert_eq!(one.phone, 441234567890);
    assert_eq!(
        *one.channels,
        [
            "ops-hook",
            "console",
            "tg-ops",
            "tg-channel",
            "tg-group",
            "wa-admins"
        ]
    );
    assert_eq!(
        *one.settings,
        InstanceSettings {
            poll_interval: Duration::from_secs(90),
            linking_poll_interval: Duration::from_secs(3),
            code_ttl: Duration::from_secs(100),
            codes_per_episode: 7,
            cooldown: Duration::from_secs(7200),
            request_timeout: Duration::from_secs(15),
            backoff_max: Duration::from_secs(60),
            timezone: Some("America/New_York".into()),
            ..InstanceSettings::default()
        }
    );
    let two = &config.instances[1];
    assert_eq!(two.id, 110100000002);
    assert_eq!(&*two.api_url, "http://localhost:3000");
    assert_eq!(two.api_token.expose_secret(), "token-two");
    assert_eq!(two.phone, 4915123456789);
    assert_eq!(
        *two.settings,
        InstanceSettings {
            poll_interval: Duration::from_secs(30),
            linking_poll_interval: Duration::from_secs(2),
            code_ttl: Duration::from_secs(150),
            codes_per_episode: 3,
            cooldown: Duration::from_secs(45 * 60),
            request_timeout: Duration::from_secs(20),
            backoff_max: Duration::from_secs(600),
            timezone: Some("Europe/London".into()),
            ..InstanceSettings::default()
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
    assert_eq!(*config.instances[0].settings, InstanceSettings::default());
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
    let s: &InstanceSettings = &config.instances[0].settings;
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
            ..InstanceSettings::default()
        }
    );
    assert_eq!(*s, InstanceSettings::default());
    assert_eq!(
        &*config.instances[0].api_url,
        "https://1101.api.greenapi.com"
    );
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
            "defaults.poll_interval (line 2): 500ms is below the 1s minimum",
            "instance \"sales-line\" (line 15): linking_poll_interval: 200ms",
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
            "relinkd.toml: instance \"sales-line\" (line 10): api_token: ",
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
            "instance \"sales-line\" (line 10): api_token_file",
            "open-token",
            "readable by group or others",
            "0644",
            "chmod 600",
        ],
    );
}

#[test]
fn a_token_file_shared_by_a_fleet_is_read_once_and_warned_about_once() {
    let dir = TempDir::new();
    dir.write_mode("open-token", "tok\n", 0o644);
    let mut toml = String::from("[[channel]]\nname = \"ops\"\ntype = \"console\"\n");
    for i in 0..1000 {
        toml.push_str(&format!(
            "\n[[instance]]\nid = {}\nname = \"line-{i}\"\n\
             api_url = \"https://1101.api.greenapi.com\"\n\
             api_token_file = \"open-token\"\nphone = {}\nchannels = [\"ops\"]\n",
            1_101_000_001 + i,
            441_234_500_000_u64 + i
        ));
    }
    let config = load_in(&dir, &toml, &env(&[])).unwrap();
    assert_eq!(config.instances.len(), 1000);
    let (first, last) = (&config.instances[0], &config.instances[999]);
    assert!(
        std::sync::Arc::ptr_eq(&first.api_url, &last.api_url)
            && std::sync::Arc::ptr_eq(&first.channels, &last.channels),
        "one copy of a vendor host's URL and of a channel list, whatever the fleet's size"
    );
    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    assert_has(
        &config.warnings[0],
        &[
            "instance \"line-0\" (line 9): api_token_file",
            "open-token",
            "0644",
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

#[test]
fn reboot_stuck_after_is_opt_in_and_at_least_a_minute() {
    assert_eq!(ok(BASE).instances[0].settings.reboot_stuck_after, None);
    let config = ok(&with_defaults("reboot_stuck_after = \"10m\""));
    assert_eq!(
        config.instances[0].settings.reboot_stuck_after,
        Some(Duration::from_secs(600))
    );
    let e = error(&with_instance_key("reboot_stuck_after = \"30s\""));
    assert_has(
        &e,
        &["instance[0].reboot_stuck_after: must be at least 1m (got 30s)"],
    );
}

#[test]
fn instances_with_alike_settings_share_one_copy_of_them() {
    let instance = |id: u64, extra: &str| {
        format!(
            "[[instance]]\nid = {id}\nname = \"line-{id}\"\napi_url = \"https://1101.api.greenapi.com\"\n\
             api_token_file = \"token\"\nphone = 44123456{id:04}\nchannels = [\"ops\"]\n{extra}\n"
        )
    };
    let toml = format!(
        "[[channel]]\nname = \"ops\"\ntype = \"console\"\n{}{}{}",
        instance(1, ""),
        instance(2, "poll_interval = \"2m\""),
        instance(3, ""),
    );
    let config = ok(&toml);
    let settings = |i: usize| &config.instances[i].settings;
    assert!(std::sync::Arc::ptr_eq(settings(0), settings(2)));
    assert!(!std::sync::Arc::ptr_eq(settings(0), settings(1)));
    assert_eq!(settings(1).poll_interval, Duration::from_secs(120));
    assert_eq!(settings(0).poll_interval, Duration::from_secs(60));
}
