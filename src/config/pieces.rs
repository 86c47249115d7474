//! A fleet's config parsed a few hundred `[[instance]]` tables at a time.
//!
//! toml builds a tree of the whole document before serde sees any of it:
//! for 50,000 instances that tree took 230 MB, more than the running daemon,
//! and a reload built it while the running config was still held. The
//! `[[instance]]` tables are independent of each other, so each run of them
//! is parsed on its own; the rest of the document is parsed once with the
//! instances blanked out in place, which keeps every byte offset (and so
//! every line an error names) where it was.
//!
//! Whatever this cannot split with certainty (a header below `instance`, a
//! quoted one, instances also written another way) and any error at all
//! make the caller parse the document whole, as it always did, so an
//! error's message is the same either way.

use std::ops::Range;

use serde::Deserialize;
use toml_parser::Source;
use toml_parser::lexer::TokenKind;

use super::raw::{self, RawConfig, RawInstance};

/// `[[instance]]` tables parsed at a time: a piece's tree is a few MB.
const INSTANCES_PER_PIECE: usize = 256;

/// Parses the TOML text, in pieces where it can, else whole (which also
/// places any error; see `raw::parse`).
pub(super) fn parse(text: &str) -> Result<RawConfig, String> {
    match in_pieces(text, INSTANCES_PER_PIECE) {
        Some(raw) => raw::checked(raw, text),
        None => raw::parse(text),
    }
}

/// `text` parsed in pieces of `per_piece` instances, or `None` where it
/// must be parsed whole.
fn in_pieces(text: &str, per_piece: usize) -> Option<RawConfig> {
    let instances = instance_tables(text)?;
    let mut raw: RawConfig = toml::from_str(&blanked(text, &instances)).ok()?;
    if !raw.instances.is_empty() {
        return None;
    }
    for piece in pieces(&instances, per_piece.max(1)) {
        let piece: Instances = toml::from_str(&text[piece]).ok()?;
        raw.instances.extend(piece.instances);
    }
    Some(raw)
}

/// A run of `[[instance]]` tables and nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Instances {
    #[serde(rename = "instance")]
    instances: Vec<RawInstance>,
}

/// Where each `[[instance]]` table is: from its header to the next
/// top-level header (or the end). `None` if a header other than
/// `[[instance]]` names `instance`: its table may belong to one of them.
fn instance_tables(text: &str) -> Option<Vec<Range<usize>>> {
    let mut tables = Vec::new();
    let mut open: Option<usize> = None;
    for header in headers(text) {
        if let Some(start) = open.take() {
            tables.push(start..header.start);
        }
        if header.array && header.path == "instance" {
            open = Some(header.start);
        } else if header.path.contains("instance") {
            return None;
        }
    }
    if let Some(start) = open {
        tables.push(start..text.len());
    }
    Some(tables)
}

/// A top-level table header: `[path]` or `[[path]]`.
struct Header {
    /// Where its `[` is.
    start: usize,
    array: bool,
    /// The key path as written, without whitespace.
    path: String,
}

