//! `type = "console"` in the config: no keys of its own.

use std::sync::Arc;

use super::Console;
use crate::delivery::Channel;
use crate::delivery::kinds::{BuildDeps, ChannelKind, ChannelType, CheckContext, Common};
use crate::delivery::template::Style;
use crate::validation::{KeyError, Keys, Report};

pub const TYPE: ChannelType = ChannelType {
    name: "console",
    keys: &[],
    // Local output: nothing to protect from flooding.
    default_rate_limit: None,
    check,
};

#[derive(Debug, Clone, Default)]
pub struct Config;

fn check(
    _keys: &Keys,
    _ctx: &CheckContext<'_>,
    _report: &mut Report,
) -> Result<Option<ChannelKind>, KeyError> {
    Ok(Some(ChannelKind::Console(Config)))
}

impl Config {
    pub(in crate::delivery) fn build(
        &self,
        common: &Common<'_>,
        _deps: &BuildDeps<'_>,
    ) -> Result<Arc<dyn Channel>, String> {
        Ok(Arc::new(Console::new(
            common.name,
            common.templates(Style::Plain)?,
            common.timeout,
        )))
    }
}
