//! `relinkd demo` as a new user meets it: its hints run as printed, its log
//! lines fit a terminal, and each delivered message is one line.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The widest line the demo may print: its log and its console channel
/// fit a 120-column terminal.
const WIDEST_LINE: usize = 120;

/// Runs the demo until sales-line is linked again, its files (the config
/// the status hint names) in a directory whose name has a space; its stdout
/// and stderr.
fn demo_until_linked(dir: &tempfile::TempDir) -> (String, String) {
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let tmp = dir.path().join("a tmp dir");
    std::fs::create_dir(&tmp).unwrap();
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_relinkd"))
            .args(["demo", "--listen", "127.0.0.1:0", "--admin-delay", "1s"])
            .args(["--drop-after", "1h"])
            .env("TMPDIR", &tmp)
            .env_remove("RUST_LOG")
            .env_remove("JOURNAL_STREAM")
            .env_remove("RELINKD_LOG_FORMAT")
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let read = |path| std::fs::read_to_string(path).unwrap_or_default();
    while !read(&out).contains("sales-line (1101000001) is linked again") {
        assert!(
            Instant::now() < deadline,
            "no relink in 30 s:\n{}",
            read(&err)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let hint_output = run_status_hint(&read(&out));
    assert!(hint_output.contains("sales-line"), "{hint_output}");
    signal(&child.0, "INT");
    assert!(wait_exit(&mut child.0, Duration::from_secs(10)).success());
    (read(&out), read(&err))
}

/// The command on the line after the banner's "fleet status" (a line of its
/// own: its length is its two paths').
fn status_hint(stdout: &str) -> &str {
    let mut lines = stdout.lines();
    lines
        .by_ref()
        .find(|l| l.contains("fleet status"))
        .expect("the banner has a fleet status hint");
    lines.next().expect("the command follows").trim()
}

/// Runs the demo banner's status hint exactly as printed, through a shell
/// (as someone pasting it would), from another directory and with nothing
/// on PATH.
fn run_status_hint(stdout: &str) -> String {
    let hint = status_hint(stdout);
    assert!(hint.contains("a tmp dir"), "{hint}");
    let output = Command::new("/bin/sh")
        .args(["-c", hint])
        .current_dir("/")
        .env("PATH", "")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("the hint {hint:?} does not run: {e}"));
    assert!(output.status.success(), "{hint:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_demo_hints_run_as_printed_and_its_lines_fit_a_terminal_one_per_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, stderr) = demo_until_linked(&dir);

    let hint = status_hint(&stdout);
    for line in stderr.lines().chain(stdout.lines()) {
        if line.trim() == hint {
            continue;
        }
        assert!(
            line.chars().count() <= WIDEST_LINE,
            "a {}-character line:\n{line}",
            line.chars().count()
        );
        assert!(!line.contains("relinkd::"), "a module path: {line}");
    }
    assert!(
        stderr.contains(" INFO sales-line: linking code received"),
        "lines name the instance by its name:\n{stderr}"
    );
    // The code went to the console (which shows it) and to the simulated
    // admin's webhook: one line says it was delivered.
    let delivered: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("notification delivered") && l.contains("event=\"code\""))
        .collect();
    assert_eq!(delivered.len(), 1, "{stderr}");
    assert!(delivered[0].contains("channel=\"admin\""), "{stderr}");
}
