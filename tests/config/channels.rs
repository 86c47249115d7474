//! Channels of every type load with their keys, defaults and warnings.

use crate::support::*;

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
            "relinkd.toml: channel \"extra\" (line 4): url: the Slack webhook URL is a secret",
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
            "relinkd.toml: instance \"sales-line\" (line 18): channels: channel \"extra\" sends through this instance \
             itself; relinkd skips it for this instance's own messages",
        ],
    );
}
