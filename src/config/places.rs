//! Where a key path is in the file, in the words an operator finds it by:
//! `instance "sales-line" (line 26): phone` for `instance[0].phone`, and
//! `daemon.listen (line 3)` for a section's key. The line is the key's own
//! where the file has it, else its item's header. A parse error (an unknown
//! key, a value of the wrong type, TOML syntax) is placed the same way from
//! where toml found it, with the column too for a syntax error.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The file's keys and their positions.
pub(super) struct Places<'a> {
    text: &'a str,
    /// Where each `\n` is: a fleet's config may have a warning for each of
    /// 50,000 instances, and counting lines from the top for each took
    /// minutes.
    newlines: Vec<usize>,
    /// As much of the file as toml could read: with a syntax error, the
    /// keys around it are still there to name its item by.
    root: Spanned<DeValue<'a>>,
    /// Whether the text has a TOML syntax error.
    broken: bool,
}

/// `message` about the text at byte offset `at`, placed: `channel "ops"
/// (line 7): scret: unknown field ...`, or `line L, column C: ...` where no
/// key is there.
pub(super) fn located(text: &str, at: usize, message: &str) -> String {
    Places::of(text).error_at(at, message)
}

impl<'a> Places<'a> {
    pub(super) fn of(text: &'a str) -> Self {
        let (table, errors) = DeTable::parse_recoverable(text);
        let span = table.span();
        let root = Spanned::new(span, DeValue::Table(table.into_inner()));
        let newlines = text.match_indices('\n').map(|(at, _)| at).collect();
        Self {
            text,
            newlines,
            root,
            broken: !errors.is_empty(),
        }
    }

    /// `key` (a path such as `instance[1].channels[0]`) as a place.
    pub(super) fn place(&self, key: &str) -> String {
        let value = match self.item(key) {
            Some((_, _, item, rest)) => rest.and_then(|rest| deepest(item, rest)).or(Some(item)),
            None => deepest(&self.root, key),
        };
        let line = value.map(|v| self.line(v.span().start));
        self.named(key, line.map(|l| format!("line {l}")))
    }

    /// A parse error's `message` at byte offset `at`, after the place of the
    /// key or value there (its line, and its column for a syntax error,
    /// where the key alone does not say what is broken).
    pub(super) fn error_at(&self, at: usize, message: &str) -> String {
        let line = self.line(at);
        let column = self.column(at);
        let DeValue::Table(root) = self.root.get_ref() else {
            return format!("line {line}, column {column}: {message}");
        };
        match key_in_table(root, at) {
            Some(key) => {
                let position = if self.broken {
                    format!("line {line}, column {column}")
                } else {
                    format!("line {line}")
                };
                format!("{}: {message}", self.named(&key, Some(position)))
            }
            None => format!("line {line}, column {column}: {message}"),
        }
    }

    /// The `[[instance]]`, `[[channel]]`, ... item `key` is in: its kind,
    /// index, table, and the rest of the path.
    fn item<'k>(
        &self,
        key: &'k str,
    ) -> Option<(&'k str, usize, &Spanned<DeValue<'a>>, Option<&'k str>)> {
        let (head, rest) = key
            .split_once('.')
            .map_or((key, None), |(h, r)| (h, Some(r)));
        match segment(head) {
            (kind @ ("instance" | "channel" | "time_interval" | "digest"), Some(index)) => self
                .root
                .get_ref()
                .get(kind)
                .and_then(|items| items.get_ref().get(index))
                .map(|item| (kind, index, item, rest)),
            _ => None,
        }
    }

    /// `key` with its item named (by its `name`, else its position) and
    /// `position` in parentheses: `instance "sales-line" (line 26): phone`.
    fn named(&self, key: &str, position: Option<String>) -> String {
        let at = position.map(|p| format!(" ({p})")).unwrap_or_default();
        match self.item(key) {
            Some((kind, index, item, rest)) => {
                let name = item
                    .get_ref()
                    .get("name")
                    .and_then(|n| n.get_ref().as_str());
                let what = match name {
                    Some(name) => format!("{kind} {name:?}"),
                    None => format!("{kind}[{index}]"),
                };
                match rest {
                    Some(rest) => format!("{what}{at}: {rest}"),
                    None => format!("{what}{at}"),
                }
            }
            None => format!("{key}{at}"),
        }
    }

    /// The 1-based line of byte offset `at`.
    fn line(&self, at: usize) -> usize {
        self.newlines.partition_point(|&n| n < at) + 1
    }

    /// The 1-based column (in characters) of byte offset `at`.
    fn column(&self, at: usize) -> usize {
        let mut at = at.min(self.text.len());
        while !self.text.is_char_boundary(at) {
            at -= 1;
        }
        let line_start = self.text[..at].rfind('\n').map_or(0, |n| n + 1);
        self.text[line_start..at].chars().count() + 1
    }
}

