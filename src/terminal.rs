//! Text for someone reading a terminal (the demo's log lines and its
//! console channel): lines wrapped at word boundaries so they fit its width,
//! and paths quoted so a printed command runs when pasted into a shell.

/// Columns the demo's output fits in.
pub const WIDTH: usize = 120;

/// `text` with every line longer than `width` characters broken at spaces,
/// each continuation line starting with `indent` spaces. A word longer than
/// a line is left whole rather than cut.
pub fn wrap(text: &str, width: usize, indent: usize) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut rest = line;
        let mut room = width;
        loop {
            if rest.chars().count() <= room {
                out.push_str(rest);
                break;
            }
            // The last space that leaves at most `room` characters before
            // it, else the first one.
            let limit = rest
                .char_indices()
                .nth(room + 1)
                .map_or(rest.len(), |(at, _)| at);
            let Some(at) = field_break(&rest[..limit])
                .or_else(|| rest[..limit].rfind(' '))
                .or_else(|| rest.find(' '))
            else {
                out.push_str(rest);
                break;
            };
            out.push_str(rest[..at].trim_end());
            out.push('\n');
            out.extend(std::iter::repeat_n(' ', indent));
            rest = rest[at..].trim_start();
            room = width.saturating_sub(indent).max(1);
        }
    }
    out
}

/// In a log line, the last space before a `key=` in the second half of
/// `window`: a field is not split when it need not be.
fn field_break(window: &str) -> Option<usize> {
    window
        .rmatch_indices(' ')
        .map(|(at, _)| at)
        .take_while(|&at| at >= window.len() / 2)
        .find(|&at| {
            let key: String = window[at + 1..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            !key.is_empty() && window[at + 1 + key.len()..].starts_with('=')
        })
}

/// `word` as one word for a POSIX shell: as it is when it has nothing a
/// shell would read, else in single quotes.
pub fn shell_quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+:@%,=".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_break_at_spaces_and_continue_indented() {
        let wrapped = wrap("aaaa bbbb cccc dddd\nshort", 10, 2);
        assert_eq!(wrapped, "aaaa bbbb\n  cccc\n  dddd\nshort");
        for line in wrapped.lines() {
            assert!(line.chars().count() <= 10, "{line}");
        }
        assert_eq!(wrap("fits as is", 10, 2), "fits as is");
        assert_eq!(wrap("abcdefghij k", 10, 0), "abcdefghij\nk");
        assert_eq!(
            wrap("averyveryverylongword x", 10, 2),
            "averyveryverylongword\n  x",
            "a word longer than a line stays whole"
        );
        assert_eq!(
            wrap("→→→→ →→→→", 9, 0),
            "→→→→ →→→→",
            "characters, not bytes"
        );
    }

    #[test]
    fn a_path_with_spaces_or_quotes_is_one_shell_word() {
        assert_eq!(shell_quote("/usr/bin/relinkd"), "/usr/bin/relinkd");
        assert_eq!(shell_quote("/tmp/my dir/x"), "'/tmp/my dir/x'");
        assert_eq!(shell_quote("/tmp/it's"), r"'/tmp/it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
