//! `[daemon] ca_file` and the proxy variables: what outbound connections
//! trust and go through, refused with the key, the file and the problem.

use crate::support::*;

/// A CA certificate and its key, PEM.
fn ca() -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
}

/// Loads BASE with `ca_file = "<name>"` after writing `contents` to `name`.
fn load_with_ca(name: &str, contents: &str) -> (TempDir, Result<Config, ConfigError>) {
    let dir = TempDir::new();
    dir.write_mode(name, contents, 0o644);
    let toml = with_daemon(&format!("ca_file = \"{name}\""));
    let loaded = load_in(&dir, &toml, &env(&[]));
    (dir, loaded)
}

fn ca_error(name: &str, contents: &str) -> String {
    let (dir, loaded) = load_with_ca(name, contents);
    let text = loaded.expect_err("a bad ca_file is refused").to_string();
    // The key and the file, both.
    assert_has(
        &text,
        &[
            "relinkd.toml: daemon.ca_file (line 2): ",
            &dir.path().join(name).display().to_string(),
        ],
    );
    text
}

#[test]
fn a_pem_ca_file_relative_to_the_config_is_read_whole() {
    let (first, _) = ca();
    let (second, _) = ca();
    let (dir, loaded) = load_with_ca("certs/ca.pem", &format!("{first}{second}"));
    let config = loaded.unwrap();
    let ca_file = config.daemon.egress.ca_file.expect("ca_file is read");
    assert_eq!(ca_file.path, dir.path().join("certs/ca.pem"));
    assert_eq!(ca_file.certificates.len(), 2);
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    assert_eq!(ok(BASE).daemon.egress, Default::default());
}

#[test]
fn a_ca_file_that_is_missing_not_pem_or_holds_no_certificate_is_refused() {
    let missing = {
        let dir = TempDir::new();
        let text = load_in(&dir, &with_daemon("ca_file = \"nowhere.pem\""), &env(&[]))
            .unwrap_err()
            .to_string();
        assert_has(
            &text,
            &["daemon.ca_file (line 2): ", "nowhere.pem: cannot read"],
        );
        text
    };
    assert!(missing.contains("No such file"), "{missing}");

    let der = ca_error("ca.der", "\u{30}\u{82}\u{01}\u{0a} not text");
    assert_has(&der, &["is not PEM", "openssl x509 -inform der"]);

    let (_, key) = ca();
    let key_only = ca_error("key.pem", &key);
    assert_has(&key_only, &["holds no certificate"]);
    // Whatever a file holds, an error never quotes it.
    let body = key.lines().nth(1).unwrap();
    assert!(!key_only.contains(body), "{key_only}");

    let garbage = ca_error(
        "bad.pem",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    assert_has(
        &garbage,
        &["certificate 1 is not a valid X.509 certificate"],
    );

    let truncated = ca_error("cut.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n");
    assert_has(&truncated, &["is not valid PEM"]);

    let empty = error(&with_daemon("ca_file = \"\""));
    assert_has(&empty, &["daemon.ca_file (line 2): is empty"]);
}

#[test]
fn a_ca_file_that_is_a_directory_or_a_fifo_is_refused_without_reading() {
    let dir = TempDir::new();
    fs::create_dir_all(dir.path().join("certs")).unwrap();
    let text = load_in(&dir, &with_daemon("ca_file = \"certs\""), &env(&[]))
        .unwrap_err()
        .to_string();
    assert_has(
        &text,
        &["daemon.ca_file (line 2): ", "is not a regular file"],
    );

    let fifo = dir.path().join("ca-fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let started = std::time::Instant::now();
    let text = load_in(&dir, &with_daemon("ca_file = \"ca-fifo\""), &env(&[]))
        .unwrap_err()
        .to_string();
    assert_has(&text, &["ca-fifo: is not a regular file"]);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_private_key_in_the_ca_file_is_warned_about() {
    let (cert, key) = ca();
    let (_dir, loaded) = load_with_ca("ca.pem", &format!("{cert}{key}"));
    let config = loaded.unwrap();
    assert_eq!(config.daemon.egress.ca_file.unwrap().certificates.len(), 1);
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("daemon.ca_file") && w.contains("private key")),
        "{:?}",
        config.warnings
    );
}

#[test]
fn admin_commands_do_not_read_the_ca_file() {
    let dir = TempDir::new();
    dir.write("token", TOKEN);
    let path = dir.write("relinkd.toml", &with_daemon("ca_file = \"nowhere.pem\""));
    let daemon = relinkd::config::load_daemon_section(&path, &env(&[]), false).unwrap();
    assert_eq!(daemon.egress, Default::default());
}

#[test]
fn proxies_come_from_the_environment_and_a_bad_one_is_named_not_quoted() {
    let environment = env(&[
        ("HTTPS_PROXY", "http://ops:pa55word@proxy.corp:3128"),
        ("no_proxy", "localhost,.internal"),
    ]);
    let config = load_in(&TempDir::new(), BASE, &environment).unwrap();
    let proxies = &config.daemon.egress.proxies;
    assert_eq!(
        proxies.https.as_ref().map(ToString::to_string).as_deref(),
        Some("http://proxy.corp:3128")
    );
    assert_eq!(proxies.http, None);
    assert_eq!(proxies.no_proxy.as_deref(), Some("localhost,.internal"));
    assert!(!format!("{config:?}").contains("pa55word"));

    let text = error_with(BASE, &env(&[("HTTP_PROXY", "ftp://ops:pa55word@proxy:21")]));
    assert_has(
        &text,
        &["relinkd.toml: $HTTP_PROXY: ", "http:// or https://"],
    );
    assert!(!text.contains("pa55word"), "{text}");
}
