//! One sweep for every secret a test's config holds and every code a test
//! saw issued: each place relinkd writes (logs, /metrics, the status API,
//! `relinkd status`, the state file, `STATUS=` lines) is searched for all of
//! them, so no test checks only the secret it happens to think of.

use base64::Engine as _;

use super::{ADMIN_TOKEN, TG_TOKEN, TOKEN, WHSEC};

/// The secrets and codes a text must not contain.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// (what it is, its value)
    needles: Vec<(String, String)>,
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
                ("the GREEN-API token".into(), TOKEN.into()),
                ("the admin token".into(), ADMIN_TOKEN.into()),
                ("the webhook secret".into(), WHSEC.into()),
                (
                    "the webhook secret's base64".into(),
                    WHSEC.trim_start_matches("whsec_").into(),
                ),
                (
                    "the webhook signing key".into(),
                    String::from_utf8(key).unwrap(),
                ),
                ("the Telegram bot token".into(), TG_TOKEN.into()),
            ],
        }
    }
}

impl Sweep {
    /// Also searches for `value` (`what` names it in a failure).
    pub fn secret(mut self, what: &str, value: &str) -> Self {
        self.needles.push((what.to_owned(), value.to_owned()));
        self
    }

    /// Also searches for every code in `codes`.
    pub fn codes<I: IntoIterator<Item = String>>(mut self, codes: I) -> Self {
        for code in codes {
            self.needles.push(("a linking code".into(), code));
        }
        self
    }

    /// How many secrets and codes are searched for.
    pub fn len(&self) -> usize {
        self.needles.len()
    }

    /// Fails naming the secret and the place if `text` holds any of them.
    pub fn assert_clean(&self, place: &str, text: &str) {
        for (what, value) in &self.needles {
            assert!(
                !text.contains(value.as_str()),
                "{what} ({value}) appears in {place}"
            );
        }
    }
}
