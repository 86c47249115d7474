//! What relinkd's log lines look like where they go: the journal (syslog
//! priorities, no second timestamp), a file, or a log shipper (JSON).

mod common;

use std::os::unix::fs::MetadataExt as _;
use std::process::Stdio;
use std::time::Duration;

use common::*;

/// A config whose one instance has its token inline (a warning at start)
/// and a vendor that is not there (the polls fail: more warnings).
fn config(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let toml = format!(
        "[daemon]\nlisten = \"127.0.0.1:{port}\"\nstate_dir = \"{}\"\n\
         [[channel]]\nname = \"ops\"\ntype = \"console\"\n\
         [[instance]]\nid = 1101000001\nname = \"sales-line\"\napi_url = \"http://127.0.0.1:9\"\n\
         api_token = \"0123456789abcdef0123456789abcdef0123456789abcdef00\"\n\
         phone = 441234567890\nchannels = [\"ops\"]\n",
        dir.path().join("state").display()
    );
    let path = dir.path().join("relinkd.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

/// Runs relinkd with `setup` until its stderr has `until`, then stops it;
/// returns its stderr lines.
fn stderr_of(
    setup: impl FnOnce(&mut std::process::Command, &std::fs::File),
    until: &str,
) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = config(&dir);
    let log = dir.path().join("stderr");
    let file = std::fs::File::create(&log).unwrap();
    let mut command = relinkd_run(&path);
    setup(&mut command, &file);
    let mut child = KillOnDrop(command.stderr(Stdio::from(file)).spawn().unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log).unwrap().contains(until) {
        assert!(
            std::time::Instant::now() < deadline,
            "no {until:?} in:\n{}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&child.0, "TERM");
    assert!(wait_exit(&mut child.0, Duration::from_secs(10)).success());
    std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `JOURNAL_STREAM` as systemd sets it for a stderr that is `file`.
fn journal_stream(file: &std::fs::File) -> String {
    let meta = file.metadata().unwrap();
    format!("{}:{}", meta.dev(), meta.ino())
}

#[test]
fn under_the_journal_every_line_carries_its_priority_and_no_timestamp() {
    let lines = stderr_of(
        |command, file| {
            command.env("JOURNAL_STREAM", journal_stream(file));
        },
        "state poll failed",
    );
    let warning = lines
        .iter()
        .find(|l| l.contains("is written inline"))
        .expect("the inline-token warning");
    assert!(warning.starts_with("<4> WARN "), "{warning}");
    let poll = lines
        .iter()
        .find(|l| l.contains("state poll failed"))
        .unwrap();
    assert!(poll.starts_with("<4> WARN "), "{poll}");
    let running = lines
        .iter()
        .find(|l| l.contains("relinkd running"))
        .unwrap();
    assert!(running.starts_with("<6> INFO "), "{running}");
    for line in &lines {
        assert!(
            line.starts_with('<') && line.as_bytes()[2] == b'>',
            "a line without a priority: {line}"
        );
        assert!(
            !line[3..].trim_start().starts_with("20"),
            "a second timestamp: {line}"
        );
    }
}

#[test]
fn a_stderr_that_is_not_the_journal_gets_plain_timestamped_lines() {
    // The variable is inherited, but stderr was redirected to a file.
    let lines = stderr_of(
        |command, _| {
            command.env("JOURNAL_STREAM", "1:2");
        },
        "relinkd running",
    );
    for line in &lines {
        assert!(!line.starts_with('<'), "{line}");
        assert!(line.starts_with("20"), "no timestamp: {line}");
    }
}

#[test]
fn the_log_format_flag_and_its_variable_override_the_config() {
    for by_flag in [true, false] {
        let lines = stderr_of(
            |command, _| {
                if by_flag {
                    command.arg("--log-format").arg("json");
                } else {
                    command.env("RELINKD_LOG_FORMAT", "json");
                }
            },
            "relinkd running",
        );
        let running: serde_json::Value = lines
            .iter()
            .find(|l| l.contains("relinkd running"))
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .unwrap();
        assert_eq!(running["level"], "INFO");
        assert_eq!(running["version"], env!("CARGO_PKG_VERSION"), "{running}");
        for line in &lines {
            serde_json::from_str::<serde_json::Value>(line)
                .unwrap_or_else(|_| panic!("not JSON (flag: {by_flag}): {line}"));
        }
    }
}

#[test]
fn json_lines_under_the_journal_carry_the_priority_too() {
    let lines = stderr_of(
        |command, file| {
            command
                .env("JOURNAL_STREAM", journal_stream(file))
                .env("RELINKD_LOG_FORMAT", "json");
        },
        "state poll failed",
    );
    let poll = lines
        .iter()
        .find(|l| l.contains("state poll failed"))
        .unwrap();
    let json = poll.strip_prefix("<4>").expect("a warning's priority");
    let json: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(json["wa_instance"], 1101000001u64);
    assert_eq!(json["instance"], "sales-line");
}

/// A config with two problems: its error is two lines.
const TWO_PROBLEMS: &str = "[[instance]]\nid = 1101000001\nname = \"sales-line\"\n\
     api_url = \"http://127.0.0.1:9\"\nphone = 441234567890\nchannels = [\"nope\"]\n";

/// Runs `relinkd ARGS` to its end with stderr in a file that
/// `JOURNAL_STREAM` names; its exit success and its stderr lines.
fn under_the_journal(args: &[&std::ffi::OsStr]) -> (bool, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr");
    let file = std::fs::File::create(&log).unwrap();
    let status = without_proxies(&mut std::process::Command::new(env!(
        "CARGO_BIN_EXE_relinkd"
    )))
    .args(args)
    .env_remove("RUST_LOG")
    .env_remove("RELINKD_LOG_FORMAT")
    .env("JOURNAL_STREAM", journal_stream(&file))
    .stdout(Stdio::null())
    .stderr(Stdio::from(file))
    .status()
    .unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    (status.success(), text.lines().map(str::to_owned).collect())
}

fn assert_each_line_starts_with(lines: &[String], prefix: &str) {
    assert!(!lines.is_empty(), "nothing on stderr");
    for line in lines {
        assert!(
            line.starts_with(prefix),
            "{prefix} missing:\n{}",
            lines.join("\n")
        );
    }
}

#[test]
fn under_the_journal_a_bad_configs_error_is_an_error_on_every_line_at_start_and_in_check_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relinkd.toml");
    std::fs::write(&path, TWO_PROBLEMS).unwrap();
    for command in ["run", "check-config"] {
        let (ok, lines) =
            under_the_journal(&[command.as_ref(), "--config".as_ref(), path.as_ref()]);
        assert!(!ok, "{command} accepted a bad config");
        assert_eq!(
            lines.len(),
            2,
            "{command}: two problems, two lines:\n{}",
            lines.join("\n")
        );
        assert!(
            lines[0].starts_with("<3>relinkd: "),
            "{command}: {}",
            lines[0]
        );
        assert_each_line_starts_with(&lines, "<3>");
    }
}

#[test]
fn under_the_journal_check_configs_warnings_are_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(&dir);
    let (ok, lines) =
        under_the_journal(&["check-config".as_ref(), "--config".as_ref(), path.as_ref()]);
    assert!(ok, "{}", lines.join("\n"));
    let warning = lines
        .iter()
        .find(|l| l.contains("is written inline"))
        .expect("the inline-token warning");
    assert!(warning.starts_with("<4>warning: "), "{warning}");
    assert_each_line_starts_with(&lines, "<4>");
}

#[test]
fn under_the_journal_an_invalid_rust_log_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(&dir);
    let log = dir.path().join("stderr");
    let file = std::fs::File::create(&log).unwrap();
    let mut command = relinkd_run(&path);
    command
        .env("RUST_LOG", "relinkd=loud")
        .env("JOURNAL_STREAM", journal_stream(&file))
        .stderr(Stdio::from(file));
    assert!(!command.status().unwrap().success());
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    assert!(lines[0].starts_with("<3>relinkd: RUST_LOG="), "{text}");
    assert_each_line_starts_with(&lines, "<3>");
}

#[test]
fn under_the_journal_each_line_of_a_failed_reloads_error_carries_the_priority() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(&dir);
    let good = std::fs::read_to_string(&path).unwrap();
    let log = dir.path().join("stderr");
    let file = std::fs::File::create(&log).unwrap();
    let mut command = relinkd_run(&path);
    command.env("JOURNAL_STREAM", journal_stream(&file));
    let mut child = KillOnDrop(command.stderr(Stdio::from(file)).spawn().unwrap());
    let read = || std::fs::read_to_string(&log).unwrap();
    let wait_for = |needle: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !read().contains(needle) {
            assert!(
                std::time::Instant::now() < deadline,
                "no {needle:?} in:\n{}",
                read()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for("relinkd running");
    // Two problems: an unknown channel and a missing phone.
    let bad = good
        .replace("channels = [\"ops\"]", "channels = [\"nope\"]")
        .replace("phone = 441234567890\n", "");
    assert_ne!(bad, good);
    std::fs::write(&path, bad).unwrap();
    signal(&child.0, "HUP");
    wait_for("config reload failed");
    signal(&child.0, "TERM");
    assert!(wait_exit(&mut child.0, Duration::from_secs(10)).success());
    let text = read();
    let lines: Vec<&str> = text.lines().collect();
    let first = lines
        .iter()
        .position(|l| l.contains("config reload failed"))
        .unwrap();
    assert!(lines[first].starts_with("<3>ERROR "), "{}", lines[first]);
    assert!(
        lines[first + 1].starts_with("<3>") && lines[first + 1].contains("unknown channel"),
        "the second problem is an error line of its own:\n{text}"
    );
    for line in &lines {
        assert!(
            line.starts_with('<') && line.as_bytes()[2] == b'>',
            "a line without a priority:\n{text}"
        );
    }
}
