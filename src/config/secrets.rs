//! Secret loading (`*_file`, `*_env`, `*_credential`, inline) and decoding of
//! Standard Webhooks signing secrets. Nothing here ever puts a secret's value
//! into a message.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use secrecy::zeroize::Zeroize;
use secrecy::{ExposeSecret, SecretString};

use super::files::{FileProblem, read_regular};
use super::validate::Report;
use super::{Environment, WebhookSecret};

/// Secret files larger than this are refused (a token is a few dozen bytes;
/// this also stops `/dev/zero`-style mistakes from eating memory).
const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// The ways one secret may be given, e.g. `api_token_file`, `api_token_env`,
/// `api_token_credential`, `api_token`.
pub(super) struct Sources<'a> {
    /// `api_token`, `secret`, `admin_token`.
    pub base: &'a str,
    pub file: Option<&'a str>,
    pub env: Option<&'a str>,
    pub credential: Option<&'a str>,
    pub inline: Option<&'a SecretString>,
    /// What to say when the secret is inline, instead of the generic warning
    /// (e.g. that a Slack webhook URL is a secret although it looks like an
    /// address). `None`: the generic warning.
    pub inline_warning: Option<&'a str>,
}

impl<'a> Sources<'a> {
    /// The key names, e.g. `api_token_file, api_token_env,
    /// api_token_credential or api_token` (for "missing" messages).
    pub fn choices(&self) -> String {
        let base = self.base;
        format!("{base}_file, {base}_env, {base}_credential or {base}")
    }

    /// The first source key given, e.g. `password_env`, if any.
    pub fn given_key(&self) -> Option<String> {
        let base = self.base;
        if self.file.is_some() {
            Some(format!("{base}_file"))
        } else if self.env.is_some() {
            Some(format!("{base}_env"))
        } else if self.credential.is_some() {
            Some(format!("{base}_credential"))
        } else if self.inline.is_some() {
            Some(base.to_owned())
        } else {
            None
        }
    }
}

/// What secret loading needs from the outside world.
pub(super) struct SecretContext<'a> {
    /// Directory of the config file; relative `*_file` paths resolve here.
    pub config_dir: &'a Path,
    pub env: &'a dyn Environment,
}

/// A loaded secret and the full key it came from (e.g. `channel[0].secret_env`).
pub(super) struct Loaded {
    pub value: SecretString,
    pub key: String,
}

/// Resolves the secret described by `sources` under `prefix` (e.g.
/// `instance[0]`). `Ok(None)`: no source given. `Err(())`: a problem was
/// recorded in `report`.
pub(super) fn resolve(
    prefix: &str,
    sources: &Sources<'_>,
    ctx: &SecretContext<'_>,
    report: &mut Report,
) -> Result<Option<Loaded>, ()> {
    let base = sources.base;
    let mut given: Vec<String> = Vec::new();
    if sources.file.is_some() {
        given.push(format!("{base}_file"));
    }
    if sources.env.is_some() {
        given.push(format!("{base}_env"));
    }
    if sources.credential.is_some() {
        given.push(format!("{base}_credential"));
    }
    if sources.inline.is_some() {
        given.push(base.to_owned());
    }
    if given.len() > 1 {
        report.error(
            format!("{prefix}.{base}"),
            format!(
                "given in more than one way ({}); use exactly one",
                given.join(", ")
            ),
        );
        return Err(());
    }

    if let Some(path) = sources.file {
        let key = format!("{prefix}.{base}_file");
        return from_file(&key, path, ctx, report).map(|value| Some(Loaded { value, key }));
    }
    if let Some(name) = sources.env {
        let key = format!("{prefix}.{base}_env");
        return from_env(&key, name, ctx, report).map(|value| Some(Loaded { value, key }));
    }
    if let Some(name) = sources.credential {
        let key = format!("{prefix}.{base}_credential");
        return from_credential(&key, name, ctx, report).map(|value| Some(Loaded { value, key }));
    }
    if let Some(secret) = sources.inline {
        let key = format!("{prefix}.{base}");
        let trimmed = secret.expose_secret().trim_end();
        if trimmed.is_empty() {
            report.error(key, "is empty");
            return Err(());
        }
        let message = match sources.inline_warning {
            Some(text) => text.to_owned(),
            None => format!(
                "secret is written inline in the config file; \
                 use {base}_file or {base}_credential instead"
            ),
        };
        report.warn(&key, &message);
        return Ok(Some(Loaded {
            value: SecretString::from(trimmed),
            key,
        }));
    }
    Ok(None)
}

