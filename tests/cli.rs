//! The command line as an operator uses it.

use std::process::Command;

fn relinkd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_relinkd"))
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const GOOD: &str = r#"
[[channel]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:9/hook"

[[instance]]
id = 110100000001
name = "sales-line"
api_url = "https://1101.api.greenapi.com"
api_token_env = "RELINKD_TEST_TOKEN"
phone = 441234567890
channels = ["hook"]
"#;

#[test]
fn check_config_accepts_a_valid_config_and_summarises_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "relinkd.toml", GOOD);
    let out = relinkd()
        .args(["check-config", "--config"])
        .arg(&path)
        .env("RELINKD_TEST_TOKEN", "tok-cli-123456")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1 instances"), "{stdout}");
    assert!(!stdout.contains("tok-cli-123456"));
}

#[test]
fn check_config_rejects_a_bad_phone_naming_the_key_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "relinkd.toml",
        &GOOD.replace("phone = 441234567890", "phone = \"+44 1234\""),
    );
    let out = relinkd()
        .args(["check-config", "--config"])
        .arg(&path)
        .env("RELINKD_TEST_TOKEN", "tok-cli-123456")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("relinkd.toml"), "{stderr}");
    assert!(stderr.contains("phone"), "{stderr}");
}

#[test]
fn check_config_rejects_an_unknown_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "relinkd.toml",
        &format!("{GOOD}\npoll_intervall = \"5s\"\n"),
    );
    let out = relinkd()
        .args(["check-config", "--config"])
        .arg(&path)
        .env("RELINKD_TEST_TOKEN", "tok-cli-123456")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("poll_intervall"));
}

#[test]
fn run_with_a_missing_config_exits_1_with_the_path() {
    let out = relinkd()
        .args(["run", "--config", "/nonexistent/relinkd.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/relinkd.toml"));
}
