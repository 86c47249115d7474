//! Invalid configs are refused with a message naming the file, the key and
//! what is wrong.

use crate::support::*;

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
fn unknown_keys_and_bad_syntax_are_rejected_where_they_are() {
    assert_rejected(&[
        (
            "a TOML syntax error",
            "[daemon]\nlisten = \n".into(),
            &["relinkd.toml: daemon.listen (line 2, column 10): string values must be quoted"],
        ),
        (
            "a misspelt [daemon] key",
            with_daemon("listne = \"127.0.0.1:1\""),
            &[
                "relinkd.toml: daemon.listne (line 2): unknown field `listne`",
                "`listen`",
            ],
        ),
        (
            "a [defaults] key relinkd does not have",
            with_defaults("linking_window = \"0 0 8-19 * * Mon-Fri\""),
            &["relinkd.toml: defaults.linking_window (line 2): unknown field `linking_window`"],
        ),
        (
            "another [defaults] key relinkd does not have",
            with_defaults("time_zone = \"Europe/London\""),
            &["defaults.time_zone (line 2): unknown field `time_zone`"],
        ),
        (
            "a key no channel type takes",
            replace("type = \"console\"", "type = \"console\"\ncolour = \"red\""),
            &["relinkd.toml: channel \"ops\" (line 5): colour: unknown field `colour`"],
        ),
        (
            "an [[instance]] key relinkd does not have",
            with_instance_key("linking_window = \"x\""),
            &[
                "relinkd.toml: instance \"sales-line\" (line 13): linking_window: unknown field \
                 `linking_window`",
            ],
        ),
        (
            "a misspelt top-level table",
            format!("{BASE}\n[[instances]]\nid = 1\n"),
            &[
                "instances (line 14): unknown field `instances`",
                "`instance`",
            ],
        ),
    ]);
}

#[test]
fn bad_daemon_values_are_rejected() {
    assert_rejected(&[
        (
            "a host name as listen address",
            with_daemon("listen = \"localhost:7788\""),
            &[
                "relinkd.toml: daemon.listen: must be an IP address and port",
                "\"localhost:7788\"",
            ],
        ),
        (
            "no concurrent requests",
            with_daemon("max_concurrent_requests = 0"),
            &["daemon.max_concurrent_requests: must be between 1 and 10000 (got 0)"],
        ),
        (
            "an unknown log format",
            with_daemon("log_format = \"xml\""),
            &["daemon.log_format: must be \"text\" or \"json\" (got \"xml\")"],
        ),
    ]);
}

#[test]
fn bad_settings_are_rejected() {
    assert_rejected(&[
        (
            "a duration in unknown units",
            with_defaults("cooldown = \"5 parsecs\""),
            &[
                "relinkd.toml: defaults.cooldown: invalid duration \"5 parsecs\"",
                "parsecs",
            ],
        ),
        (
            "a duration as a bare number",
            with_defaults("cooldown = 60"),
            &["defaults.cooldown: must be a duration string such as \"60s\""],
        ),
        (
            "a zero request timeout",
            with_instance_key("request_timeout = \"0s\""),
            &["instance[0].request_timeout: must be greater than zero"],
        ),
        (
            "no codes per episode",
            with_defaults("codes_per_episode = 0"),
            &["defaults.codes_per_episode: must be at least 1 (got 0)"],
        ),
        (
            "more codes per episode than WhatsApp allows",
            with_instance_key("codes_per_episode = 8"),
            &[
                "instance[0].codes_per_episode: must be at most 7 (got 8)",
                "WhatsApp locks a number out",
                "about 7 codes in a row",
            ],
        ),
    ]);
}

#[test]
fn bad_instance_values_are_rejected() {
    assert_rejected(&[
        (
            "a phone with + and spaces",
            replace("phone = 441234567890", "phone = \"+44 1234\""),
            &[
                "relinkd.toml: instance[0].phone: must be digits only",
                "no + or spaces",
            ],
        ),
        (
            "a phone too short",
            replace("phone = 441234567890", "phone = 12345"),
            &["relinkd.toml: instance[0].phone: must be 7 to 15 digits (got 5)"],
        ),
        (
            "a phone too long",
            replace("phone = 441234567890", "phone = \"1234567890123456\""),
            &["instance[0].phone: must be 7 to 15 digits (got 16)"],
        ),
        (
            "id 0",
            replace("id = 1101000001", "id = 0"),
            &["instance[0].id: must be a positive integer (got 0)"],
        ),
        (
            "a negative id",
            replace("id = 1101000001", "id = -5"),
            &["instance[0].id: must be a positive integer (got -5)"],
        ),
        (
            "an id in quotes",
            replace("id = 1101000001", "id = \"1101000001\""),
            &["instance[0].id: must be a TOML integer, not a string"],
        ),
        (
            "a name as id",
            replace("id = 1101000001", "id = \"sales\""),
            &["instance[0].id: must be a positive integer", "\"sales\""],
        ),
        (
            "an api_url without scheme",
            replace("https://1101.api.greenapi.com/", "1101.api.greenapi.com"),
            &["instance[0].api_url: must start with http:// or https://"],
        ),
        (
            "a channel no [[channel]] defines",
            replace("channels = [\"ops\"]", "channels = [\"ops\", \"pager\"]"),
            &["instance[0].channels: unknown channel \"pager\"; configured channels: \"ops\""],
        ),
        (
            "no channels",
            replace("channels = [\"ops\"]", "channels = []"),
            &["instance[0].channels: must list at least one channel"],
        ),
    ]);
}

