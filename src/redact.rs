//! Text from outside relinkd (vendor answers, channel error bodies, SMTP
//! replies) on its way into logs, errors, the status API and the state file:
//! the secrets it might quote are cut out first, then control characters are
//! escaped (a newline cannot forge a log line) and the length is bounded, in
//! that order, so a secret straddling the cut cannot leak in part.

use secrecy::{ExposeSecret, SecretString};

/// What a cut-out secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Secrets shorter than this are not searched for: they would match
/// ordinary text, and no token, URL or password relinkd holds is that short.
const MIN_SECRET_CHARS: usize = 6;

/// The secrets one component holds (a channel's bot token or webhook URL, an
/// instance's API token), to be cut out of any text that leaves it.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Vec<SecretString>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

impl Redactor {
    /// One secret; more with [`Redactor::with`].
    pub fn of(secret: &str) -> Self {
        Self::default().with(secret)
    }

    /// Also cuts out `secret`.
    pub fn with(mut self, secret: &str) -> Self {
        if secret.chars().count() >= MIN_SECRET_CHARS
            && !self.secrets.iter().any(|s| s.expose_secret() == secret)
        {
            self.secrets.push(SecretString::from(secret));
            // Longest first, so a secret that contains another goes whole.
            self.secrets
                .sort_by_key(|s| std::cmp::Reverse(s.expose_secret().len()));
        }
        self
    }

    /// Also cuts out a secret URL and the parts of it a server could echo
    /// alone: its path and query (a Slack webhook's `/services/...`).
    pub fn with_url(self, url: &str) -> Self {
        let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
        let path = after_scheme.find('/').map(|at| &after_scheme[at..]);
        let mut out = self.with(url);
        if let Some(path) = path {
            out = out.with(path);
            if let Some((before_query, _)) = path.split_once('?') {
                out = out.with(before_query);
            }
        }
        out
    }

    /// Every secret replaced by [`REDACTED`].
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            let secret = secret.expose_secret();
            if out.contains(secret) {
                out = out.replace(secret, REDACTED);
            }
        }
        out
    }

    /// [`Redactor::scrub`], then [`printable`]: the one way outside text
    /// becomes part of an error.
    pub fn clean(&self, text: &str, max_chars: usize) -> String {
        printable(&self.scrub(text), max_chars)
    }
}

/// One line of at most `max_chars` characters (plus `…` when cut):
/// control characters, line and paragraph separators and bidirectional
/// overrides are escaped (`\n`, `\u{202e}`), surrounding whitespace trimmed.
pub fn printable(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    for c in text.trim().chars() {
        let escaped = needs_escape(c).then(|| c.escape_default().to_string());
        let width = escaped.as_ref().map_or(1, String::len);
        if count + width > max_chars {
            out.push('…');
            break;
        }
        match escaped {
            Some(escaped) => out.push_str(&escaped),
            None => out.push(c),
        }
        count += width;
    }
    out
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_so_no_line_can_be_forged() {
        let text = printable("bad\nINFO relinkd: forged\r\x1b[31m\u{202e}", 100);
        assert_eq!(text, "bad\\nINFO relinkd: forged\\r\\u{1b}[31m\\u{202e}");
        assert!(!text.contains('\n'));
    }

    #[test]
    fn long_text_is_bounded() {
        let text = printable(&"x".repeat(10_000), 200);
        assert_eq!(text.chars().count(), 201);
        assert!(text.ends_with('…'));
        assert_eq!(printable("short", 200), "short");
    }

    #[test]
    fn a_secret_straddling_the_cut_is_removed_before_the_cut() {
        let token = "tok-5f2d9c31e4b7a8";
        // The cut falls just before the token's last character.
        let text = format!("{}{token}", "x".repeat(200 - token.len() + 1));
        let cleaned = Redactor::of(token).clean(&text, 200);
        assert!(!cleaned.contains(&token[..token.len() - 1]), "{cleaned}");
        assert!(!cleaned.contains("tok-5f2"), "{cleaned}");
    }

    #[test]
    fn a_secret_url_is_cut_out_whole_or_by_its_path() {
        let url = "https://hooks.slack.com/services/T000/B000/XXXXsecret";
        let redactor = Redactor::default().with_url(url);
        assert_eq!(
            redactor.scrub(&format!("posted to {url}")),
            "posted to [redacted]"
        );
        assert_eq!(
            redactor.scrub("no_service: /services/T000/B000/XXXXsecret"),
            "no_service: [redacted]"
        );
    }

    #[test]
    fn short_secrets_are_not_searched_for() {
        assert_eq!(Redactor::of("abc").scrub("abcabc"), "abcabc");
    }
}
