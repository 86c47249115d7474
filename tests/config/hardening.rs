//! Hostile files and settings: FIFOs, sub-second windows, lockout-prone
//! budgets, costly templates.

use crate::support::*;

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
            "instance \"sales-line\" (line 10): api_token_file: ",
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
            "defaults.code_ttl (line 2): 20s is far shorter than a code lives",
            "defaults.cooldown (line 3): 1m is short",
            "defaults (line 1): codes_per_episode = 7, code_ttl = 20s and cooldown = 1m allow up to 126 \
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
        &["instance \"sales-line\" (line 13): cooldown: 10s is short"],
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
