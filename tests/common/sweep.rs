//! One sweep for every secret a test's config holds and every code a test
//! saw issued: each place relinkd writes (logs, /metrics, the status API,
//! `relinkd status`, the state file, `STATUS=` lines) is searched for all of
//! them, so no test checks only the secret it happens to think of.

use base64::Engine as _;

use super::{ADMIN_TOKEN, TG_TOKEN, TOKEN, WHSEC};

/// The shortest piece of a secret that counts as leaking it.
const PART: usize = 8;

/// The secrets and codes a text must not contain.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// (what it is, its value, searched for in parts too)
    needles: Vec<(String, String, bool)>,
}

impl Default for Sweep {
    /// The secrets every test config may hold: the GREEN-API token, the admin
    /// token, the webhook secret (as written, and the key it decodes to), the
    /// Telegram bot token.
    fn default() -> Self {
        let key = base64::engine::general_purpose::STANDARD
            .decode(WHSEC.trim_start_matches("whsec_"))
            .unwrap();
        Self {
            needles: vec![
                ("the GREEN-API token".into(), TOKEN.into(), true),
                ("the admin token".into(), ADMIN_TOKEN.into(), true),
                ("the webhook secret".into(), WHSEC.into(), true),
                (
                    "the webhook secret's base64".into(),
                    WHSEC.trim_start_matches("whsec_").into(),
                    true,
                ),
                // Readable words ("relinkd-test-..."): whole only.
                (
                    "the webhook signing key".into(),
                    String::from_utf8(key).unwrap(),
                    false,
                ),
                ("the Telegram bot token".into(), TG_TOKEN.into(), true),
            ],
        }
    }
}

impl Sweep {
    /// Also searches for `value`, whole and in parts (`what` names it in a
    /// failure).
    pub fn secret(mut self, what: &str, value: &str) -> Self {
        self.needles.push((what.to_owned(), value.to_owned(), true));
        self
    }

    /// Also searches for `value`, whole only (a secret URL, whose host is
    /// not secret; its path is a `secret`).
    pub fn whole(mut self, what: &str, value: &str) -> Self {
        self.needles
            .push((what.to_owned(), value.to_owned(), false));
        self
    }

    /// Also searches for every code in `codes`, whole.
    pub fn codes<I: IntoIterator<Item = String>>(mut self, codes: I) -> Self {
        for code in codes {
            self.needles.push(("a linking code".into(), code, false));
        }
        self
    }

    /// How many secrets and codes are searched for.
    pub fn len(&self) -> usize {
        self.needles.len()
    }

    /// Fails naming the secret and the place if `text` holds any of them,
    /// or any 8 characters in a row of a secret longer than that (a secret
    /// cut in two still leaks). Codes are searched for whole.
    pub fn assert_clean(&self, place: &str, text: &str) {
        for (what, value, in_parts) in &self.needles {
            assert!(
                !text.contains(value.as_str()),
                "{what} ({value}) appears in {place}"
            );
            if !in_parts {
                continue;
            }
            let chars: Vec<char> = value.chars().collect();
            for window in chars.windows(PART) {
                let part: String = window.iter().collect();
                assert!(
                    !text.contains(&part),
                    "part of {what} ({part:?} of {value}) appears in {place}"
                );
            }
        }
    }
}