fn from_file(
    key: &str,
    path: &str,
    ctx: &SecretContext<'_>,
    report: &mut Report,
) -> Result<SecretString, ()> {
    if path.trim().is_empty() {
        report.error(key, "is empty: give the path of a file holding the secret");
        return Err(());
    }
    let path = resolve_path(ctx.config_dir, path);
    match read_secret_file(&path) {
        Ok((secret, mode)) => {
            if mode & 0o077 != 0 {
                report.warn(
                    key,
                    &format!(
                        "{} is readable by group or others (mode {:04o}); run chmod 600 on it",
                        path.display(),
                        mode & 0o7777
                    ),
                );
            }
            Ok(secret)
        }
        Err(problem) => {
            report.error(key, format!("{}: {problem}", path.display()));
            Err(())
        }
    }
}

fn from_env(
    key: &str,
    name: &str,
    ctx: &SecretContext<'_>,
    report: &mut Report,
) -> Result<SecretString, ()> {
    if name.is_empty() || name.contains('=') || name.contains('\0') {
        report.error(key, "must be the name of an environment variable");
        return Err(());
    }
    match ctx.env.var(name) {
        None => {
            report.error(key, format!("environment variable {name} is not set"));
            Err(())
        }
        Some(mut value) => {
            let trimmed_len = value.trim_end().len();
            value.truncate(trimmed_len);
            let result = if value.is_empty() {
                report.error(key, format!("environment variable {name} is empty"));
                Err(())
            } else {
                Ok(SecretString::from(value.as_str()))
            };
            value.zeroize();
            result
        }
    }
}

fn from_credential(
    key: &str,
    name: &str,
    ctx: &SecretContext<'_>,
    report: &mut Report,
) -> Result<SecretString, ()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        report.error(
            key,
            "must be a plain file name inside $CREDENTIALS_DIRECTORY (the first part of LoadCredential=)",
        );
        return Err(());
    }
    let dir = match ctx.env.var("CREDENTIALS_DIRECTORY") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            report.error(
                key,
                format!(
                    "credential {name:?} needs $CREDENTIALS_DIRECTORY, which is not set \
                     (it is set by systemd's LoadCredential=; run relinkd under systemd \
                     or use a *_file key instead)"
                ),
            );
            return Err(());
        }
    };
    let path = dir.join(name);
    match read_secret_file(&path) {
        Ok((secret, _mode)) => Ok(secret),
        Err(SecretFileProblem::File(FileProblem::Io(e))) if e.kind() == io::ErrorKind::NotFound => {
            report.error(
                key,
                format!(
                    "credential {name:?} not found in $CREDENTIALS_DIRECTORY ({}); \
                     is there a LoadCredential={name}:... line in the unit?",
                    dir.display()
                ),
            );
            Err(())
        }
        Err(problem) => {
            report.error(key, format!("credential {}: {problem}", path.display()));
            Err(())
        }
    }
}

/// Relative paths resolve against the config file's directory.
fn resolve_path(config_dir: &Path, path: &str) -> PathBuf {
    let path = Path::new(path);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        config_dir.join(path)
    }
}

/// What can be wrong with a secret file besides how it is read.
enum SecretFileProblem {
    File(FileProblem),
    NotUtf8,
    Empty,
}

impl fmt::Display for SecretFileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretFileProblem::File(problem) => problem.fmt(f),
            SecretFileProblem::NotUtf8 => f.write_str("is not valid UTF-8 text"),
            SecretFileProblem::Empty => f.write_str("is empty"),
        }
    }
}

/// Reads a secret file: trailing whitespace/newlines trimmed, must not be
/// empty. Also returns the permission bits for the readability check.
fn read_secret_file(path: &Path) -> Result<(SecretString, u32), SecretFileProblem> {
    let (buf, mode) = read_regular(path, MAX_SECRET_FILE_BYTES).map_err(SecretFileProblem::File)?;
    let mut text = match String::from_utf8(buf) {
        Ok(text) => text,
        Err(e) => {
            e.into_bytes().zeroize();
            return Err(SecretFileProblem::NotUtf8);
        }
    };
    let trimmed_len = text.trim_end().len();
    text.truncate(trimmed_len);
    let result = if text.is_empty() {
        Err(SecretFileProblem::Empty)
    } else {
        Ok((SecretString::from(text.as_str()), mode))
    };
    text.zeroize();
    result
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

pub(super) fn decode_webhook_secret(text: &str) -> Result<WebhookSecret, InvalidWebhookSecret> {
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
