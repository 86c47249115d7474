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

#[test]
fn a_parse_error_names_its_item_by_name_and_line_not_by_index() {
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "an unknown [[channel]] key",
            replace("type = \"console\"", "type = \"console\"\nscret = 1"),
            "scret = 1",
            "channel \"ops\" (line {}): scret: unknown field `scret`",
        ),
        (
            "an unknown [[instance]] key",
            with_instance_key("linking_window = \"x\""),
            "linking_window = \"x\"",
            "instance \"sales-line\" (line {}): linking_window: unknown field `linking_window`",
        ),
        (
            "a value of the wrong type, caught by the parser",
            replace("channels = [\"ops\"]", "channels = \"ops\""),
            "channels = \"ops\"",
            "instance \"sales-line\" (line {}): channels: invalid type: string \"ops\", \
             expected a sequence",
        ),
        (
            "a stray sub-table of an instance",
            format!("{BASE}[instance.x]\n"),
            "[instance.x]",
            "instance \"sales-line\" (line {}): x: unknown field `x`",
        ),
        (
            "an unknown [[digest]] key",
            format!("{BASE}\n[[digest]]\nname = \"daily\"\nsched = \"0 0 9 * * *\"\n"),
            "sched = \"0 0 9 * * *\"",
            "digest \"daily\" (line {}): sched: unknown field `sched`",
        ),
        (
            "an unknown [[time_interval]] key",
            format!("{BASE}\n[[time_interval]]\nname = \"office\"\nweekday = [\"monday\"]\n"),
            "weekday = [\"monday\"]",
            "time_interval \"office\" (line {}): weekday: unknown field `weekday`",
        ),
        (
            "an unknown [daemon] key",
            with_daemon("listn = \"127.0.0.1:1\""),
            "listn = \"127.0.0.1:1\"",
            "relinkd.toml: daemon.listn (line {}): unknown field `listn`",
        ),
        (
            "a channel type's key of the wrong type",
            replace(
                "type = \"console\"",
                "type = \"whatsapp\"\nvia = 1101000001\nchat_ids = \"x\"",
            ),
            "chat_ids = \"x\"",
            "channel \"ops\" (line {}): chat_ids: invalid type: string \"x\", expected a sequence",
        ),
    ];
    for (what, toml, line, expected) in cases {
        let e = error(&toml);
        let expected = expected.replace("{}", &line_of(&toml, line).to_string());
        assert_has(&shown(&e).join("\n"), &[&expected]);
        assert!(!e.contains("[0]"), "{what}: named by index:\n{e}");
        assert!(
            !e.contains("column"),
            "{what}: the key places it, not a column:\n{e}"
        );
    }
}

#[test]
fn a_parse_error_in_an_item_without_a_name_is_named_by_its_position() {
    let toml = replace("name = \"sales-line\"", "scret = 1");
    let e = error(&toml);
    assert_has(
        &shown(&e).join("\n"),
        &[&format!(
            "instance[0] (line {}): scret: unknown field `scret`",
            line_of(&toml, "scret = 1")
        )],
    );
}

#[test]
fn a_syntax_error_names_its_item_and_gives_the_column() {
    let toml = replace("phone = 441234567890", "phone = +44 1234");
    let e = error(&toml);
    assert_has(
        &shown(&e).join("\n"),
        &[&format!(
            "relinkd.toml: instance \"sales-line\" (line {}, column 9): phone: ",
            line_of(&toml, "phone = +44 1234")
        )],
    );
}

/// The 1-based number of `toml`'s line that is exactly `line`.
fn line_of(toml: &str, line: &str) -> usize {
    toml.lines()
        .position(|l| l == line)
        .expect("the line is there")
        + 1
}