/// The document's top-level headers, in order. A `[` starts one only at
/// the start of a line and outside any value (an array or inline table may
/// span lines); strings are single tokens, so a `[` inside one never counts.
fn headers(text: &str) -> Vec<Header> {
    let source = Source::new(text);
    let mut tokens = source.lex().peekable();
    let mut headers = Vec::new();
    let mut depth = 0usize;
    let mut line_start = true;
    while let Some(token) = tokens.next() {
        match token.kind() {
            TokenKind::Newline => {
                line_start = true;
                continue;
            }
            TokenKind::Whitespace => continue,
            TokenKind::LeftSquareBracket if depth == 0 && line_start => {
                let start = token.span().start();
                let array = tokens
                    .next_if(|t| t.kind() == TokenKind::LeftSquareBracket)
                    .is_some();
                let mut path = String::new();
                while let Some(token) = tokens.next_if(|t| t.kind() != TokenKind::Newline) {
                    match token.kind() {
                        TokenKind::RightSquareBracket | TokenKind::Comment => break,
                        TokenKind::Whitespace => {}
                        _ => path.push_str(&text[token.span().start()..token.span().end()]),
                    }
                }
                // The rest of the header's line is not part of any value.
                while tokens.next_if(|t| t.kind() != TokenKind::Newline).is_some() {}
                headers.push(Header { start, array, path });
                continue;
            }
            TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket => depth += 1,
            TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket => {
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
        line_start = false;
    }
    headers
}

/// `text` with each of `tables` replaced by spaces, line breaks kept.
fn blanked(text: &str, tables: &[Range<usize>]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for table in tables {
        for byte in &mut bytes[table.clone()] {
            if *byte != b'\n' {
                *byte = b' ';
            }
        }
    }
    // Only ASCII was written, over whole UTF-8 sequences.
    String::from_utf8(bytes).unwrap_or_default()
}

/// Adjacent tables grouped `per_piece` at a time; a table that does not
/// follow the previous one directly starts a new piece.
fn pieces(tables: &[Range<usize>], per_piece: usize) -> Vec<Range<usize>> {
    let mut pieces: Vec<(Range<usize>, usize)> = Vec::new();
    for table in tables {
        match pieces.last_mut() {
            Some((piece, count)) if piece.end == table.start && *count < per_piece => {
                piece.end = table.end;
                *count += 1;
            }
            _ => pieces.push((table.clone(), 1)),
        }
    }
    pieces.into_iter().map(|(piece, _)| piece).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a whole parse gives, to compare with.
    fn whole(text: &str) -> String {
        format!("{:?}", toml::from_str::<RawConfig>(text).expect("valid"))
    }

    fn parsed_in_pieces(text: &str, per_piece: usize) -> Option<String> {
        in_pieces(text, per_piece).map(|raw| format!("{raw:?}"))
    }

    const FLEET: &str = r#"
# a comment with [[instance]] in it
[daemon]
listen = "127.0.0.1:9090"

[[channel]]
name = "ops"
type = "webhook"
url = "http://127.0.0.1:1/hook"
headers = { a = "1",
  b = "2" }

[[instance]]
id = 1
name = "one"
api_url = "http://127.0.0.1:2"
api_token_file = "token"
phone = 441234500000
channels = [
  "ops",
]

[defaults]
poll_interval = "30s"

  [[ instance ]] # indented, spaced, commented
id = 2
name = """
[[instance]]
id = 99
"""
api_url = 'http://127.0.0.1:2'
api_token_file = "token"
phone = 441234500001
channels = ["ops"]

[[instance]]
id = 3
name = "three"
phone = 441234500002
linking_windows = [["nested"], [
[1]]]
[[digest]]
name = "daily"
"#;

    #[test]
    fn a_config_parsed_in_pieces_is_the_config_parsed_whole() {
        for per_piece in [1, 2, 256] {
            assert_eq!(
                parsed_in_pieces(FLEET, per_piece).as_deref(),
                Some(whole(FLEET).as_str()),
                "{per_piece} a piece"
            );
        }
        let crlf = FLEET.replace('\n', "\r\n");
        assert_eq!(parsed_in_pieces(&crlf, 1), Some(whole(&crlf)));
    }

    #[test]
    fn only_the_instance_tables_are_pieces_and_each_run_is_cut_where_others_interrupt_it() {
        let tables = instance_tables(FLEET).expect("splittable");
        assert_eq!(
            tables.len(),
            3,
            "the string and the comment are not headers"
        );
        let runs = pieces(&tables, 256);
        assert_eq!(runs.len(), 2, "[defaults] stands between the first two");
        let second = &FLEET[runs[1].clone()];
        assert!(second.starts_with("[[ instance ]]"), "{second}");
        assert!(
            second.ends_with("[1]]]\n"),
            "the array's lines are not headers"
        );
    }

    #[test]
    fn what_it_cannot_split_and_any_error_are_left_to_the_whole_parse() {
        for text in [
            // A table below an instance, a quoted header, instances inline.
            "[[instance]]\nid = 1\n[instance.extra]\na = 1\n",
            "[[\"instance\"]]\nid = 1\n",
            "instance = [{ id = 1 }]\n",
            // An unknown key, a syntax error, a wrong type outside the instances.
            "[[instance]]\nid = 1\nnope = 2\n",
            "[[instance]]\nid = \n",
            "[daemon]\nlisten = 1\n[[instance]]\nid = 1\n",
        ] {
            assert_eq!(parsed_in_pieces(text, 1), None, "{text}");
        }
    }

    #[test]
    fn the_shipped_examples_parse_the_same_in_pieces() {
        for text in [
            include_str!("../../config/relinkd.example.toml"),
            include_str!("../../config/relinkd.starter.toml"),
        ] {
            assert_eq!(parsed_in_pieces(text, 1), Some(whole(text)));
        }
    }
}