#[test]
fn bad_channel_values_are_rejected() {
    assert_rejected(&[
        (
            "a secret on a console channel",
            replace(
                "type = \"console\"",
                "type = \"console\"\nsecret_file = \"x\"",
            ),
            &["relinkd.toml: channel[0].secret_file: not allowed for a console channel"],
        ),
        (
            "a zero channel timeout",
            replace(
                "type = \"console\"",
                "type = \"console\"\ntimeout = \"0ms\"",
            ),
            &["channel[0].timeout: must be greater than zero"],
        ),
        (
            "a channel name that cannot be a label",
            edit(
                &replace("name = \"ops\"", "name = \"ops hook\""),
                "[\"ops\"]",
                "[\"ops hook\"]",
            ),
            &[
                "channel[0].name: must be 1 to 64 characters",
                "metric label",
            ],
        ),
        (
            "an unknown channel type",
            replace("type = \"console\"", "type = \"pager\""),
            &[
                "channel[0].type: unknown channel type \"pager\"; known types are \"webhook\", \
                 \"console\", \"telegram\", \"slack\", \"email\", \"whatsapp\"",
            ],
        ),
        (
            "a webhook URL that is not HTTP",
            format!(
                "[[channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"ftp://h.example\"\n{BASE}"
            ),
            &["channel[0].url: must start with http:// or https://"],
        ),
        (
            "a webhook without URL",
            format!("[[channel]]\nname = \"hook\"\ntype = \"webhook\"\n{BASE}"),
            &["channel[0].url: missing"],
        ),
    ]);
}

#[test]
fn duplicate_ids_are_rejected() {
    let second = BASE.split("[[instance]]").nth(1).unwrap();
    let second = edit(second, "sales-line", "other-line");
    let e = error(&format!("{BASE}\n[[instance]]{second}"));
    assert_has(
        &e,
        &["instance[1].id: duplicate id 1101000001 (also instance \"sales-line\")"],
    );
}

#[test]
fn duplicate_instance_names_are_rejected() {
    let second = BASE.split("[[instance]]").nth(1).unwrap();
    let second = edit(second, "1101000001", "1101000002");
    let e = error(&format!("{BASE}\n[[instance]]{second}"));
    assert_has(
        &e,
        &["instance[1].name: duplicate instance name \"sales-line\" (also [[instance]] number 1)"],
    );
}

#[test]
fn duplicate_channel_names_are_rejected() {
    let e = error(&format!(
        "[[channel]]\nname = \"ops\"\ntype = \"console\"\n{BASE}"
    ));
    assert_has(
        &e,
        &["channel[1].name: duplicate channel name \"ops\" (also [[channel]] number 1)"],
    );
}

#[test]
fn bad_token_sources_are_rejected() {
    assert_rejected(&[
        (
            "no token",
            replace("api_token_file = \"token\"\n", ""),
            &[
                "instance[0].api_token: missing",
                "api_token_file, api_token_env, api_token_credential or api_token",
            ],
        ),
        (
            "two token sources",
            replace(
                "api_token_file = \"token\"",
                "api_token_file = \"token\"\napi_token_env = \"SALES_TOKEN\"",
            ),
            &["instance[0].api_token: given in more than one way (api_token_file, api_token_env)"],
        ),
        (
            "a token file that is not there",
            replace(
                "api_token_file = \"token\"",
                "api_token_file = \"nope/missing\"",
            ),
            &[
                "instance[0].api_token_file: ",
                "nope/missing",
                "cannot read",
            ],
        ),
        (
            // Tests may run as root, so no chmod 000.
            "a directory as token file",
            replace("api_token_file = \"token\"", "api_token_file = \".\""),
            &["instance[0].api_token_file: ", "is not a regular file"],
        ),
        (
            "an unset environment variable",
            replace(
                "api_token_file = \"token\"",
                "api_token_env = \"SALES_TOKEN\"",
            ),
            &["instance[0].api_token_env: environment variable SALES_TOKEN is not set"],
        ),
        (
            "a credential without systemd's directory",
            replace(
                "api_token_file = \"token\"",
                "api_token_credential = \"sales\"",
            ),
            &[
                "instance[0].api_token_credential: ",
                "$CREDENTIALS_DIRECTORY",
                "not set",
                "set by systemd's LoadCredential=",
            ],
        ),
    ]);
    assert_rejected_with(
        &[(
            "an empty environment variable",
            replace(
                "api_token_file = \"token\"",
                "api_token_env = \"SALES_TOKEN\"",
            ),
            &["instance[0].api_token_env: environment variable SALES_TOKEN is empty"],
        )],
        &env(&[("SALES_TOKEN", "")]),
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
    assert_has(
        &e,
        &[
            "instance \"sales-line\" (line 10): api_token_file: ",
            "blank: is empty",
        ],
    );
}

#[test]
fn a_credential_missing_from_its_directory_is_rejected() {
    let toml = replace(
        "api_token_file = \"token\"",
        "api_token_credential = \"sales\"",
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
fn all_problems_are_reported_one_per_line() {
    let toml =
        with_daemon("log_format = \"xml\"").replacen("phone = 441234567890", "phone = 12", 1);
    let err = load_str(&toml).unwrap_err();
    assert!(matches!(err, ConfigError::Multiple { .. }));
    let text = err.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].ends_with(
        "relinkd.toml: daemon.log_format (line 2): must be \"text\" or \"json\" (got \"xml\")"
    ));
    assert!(lines[1].ends_with(
        "relinkd.toml: instance \"sales-line\" (line 13): phone: must be 7 to 15 digits (got 2)"
    ));
    assert_eq!(err.issues().len(), 2);
}
