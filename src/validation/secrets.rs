//! Secret loading (`*_file`, `*_env`, `*_credential`, inline), and where
//! environment variables come from. Nothing here ever puts a secret's value
//! into a message.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::io;
use std::path::{Path, PathBuf};

use secrecy::zeroize::Zeroize;
use secrecy::{ExposeSecret, SecretString};
use serde::de::{self, Deserialize, Deserializer, Visitor};

use super::files::{FileProblem, read_regular};
use super::report::{Report, Reported};

/// Where environment variables come from: the process environment for real,
/// a map in tests. `$STATE_DIRECTORY`, `$CREDENTIALS_DIRECTORY` and every
/// `*_env` secret are read through it.
pub trait Environment {
    /// The value of `name`, or `None` when unset (or not valid UTF-8).
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment (`std::env::var`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Environment for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<S: BuildHasher> Environment for HashMap<String, String, S> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Secret files larger than this are refused (a token is a few dozen bytes;
/// this also stops `/dev/zero`-style mistakes from eating memory).
const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// The ways one secret may be given, e.g. `api_token_file`, `api_token_env`,
/// `api_token_credential`, `api_token`.
pub struct Sources {
    /// `api_token`, `secret`, `admin_token`.
    pub base: &'static str,
    pub file: Option<String>,
    pub env: Option<String>,
    pub credential: Option<String>,
    pub inline: Option<SecretString>,
    /// What to say when the secret is inline, instead of the generic warning
    /// (e.g. that a Slack webhook URL is a secret although it looks like an
    /// address). `None`: the generic warning.
    pub inline_warning: Option<&'static str>,
}

impl Sources {
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
pub struct SecretContext<'a> {
    /// Directory of the config file; relative `*_file` paths resolve here.
    pub config_dir: &'a Path,
    pub env: &'a dyn Environment,
    /// Secret files read so far in this load, by resolved path: a fleet
    /// whose instances share one token file reads it once, and hears about
    /// its mode once, not once per instance.
    pub read_files: RefCell<HashMap<PathBuf, SecretString>>,
}

impl<'a> SecretContext<'a> {
    pub fn new(config_dir: &'a Path, env: &'a dyn Environment) -> Self {
        Self {
            config_dir,
            env,
            read_files: RefCell::default(),
        }
    }
}

/// A loaded secret and the full key it came from (e.g. `channel[0].secret_env`).
pub struct Loaded {
    pub value: SecretString,
    pub key: String,
}

/// Resolves the secret described by `sources` under `prefix` (e.g.
/// `instance[0]`). `Ok(None)`: no source given. `Err(Reported)`: a problem was
/// recorded in `report`.
pub fn resolve(
    prefix: &str,
    sources: &Sources,
    ctx: &SecretContext<'_>,
    report: &mut Report,
) -> Result<Option<Loaded>, Reported> {
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
        return Err(Reported);
    }

    if let Some(path) = sources.file.as_deref() {
        let key = format!("{prefix}.{base}_file");
        return from_file(&key, path, ctx, report).map(|value| Some(Loaded { value, key }));
    }
    if let Some(name) = sources.env.as_deref() {
        let key = format!("{prefix}.{base}_env");
        return from_env(&key, name, ctx, report).map(|value| Some(Loaded { value, key }));
    }
    if let Some(name) = sources.credential.as_deref() {
        let key = format!("{prefix}.{base}_credential");
        return from_credential(&key, name, ctx, report).map(|value| Some(Loaded { value, key }));
    }
    if let Some(secret) = &sources.inline {
        let key = format!("{prefix}.{base}");
        let trimmed = secret.expose_secret().trim_end();
        if trimmed.is_empty() {
            report.error(key, "is empty");
            return Err(Reported);
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
) -> Result<SecretString, Reported> {
    if path.trim().is_empty() {
        report.error(key, "is empty: give the path of a file holding the secret");
        return Err(Reported);
    }
    let path = resolve_path(ctx.config_dir, path);
    if let Some(secret) = ctx.read_files.borrow().get(&path) {
        return Ok(secret.clone());
    }
    match read_secret_file(&path) {
        Ok((secret, mode)) => {
            ctx.read_files
                .borrow_mut()
                .insert(path.clone(), secret.clone());
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
            Err(Reported)
        }
    }
}

fn from_env(
    key: &str,
    name: &str,
    ctx: &SecretContext<'_>,
    report: &mut Report,
) -> Result<SecretString, Reported> {
    if name.is_empty() || name.contains('=') || name.contains('\0') {
        report.error(key, "must be the name of an environment variable");
        return Err(Reported);
    }
    match ctx.env.var(name) {
        None => {
            report.error(key, format!("environment variable {name} is not set"));
            Err(Reported)
        }
        Some(mut value) => {
            let trimmed_len = value.trim_end().len();
            value.truncate(trimmed_len);
            let result = if value.is_empty() {
                report.error(key, format!("environment variable {name} is empty"));
                Err(Reported)
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
) -> Result<SecretString, Reported> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        report.error(
            key,
            "must be a plain file name inside $CREDENTIALS_DIRECTORY (the first part of LoadCredential=)",
        );
        return Err(Reported);
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
            return Err(Reported);
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
            Err(Reported)
        }
        Err(problem) => {
            report.error(key, format!("credential {}: {problem}", path.display()));
            Err(Reported)
        }
    }
}

/// Relative paths resolve against the config file's directory.
pub fn resolve_path(config_dir: &Path, path: &str) -> PathBuf {
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

/// A secret that must be given: `Some` when loaded, `None` when missing
/// (reported, with `what` saying what it is) or invalid (reported).
pub fn required_secret(
    prefix: &str,
    sources: &Sources,
    what: &str,
    ctx: &SecretContext<'_>,
    report: &mut Report,
) -> Option<Loaded> {
    match resolve(prefix, sources, ctx, report) {
        Ok(Some(loaded)) => Some(loaded),
        Ok(None) => {
            report.error(
                format!("{prefix}.{}", sources.base),
                format!("missing: {what}; set exactly one of {}", sources.choices()),
            );
            None
        }
        Err(Reported) => None,
    }
}

/// An inline secret. Deserializes only from a string, straight into a
/// `SecretString`; a value of any other type is rejected WITHOUT echoing it
/// (serde's default message would print e.g. an integer token).
pub struct RawSecret(pub SecretString);

impl fmt::Debug for RawSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RawSecret([REDACTED])")
    }
}

const NOT_A_STRING: &str = "invalid type: a secret must be a string (value not shown)";

impl<'de> Deserialize<'de> for RawSecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SecretVisitor;
        impl Visitor<'_> for SecretVisitor {
            type Value = RawSecret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawSecret, E> {
                Ok(RawSecret(SecretString::from(v)))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<RawSecret, E> {
                Err(E::custom(NOT_A_STRING))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<RawSecret, E> {
                Err(E::custom(NOT_A_STRING))
            }
            fn visit_i128<E: de::Error>(self, _: i128) -> Result<RawSecret, E> {
                Err(E::custom(NOT_A_STRING))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<RawSecret, E> {
                Err(E::custom(NOT_A_STRING))
            }
            fn visit_u128<E: de::Error>(self, _: u128) -> Result<RawSecret, E> {
                Err(E::custom(NOT_A_STRING))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<RawSecret, E> {
                Err(E::custom(NOT_A_STRING))
            }
            fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<RawSecret, E> {
                Err(E::custom(NOT_A_STRING))
            }
        }
        deserializer.deserialize_any(SecretVisitor)
    }
}