/// The key path (`instance[1].channels[0]`) of the key or value at byte
/// offset `at` in `table`, if one is there.
fn key_in_table(table: &DeTable<'_>, at: usize) -> Option<String> {
    table.iter().find_map(|(key, value)| {
        let name = key.get_ref();
        if covers(key.span(), at) {
            return Some(name.to_string());
        }
        // A table's span is its header only: its keys are searched too.
        match key_in(value, at) {
            Some(below) => Some(format!("{name}{below}")),
            None => covers(value.span(), at).then(|| name.to_string()),
        }
    })
}

/// [`key_in_table`] below `value`: the rest of the path (`.phone`, `[2]`).
fn key_in(value: &Spanned<DeValue<'_>>, at: usize) -> Option<String> {
    match value.get_ref() {
        DeValue::Table(table) => key_in_table(table, at).map(|key| format!(".{key}")),
        DeValue::Array(array) => {
            array
                .iter()
                .enumerate()
                .find_map(|(index, element)| match key_in(element, at) {
                    Some(below) => Some(format!("[{index}]{below}")),
                    None => covers(element.span(), at).then(|| format!("[{index}]")),
                })
        }
        _ => None,
    }
}

/// Whether `at` is in `span` or just after it (toml places a value missing
/// at the end of a line, `listen = `, on its empty span).
fn covers(span: Range<usize>, at: usize) -> bool {
    span.start <= at && at <= span.end
}

/// The value at `path` under `from`, or the deepest one on the way that the
/// file has (a missing key is reported where its parent is).
fn deepest<'v, 'a>(from: &'v Spanned<DeValue<'a>>, path: &str) -> Option<&'v Spanned<DeValue<'a>>> {
    let mut here = from;
    let mut found = None;
    for part in path.split('.') {
        let (name, index) = segment(part);
        let Some(next) = here.get_ref().get(name) else {
            break;
        };
        here = next;
        found = Some(here);
        if let Some(index) = index {
            let Some(next) = here.get_ref().get(index) else {
                break;
            };
            here = next;
            found = Some(here);
        }
    }
    found
}

/// `name[3]` as (`name`, `Some(3)`); `name` as (`name`, `None`).
fn segment(part: &str) -> (&str, Option<usize>) {
    match part.strip_suffix(']').and_then(|p| p.split_once('[')) {
        Some((name, index)) => match index.parse() {
            Ok(index) => (name, Some(index)),
            Err(_) => (part, None),
        },
        None => (part, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[daemon]\nlisten = \"x\"\n\n[[channel]]\nname = \"ops\"\ntype = \"console\"\n\
                        \n[[instance]]\nid = 1\nname = \"sales-line\"\nphone = 5\n\
                        channels = [\"ops\",\n  \"pager\"]\n\n[[instance]]\nid = 2\n";

    #[test]
    fn an_items_key_is_placed_by_the_items_name_and_the_keys_line() {
        let places = Places::of(TEXT);
        assert_eq!(
            places.place("instance[0].phone"),
            "instance \"sales-line\" (line 11): phone"
        );
        assert_eq!(
            places.place("instance[0].channels[1]"),
            "instance \"sales-line\" (line 13): channels[1]"
        );
        assert_eq!(
            places.place("channel[0].url"),
            "channel \"ops\" (line 4): url",
            "a missing key is placed at its item's header"
        );
        assert_eq!(
            places.place("instance[1].name"),
            "instance[1] (line 15): name",
            "an item without a name by its position"
        );
    }

    #[test]
    fn a_sections_key_is_placed_by_its_path_and_line() {
        let places = Places::of(TEXT);
        assert_eq!(places.place("daemon.listen"), "daemon.listen (line 2)");
        assert_eq!(places.place("defaults.cooldown"), "defaults.cooldown");
        assert_eq!(
            Places::of("[[broken").place("daemon.listen"),
            "daemon.listen"
        );
    }

    #[test]
    fn a_parse_error_is_placed_by_the_key_or_value_it_is_at() {
        let text = "[[channel]]\nname = \"a\"\n[[channel]]\nname = \"b\"\n\
                    [channel.templates]\ncolour = 1\n[daemon]\nlisten = 2\n\
                    [[instance]]\nchannels = [\"a\",\n  5]\n";
        let places = Places::of(text);
        let at = |needle: &str| text.find(needle).unwrap();
        assert_eq!(
            places.error_at(at("colour"), "unknown"),
            "channel \"b\" (line 6): templates.colour: unknown",
            "a sub-table of the second [[channel]] is the second channel's"
        );
        assert_eq!(
            places.error_at(at("2\n"), "bad"),
            "daemon.listen (line 8): bad"
        );
        assert_eq!(
            places.error_at(at("5]"), "bad"),
            "instance[0] (line 11): channels[1]: bad",
            "a value on a multi-line array's later line"
        );
        assert_eq!(
            places.error_at(at("templates"), "bad"),
            "channel \"b\" (line 5): templates: bad",
            "a table's header"
        );
        assert_eq!(
            places.error_at(text.len(), "bad"),
            "line 12, column 1: bad",
            "nothing there: the line and column alone"
        );
    }
}
