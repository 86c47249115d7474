//! The command line as an operator uses it.

use std::process::Command;

fn relinkd() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_relinkd"));
    command
        .env_remove("JOURNAL_STREAM")
        .env_remove("RELINKD_LOG_FORMAT")
        .env_remove("RUST_LOG");
    command
}

/// `text` with `from` replaced by `to`; fails if `from` is not there.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} is not in:\n{text}");
    text.replace(from, to)
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
        &edit(GOOD, "phone = 441234567890", "phone = \"+44 1234\""),
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

/// A child process that is killed when the test is done with it, passed or
/// failed.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for `child` up to `limit`; kills it and fails if it is still running.
fn exit_within(child: std::process::Child, limit: std::time::Duration) -> std::process::Output {
    exited_within(child, limit).unwrap_or_else(|| panic!("still running after {limit:?}"))
}

/// `child`'s output if it exits within `limit`; else it is killed.
fn exited_within(
    mut child: std::process::Child,
    limit: std::time::Duration,
) -> Option<std::process::Output> {
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Some(child.wait_with_output().unwrap())
}

#[test]
fn check_config_refuses_a_fifo_secret_file_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("token");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let path = write(
        &dir,
        "relinkd.toml",
        &edit(
            GOOD,
            "api_token_env = \"RELINKD_TEST_TOKEN\"",
            "api_token_file = \"token\"",
        ),
    );
    let child = relinkd()
        .args(["check-config", "--config"])
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = exit_within(child, std::time::Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("api_token_file"), "{stderr}");
    assert!(stderr.contains("is not a regular file"), "{stderr}");
}

#[test]
fn check_config_warns_about_settings_that_risk_a_lockout() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "relinkd.toml",
        &format!("[defaults]\ncooldown = \"1m\"\n{GOOD}"),
    );
    let out = relinkd()
        .args(["check-config", "--config"])
        .arg(&path)
        .env("RELINKD_TEST_TOKEN", "tok-cli-123456")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("warning: "), "{stderr}");
    assert!(
        stderr.contains("defaults.cooldown (line 2): 1m is short"),
        "{stderr}"
    );
}

#[test]
fn a_second_daemon_on_the_same_state_dir_exits_1_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let path = write(
        &dir,
        "relinkd.toml",
        &format!(
            "[daemon]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n",
            state.display()
        ),
    );
    let first = KillOnDrop(
        relinkd()
            .args(["run", "--config"])
            .arg(&path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let lock = state.join("relinkd.lock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_to_string(&lock)
        .map(|pid| pid.trim() != first.0.id().to_string())
        .unwrap_or(true)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the first daemon did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let second = relinkd()
        .args(["run", "--config"])
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = exited_within(second, std::time::Duration::from_secs(10));
    let first_pid = first.0.id();
    drop(first);
    let out = out.expect("the second daemon ran beside the first");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("in use by another relinkd"), "{stderr}");
    assert!(stderr.contains(&format!("pid {first_pid}")), "{stderr}");
}

#[test]
fn the_starter_config_passes_check_config_once_its_variables_are_set() {
    let dir = tempfile::tempdir().unwrap();
    let out = relinkd().args(["config", "example"]).output().unwrap();
    assert!(out.status.success());
    let path = write(
        &dir,
        "relinkd.toml",
        &String::from_utf8(out.stdout).unwrap(),
    );
    let variables = [
        "RELINKD_ADMIN_TOKEN",
        "RELINKD_WEBHOOK_SECRET",
        "GREENAPI_TOKEN_SALES",
    ];
    let mut bare = relinkd();
    for name in variables {
        bare.env_remove(name);
    }
    let refused = bare
        .arg("check-config")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    for name in variables {
        assert!(
            stderr.contains(&format!("environment variable {name} is not set")),
            "{stderr}"
        );
    }
    let accepted = relinkd()
        .arg("check-config")
        .arg("--config")
        .arg(&path)
        .env("RELINKD_ADMIN_TOKEN", "an-admin-token-of-some-length")
        .env(
            "RELINKD_WEBHOOK_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        )
        .env(
            "GREENAPI_TOKEN_SALES",
            "0123456789abcdef0123456789abcdef0123456789abcdef00",
        )
        .output()
        .unwrap();
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
    assert!(String::from_utf8_lossy(&accepted.stdout).contains(": ok: 1 instances, 1 channels"));
}

#[test]
fn version_and_v_name_the_revision_the_commit_date_and_the_compiler() {
    let out = relinkd().arg("--version").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with(&format!("relinkd {}\n", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    for field in ["revision:  ", "committed: ", "compiler:  rustc "] {
        assert!(text.contains(field), "{field:?} missing in:\n{text}");
    }
    let short = relinkd().arg("-V").output().unwrap();
    assert_eq!(
        String::from_utf8(short.stdout).unwrap(),
        text,
        "-V is --version"
    );
}

#[test]
fn completions_and_the_man_page_are_generated() {
    let bash = relinkd().args(["completions", "bash"]).output().unwrap();
    let bash = String::from_utf8(bash.stdout).unwrap();
    assert!(
        bash.contains("_relinkd()") && bash.contains("check-config"),
        "{bash}"
    );
    let zsh = relinkd().args(["completions", "zsh"]).output().unwrap();
    assert!(String::from_utf8_lossy(&zsh.stdout).starts_with("#compdef relinkd"));
    let man = relinkd().arg("man").output().unwrap();
    let man = String::from_utf8(man.stdout).unwrap();
    assert!(
        man.starts_with(".ie") || man.contains(".TH relinkd"),
        "{man}"
    );
    let title = man.lines().find(|l| l.starts_with(".TH")).unwrap();
    assert!(
        title.contains(&format!("relinkd {}", env!("CARGO_PKG_VERSION"))),
        "the man page's title has the version alone: {title}"
    );
    assert!(
        man.contains(".SH \"EXIT STATUS\""),
        "the man page documents exit codes"
    );
}

#[test]
fn usage_errors_exit_2_and_failures_exit_1() {
    let usage = relinkd().arg("no-such-command").output().unwrap();
    assert_eq!(usage.status.code(), Some(2));
    let failure = relinkd()
        .args(["check-config", "--config", "/nonexistent/relinkd.toml"])
        .output()
        .unwrap();
    assert_eq!(failure.status.code(), Some(1));
}

#[test]
fn an_invalid_rust_log_stops_start_up_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "relinkd.toml", GOOD);
    let out = relinkd()
        .args(["run", "--config"])
        .arg(&path)
        .env(
            "RELINKD_TEST_TOKEN",
            "0123456789abcdef0123456789abcdef0123456789abcdef00",
        )
        .env("RUST_LOG", "relinkd=chatty")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("relinkd: RUST_LOG=\"relinkd=chatty\" is not a valid log filter"),
        "{stderr}"
    );
}
