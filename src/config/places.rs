//! Where a key path is in the file, in the words an operator finds it by:
//! `instance "sales-line" (line 26): phone` for `instance[0].phone`, and
//! `daemon.listen (line 3)` for a section's key. The line is the key's own
//! where the file has it, else its item's header.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The file's keys and their positions.
pub(super) struct Places<'a> {
    /// Where each `\n` is: a fleet's config may have a warning for each of
    /// 50,000 instances, and counting lines from the top for each took
    /// minutes.
    newlines: Vec<usize>,
    /// `None` if the text does not parse (then places are the bare paths).
    root: Option<Spanned<DeValue<'a>>>,
}

impl<'a> Places<'a> {
    pub(super) fn of(text: &'a str) -> Self {
        let root = DeTable::parse(text).ok().map(|table| {
            let span = table.span();
            Spanned::new(span, DeValue::Table(table.into_inner()))
        });
        let newlines = text.match_indices('\n').map(|(at, _)| at).collect();
        Self { newlines, root }
    }

    /// `key` (a path such as `instance[1].channels[0]`) as a place.
    pub(super) fn place(&self, key: &str) -> String {
        let Some(root) = &self.root else {
            return key.to_owned();
        };
        let (head, rest) = key
            .split_once('.')
            .map_or((key, None), |(h, r)| (h, Some(r)));
        let item = match segment(head) {
            (kind @ ("instance" | "channel" | "time_interval" | "digest"), Some(index)) => root
                .get_ref()
                .get(kind)
                .and_then(|items| items.get_ref().get(index))
                .map(|item| (kind, index, item)),
            _ => None,
        };
        match item {
            Some((kind, index, item)) => {
                let line =
                    self.line(rest.map_or(Some(item), |rest| deepest(item, rest).or(Some(item))));
                let name = item
                    .get_ref()
                    .get("name")
                    .and_then(|n| n.get_ref().as_str());
                let what = match name {
                    Some(name) => format!("{kind} {name:?}"),
                    None => format!("{kind}[{index}]"),
                };
                let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
                match rest {
                    Some(rest) => format!("{what}{at}: {rest}"),
                    None => format!("{what}{at}"),
                }
            }
            None => match self.line(deepest(root, key)) {
                Some(line) => format!("{key} (line {line})"),
                None => key.to_owned(),
            },
        }
    }

    fn line(&self, value: Option<&Spanned<DeValue<'_>>>) -> Option<usize> {
        let start = value?.span().start;
        Some(self.newlines.partition_point(|&at| at < start) + 1)
    }
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
}
