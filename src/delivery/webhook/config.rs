//! `type = "webhook"` in the config: `url` and an optional Standard Webhooks
//! signing secret (`secret_file`, `_env`, `_credential` or inline).

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use secrecy::zeroize::Zeroize;
use secrecy::{ExposeSecret, SecretBox};

use super::{Webhook, WebhookSigner};
use crate::delivery::Channel;
use crate::delivery::kinds::{BuildDeps, ChannelKind, ChannelType, CheckContext, Common};
use crate::delivery::template::Style;
use crate::validation::{KeyError, Keys, RawSecret, Report, Reported, http_url, resolve};

pub const TYPE: ChannelType = ChannelType {
    name: "webhook",
    keys: &[
        "url",
        "secret_file",
        "secret_env",
        "secret_credential",
        "secret",
    ],
    default_rate_limit: Some(600),
    check,
};

#[derive(Debug, Clone)]
pub struct Config {
    /// Starts with http:// or https://.
    pub url: String,
    pub secret: Option<WebhookSecret>,
}

fn check(
    keys: &Keys,
    ctx: &CheckContext<'_>,
    report: &mut Report,
) -> Result<Option<ChannelKind>, KeyError> {
    let prefix = ctx.prefix;
    // `url` is read as a secret for both webhook and slack channels (for
    // slack it is one); for a webhook it is an ordinary address.
    let url = keys.get::<RawSecret>("url")?;
    let url = report.required(
        format!("{prefix}.url"),
        url.as_ref(),
        "a webhook channel needs url = \"https://...\"",
        |url| http_url(url.0.expose_secret()),
    );
    let sources = keys.secret("secret", None)?;
    let secret = match resolve(prefix, &sources, ctx.secrets, report) {
        Err(Reported) => return Ok(None),
        Ok(None) => None,
        Ok(Some(loaded)) => match WebhookSecret::decode(loaded.value.expose_secret()) {
            Ok(secret) => Some(secret),
            Err(problem) => {
                report.error(loaded.key, problem.to_string());
                return Ok(None);
            }
        },
    };
    Ok(url.map(|url| ChannelKind::Webhook(Config { url, secret })))
}

impl Config {
    pub(in crate::delivery) fn build(
        &self,
        common: &Common<'_>,
        deps: &BuildDeps<'_>,
    ) -> Result<Arc<dyn Channel>, String> {
        Ok(Arc::new(Webhook::new(
            common.name,
            self.url.clone(),
            self.secret.clone().map(WebhookSigner::new),
            common.templates(Style::Plain)?,
            common.timeout,
            deps.http.clone(),
        )))
    }
}

/// A Standard Webhooks signing key: the decoded bytes of `whsec_<base64>`.
/// `Debug` never shows it. Cloning shares the key (no copy of the bytes).
#[derive(Clone)]
pub struct WebhookSecret(Arc<SecretBox<Vec<u8>>>);

impl WebhookSecret {
    /// Wraps already-decoded key bytes.
    pub fn new(key: Vec<u8>) -> Self {
        WebhookSecret(Arc::new(SecretBox::new(Box::new(key))))
    }

    /// Decodes `whsec_<base64>` (or bare base64; standard alphabet, padding
    /// optional). The error never contains the input.
    pub fn decode(text: &str) -> Result<Self, InvalidWebhookSecret> {
        let encoded = text.strip_prefix("whsec_").unwrap_or(text);
        let mut key = WHSEC_BASE64
            .decode(encoded)
            .map_err(|_| InvalidWebhookSecret::NotBase64)?;
        if key.is_empty() {
            key.zeroize();
            return Err(InvalidWebhookSecret::Empty);
        }
        Ok(WebhookSecret::new(key))
    }

    /// The key bytes, for HMAC.
    pub fn expose(&self) -> &[u8] {
        self.0.expose_secret()
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([REDACTED])")
    }
}

/// Why a webhook signing secret was refused. Never contains the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidWebhookSecret {
    #[error(
        "not a valid Standard Webhooks secret: expected \"whsec_\" followed by base64 \
         (the value is not shown)"
    )]
    NotBase64,
    #[error("the Standard Webhooks secret decodes to an empty key")]
    Empty,
}

/// Standard alphabet; padding optional; lenient about unused trailing bits.
const WHSEC_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);
