//! A channel's bad keys are refused naming the key, the type and what is
//! wrong.

use crate::support::*;

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
            "relinkd.toml: channel \"extra\" (line 9): templates.expired: unknown field `expired`",
            "`code`, `linked`, `paused`, `alert`, `resumed`, `digest`, `subject`",
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
    assert_eq!(shown(&e).len(), 4, "{e}");
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
            "channel \"extra\" (line 4): bot_token: secret is written inline in the config file; use \
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
            "channel \"extra\" (line 4): url_file: must start with http:// or https:// (the URL is a secret: it \
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
            "relinkd.toml: channel \"extra\" (line 7): tls: is \"none\": the SMTP password is sent in clear \
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
    assert_eq!(shown(&e).len(), 4, "{e}");
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
    assert_eq!(shown(&e).len(), 7, "{e}");
    let lines: Vec<&str> = e.lines().collect();
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
