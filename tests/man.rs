//! The man pages, as `relinkd man --dir` writes them for the packages: one
//! for relinkd and one for every subcommand, with its options; no page
//! named that is not written; exit status, environment and files.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn relinkd(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_relinkd"))
        .args(args)
        .env_remove("RELINKD_CONFIG")
        .output()
        .expect("run relinkd");
    assert!(out.status.success(), "relinkd {args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Every page `relinkd man --dir` writes, by file name, as plain text
/// (roff's `\-` as `-`).
fn pages(dir: &Path) -> BTreeMap<String, String> {
    relinkd(&["man", "--dir", dir.to_str().unwrap()]);
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, text.replace("\\-", "-"))
        })
        .collect()
}

/// The subcommands `relinkd <path> --help` lists, each as its path.
fn subcommands(path: &[&str]) -> Vec<Vec<String>> {
    let mut args = path.to_vec();
    args.push("--help");
    let help = relinkd(&args);
    let Some((_, listed)) = help.split_once("Commands:\n") else {
        return Vec::new();
    };
    listed
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(|name| {
            let mut sub: Vec<String> = path.iter().map(|p| p.to_string()).collect();
            sub.push(name.to_owned());
            sub
        })
        .collect()
}

#[test]
fn every_subcommand_has_its_own_page_with_its_options() {
    let dir = tempfile::tempdir().unwrap();
    let pages = pages(dir.path());
    let mut todo = subcommands(&[]);
    assert!(todo.len() > 5, "{todo:?}");
    let mut seen = 0;
    while let Some(path) = todo.pop() {
        let words: Vec<&str> = path.iter().map(String::as_str).collect();
        let file = format!("relinkd-{}.1", words.join("-"));
        let page = pages
            .get(&file)
            .unwrap_or_else(|| panic!("no {file} among {:?}", pages.keys()));
        assert!(
            page.contains(&format!(".TH relinkd-{} 1", words.join("-"))),
            "{file}"
        );
        let mut help_args = words.clone();
        help_args.push("--help");
        for option in relinkd(&help_args)
            .split_whitespace()
            .filter(|w| w.starts_with("--"))
            .map(|w| w.trim_end_matches([',', '.', ')', '>']))
        {
            assert!(page.contains(option), "{file} does not document {option}");
        }
        todo.extend(subcommands(&words));
        seen += 1;
    }
    assert_eq!(pages.len(), seen + 1, "{:?}", pages.keys());
}

#[test]
fn no_page_names_a_page_that_is_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let pages = pages(dir.path());
    for (file, text) in &pages {
        for (at, _) in text.match_indices("(1)") {
            let before = &text[..at];
            let start = before
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .map_or(0, |i| i + 1);
            let named = &before[start..];
            if named.starts_with("relinkd") {
                assert!(
                    pages.contains_key(&format!("{named}.1")),
                    "{file} names {named}(1), which is not written"
                );
            }
        }
    }
    assert!(pages["relinkd.1"].contains("relinkd-status(1)"));
}

#[test]
fn relinkd_1_has_exit_status_environment_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let pages = pages(dir.path());
    let top = &pages["relinkd.1"];
    let section = |name: &str| {
        let start = top
            .find(&format!(".SH {name}\n"))
            .unwrap_or_else(|| panic!("no {name} section"));
        let rest = &top[start + 4..];
        rest[..rest.find("\n.SH ").unwrap_or(rest.len())].to_owned()
    };
    let exit = section("\"EXIT STATUS\"");
    for code in [
        "\\fB0\\fR\nSuccess",
        "\\fB1\\fR\nFailure",
        "\\fB2\\fR\nUsage error",
    ] {
        assert!(exit.contains(code), "{code:?} in {exit}");
    }
    let environment = section("ENVIRONMENT");
    let mut variables = vec![
        "RELINKD_CONFIG",
        "RELINKD_LOG_FORMAT",
        "RELINKD_ADMIN_TOKEN_FILE",
        "RUST_LOG",
        "TOKIO_WORKER_THREADS",
        "STATE_DIRECTORY",
        "CREDENTIALS_DIRECTORY",
        "JOURNAL_STREAM",
        "NOTIFY_SOCKET",
    ];
    variables.extend(relinkd::config::PROXY_VARIABLES);
    for variable in variables {
        assert!(
            environment.contains(variable),
            "{variable} in {environment}"
        );
    }
    let files = section("FILES");
    for file in [
        "/etc/relinkd/relinkd.toml",
        "/lib/systemd/system/relinkd.service",
        "/var/lib/relinkd/state.json",
        "/usr/share/doc/relinkd/examples/",
    ] {
        assert!(files.contains(file), "{file} in {files}");
    }
    for (file, text) in &pages {
        assert!(text.contains(".SH \"EXIT STATUS\""), "{file}");
    }
    assert!(
        pages["relinkd-status.1"].contains("RELINKD_ADMIN_TOKEN_FILE"),
        "a subcommand's page names the variables its options take"
    );
}

#[test]
fn man_without_a_directory_prints_relinkd_1() {
    let dir = tempfile::tempdir().unwrap();
    let pages = pages(dir.path());
    assert_eq!(relinkd(&["man"]).replace("\\-", "-"), pages["relinkd.1"]);
}
