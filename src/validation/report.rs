//! What checking a config found: problems, each with its key path, and
//! warnings. Every problem is collected, so one run names all of them.

use std::fmt;

/// One validation problem (or warning): the key path, where that is in
/// words, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// e.g. `instance[2].phone`
    pub key: String,
    /// e.g. `instance "sales-line" (line 26): phone`; the key until placed.
    pub place: String,
    /// e.g. `must be 7 to 15 digits (got 5)`
    pub message: String,
}

impl Issue {
    fn new(key: String, message: String) -> Self {
        Self {
            place: key.clone(),
            key,
            message,
        }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place, self.message)
    }
}

/// A check failed and said why in the [`Report`]; the caller has nothing
/// more to add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reported;

/// Problems and warnings found while checking one config file.
#[derive(Default)]
pub struct Report {
    issues: Vec<Issue>,
    warnings: Vec<Issue>,
}

impl Report {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn error(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.issues.push(Issue::new(key.into(), message.into()));
    }

    pub fn warn(&mut self, key: &str, message: &str) {
        self.warnings
            .push(Issue::new(key.to_owned(), message.to_owned()));
    }

    /// Records `result`'s error under `key`; returns the value if any.
    pub fn check<T>(&mut self, key: impl Into<String>, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(message) => {
                self.error(key, message);
                None
            }
        }
    }

    /// A key that must be given: `missing` (what to write) when it is not,
    /// else `check`'s verdict on it.
    pub fn required<V, T>(
        &mut self,
        key: String,
        value: Option<V>,
        missing: &str,
        check: impl FnOnce(V) -> Result<T, String>,
    ) -> Option<T> {
        match value {
            None => {
                self.error(key, format!("missing: {missing}"));
                None
            }
            Some(value) => self.check(key, check(value)),
        }
    }

    /// How many problems so far (to tell whether a part added any).
    pub fn problems(&self) -> usize {
        self.issues.len()
    }

    /// The problems and the warnings.
    pub fn finish(self) -> (Vec<Issue>, Vec<Issue>) {
        (self.issues, self.warnings)
    }
}
