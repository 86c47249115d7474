//! An item's keys as written in the file, each value with where it is: what a
//! channel type's config reads its own keys from. A value of the wrong type
//! is a [`KeyError`] with the value's place, worded as serde words it, so it
//! reads like any other TOML error.

use std::ops::Range;

use secrecy::zeroize::Zeroize;
use serde::de::DeserializeOwned;
use toml::{Spanned, Value};

use super::secrets::{RawSecret, Sources};

/// A value of the wrong type (or shape) at a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    /// The key, e.g. `chat_ids`.
    pub key: String,
    /// Where the value is in the file (byte offsets).
    pub span: Range<usize>,
    /// serde's words, e.g. `invalid type: string "x", expected a sequence`.
    pub message: String,
}

/// Keys in the order written. Their values may hold inline secrets: they are
/// wiped when the keys are dropped.
#[derive(Default)]
pub struct Keys {
    entries: Vec<(String, Spanned<Value>)>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be secrets: names only.
        f.debug_list().entries(self.names()).finish()
    }
}

impl Keys {
    pub fn push(&mut self, key: String, value: Spanned<Value>) {
        self.entries.push((key, value));
    }

    /// The keys given, in the order written.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    pub fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == key)
    }

    /// The value of `key` as written, if given.
    pub fn value(&self, key: &str) -> Option<&Value> {
        self.spanned(key).map(Spanned::get_ref)
    }

    fn spanned(&self, key: &str) -> Option<&Spanned<Value>> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The value of `key` as `T`, if given.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, KeyError> {
        let Some(spanned) = self.spanned(key) else {
            return Ok(None);
        };
        T::deserialize(spanned.get_ref().clone())
            .map(Some)
            .map_err(|e| KeyError {
                key: key.to_owned(),
                span: spanned.span(),
                message: e.message().to_owned(),
            })
    }

    /// The ways the secret `base` may be given: `{base}_file`, `{base}_env`,
    /// `{base}_credential` and `{base}` itself (inline).
    pub fn secret(
        &self,
        base: &'static str,
        inline_warning: Option<&'static str>,
    ) -> Result<Sources, KeyError> {
        Ok(Sources {
            base,
            file: self.get(&format!("{base}_file"))?,
            env: self.get(&format!("{base}_env"))?,
            credential: self.get(&format!("{base}_credential"))?,
            inline: self.get::<RawSecret>(base)?.map(|s| s.0),
            inline_warning,
        })
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        for (_, value) in &mut self.entries {
            if let Value::String(text) = value.get_mut() {
                text.zeroize();
            }
        }
    }
}
