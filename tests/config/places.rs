//! Every problem and warning names where it is the way an operator finds it
//! in the file: an item by its name and the line, a section's key by its
//! path and line, for semantic checks as for syntax.

use crate::support::*;

#[test]
fn an_instances_bad_value_is_named_by_the_instance_and_the_values_line() {
    let toml = replace("phone = 441234567890", "phone = 12");
    let line = line_of(&toml, "phone = 12");
    let e = error(&toml);
    assert_has(
        &shown(&e).join("\n"),
        &[&format!(
            "relinkd.toml: instance \"sales-line\" (line {line}): phone: must be 7 to 15 digits \
             (got 2)"
        )],
    );
}

#[test]
fn a_missing_key_is_placed_at_its_items_header() {
    let toml = replace("phone = 441234567890\n", "");
    let header = line_of(&toml, "[[instance]]");
    let e = error(&toml);
    assert_has(
        &shown(&e).join("\n"),
        &[&format!(
            "instance \"sales-line\" (line {header}): phone: missing"
        )],
    );
}

#[test]
fn a_channels_problem_is_named_by_the_channel() {
    let e = channel_error("type = \"telegram\"\nchat_id = \"x\"");
    assert_has(&shown(&e).join("\n"), &["channel \"extra\" (line "]);
    assert!(!shown(&e).join("\n").contains("channel[0]"), "{e}");
}

#[test]
fn an_item_without_a_name_is_named_by_its_position() {
    let e = error(&replace("name = \"sales-line\"\n", ""));
    assert_has(
        &shown(&e).join("\n"),
        &[
            "instance[0] (line ",
            "): name: missing: every instance needs a name",
        ],
    );
}

#[test]
fn a_sections_key_is_named_by_its_path_and_line() {
    let e = error(&with_daemon("listen = \"localhost:7788\""));
    assert_has(
        &shown(&e).join("\n"),
        &["relinkd.toml: daemon.listen (line 2): must be"],
    );
}

#[test]
fn warnings_are_placed_like_errors() {
    let toml = with_instance_key("cooldown = \"10s\"");
    let line = line_of(&toml, "cooldown = \"10s\"");
    assert_has(
        &ok(&toml).warnings.join("\n"),
        &[&format!(
            "relinkd.toml: instance \"sales-line\" (line {line}): cooldown: 10s is short"
        )],
    );
}

#[test]
fn the_key_path_stays_available_beside_the_place() {
    let err = load_str(&replace("phone = 441234567890", "phone = 12")).unwrap_err();
    let issues = err.issues();
    assert_eq!(issues[0].key, "instance[0].phone");
    assert!(issues[0].place.starts_with("instance \"sales-line\""));
}

/// The 1-based number of `toml`'s line that is exactly `line`.
fn line_of(toml: &str, line: &str) -> usize {
    toml.lines()
        .position(|l| l == line)
        .expect("the line is there")
        + 1
}
