//! `type = "whatsapp"` in the config: `via` (the id of another configured
//! instance that sends the messages) and `chat_ids`.

use std::sync::Arc;

use toml::Value;

use super::Whatsapp;
use crate::delivery::Channel;
use crate::delivery::kinds::{BuildDeps, ChannelKind, ChannelType, CheckContext, Common};
use crate::delivery::template::Style;
use crate::validation::{KeyError, Keys, Report, describe};

pub const TYPE: ChannelType = ChannelType {
    name: "whatsapp",
    keys: &["via", "chat_ids"],
    default_rate_limit: Some(30),
    check,
};

#[derive(Debug, Clone)]
pub struct Config {
    /// A configured instance that sends the messages.
    pub via: u64,
    /// `79001234567@c.us` (a person) or `...@g.us` (a group).
    pub chat_ids: Vec<String>,
}

fn check(
    keys: &Keys,
    ctx: &CheckContext<'_>,
    report: &mut Report,
) -> Result<Option<ChannelKind>, KeyError> {
    let prefix = ctx.prefix;
    let instance_ids = ctx.instance_ids;
    let via = report
        .required(
            format!("{prefix}.via"),
            keys.value("via"),
            "the id of the [[instance]] that sends the messages, e.g. via = 1101000001",
            instance_ref,
        )
        .and_then(|id| {
            if instance_ids.contains(&id) {
                return Some(id);
            }
            let known = if instance_ids.is_empty() {
                "no [[instance]] is configured".to_owned()
            } else {
                let ids: Vec<String> = instance_ids.iter().map(u64::to_string).collect();
                format!("configured ids: {}", ids.join(", "))
            };
            report.error(
                format!("{prefix}.via"),
                format!("no [[instance]] has id {id}; {known}"),
            );
            None
        });
    let chat_ids = match keys.get::<Vec<String>>("chat_ids")?.as_deref() {
        None => {
            report.error(
                format!("{prefix}.chat_ids"),
                "missing: the chats to send to, e.g. chat_ids = [\"79001234567@c.us\"]",
            );
            None
        }
        Some([]) => {
            report.error(
                format!("{prefix}.chat_ids"),
                "must list at least one chat, e.g. chat_ids = [\"79001234567@c.us\"]",
            );
            None
        }
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(j, id)| {
                report
                    .check(format!("{prefix}.chat_ids[{j}]"), whatsapp_chat_id(id))
                    .map(|()| id.clone())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .collect::<Option<Vec<String>>>(),
    };
    Ok((|| {
        Some(ChannelKind::Whatsapp(Config {
            via: via?,
            chat_ids: chat_ids?,
        }))
    })())
}

/// The `via` id as written, if it is one (so an instance's own channel list
/// can be checked against it before the channel is).
pub fn via_of(keys: &Keys) -> Option<u64> {
    instance_ref(keys.value("via")?).ok()
}

/// The id of a configured instance, as a TOML integer (whatsapp `via`).
fn instance_ref(value: &Value) -> Result<u64, String> {
    match value {
        Value::Integer(i) if *i > 0 => u64::try_from(*i).map_err(|_| "out of range".to_owned()),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => Err(format!(
            "must be a TOML integer, not a string (write {s} without quotes)"
        )),
        other => Err(format!(
            "must be the id (idInstance, a positive integer) of a configured [[instance]] \
             (got {})",
            describe(other)
        )),
    }
}

/// A WhatsApp chat id as GREEN-API takes it: `<7 to 15 digits>@c.us` (a
/// person, international number without `+`) or `<digits and dashes>@g.us`
/// (a group).
fn whatsapp_chat_id(text: &str) -> Result<(), String> {
    if let Some(number) = text.strip_suffix("@c.us") {
        if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) {
            return if (7..=15).contains(&number.len()) {
                Ok(())
            } else {
                Err(format!(
                    "a person's number before @c.us must be 7 to 15 digits (got {} in {text:?})",
                    number.len()
                ))
            };
        }
    } else if let Some(group) = text.strip_suffix("@g.us") {
        let ok = group.starts_with(|c: char| c.is_ascii_digit())
            && group.bytes().all(|b| b.is_ascii_digit() || b == b'-');
        if ok {
            return Ok(());
        }
    }
    Err(format!(
        "must be \"<number>@c.us\" for a person (7 to 15 digits, international form \
         without +, e.g. \"79001234567@c.us\") or \"<group id>@g.us\" for a group (digits \
         and dashes, e.g. \"120363043968066561@g.us\"); got {text:?}"
    ))
}

impl Config {
    pub(in crate::delivery) fn build(
        &self,
        common: &Common<'_>,
        deps: &BuildDeps<'_>,
    ) -> Result<Arc<dyn Channel>, String> {
        let api = (deps.instance_api)(self.via)
            .ok_or_else(|| format!("via = {} is not a configured instance", self.via))?;
        Ok(Arc::new(Whatsapp::new(
            common.name,
            self.via,
            self.chat_ids.clone(),
            api,
            common.templates(Style::Plain)?,
            common.timeout,
        )))
    }
}
