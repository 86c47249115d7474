//! Message texts: minijinja templates, one per event, overridable per
//! channel (`[channel.templates]`). Each channel renders in its markup
//! style: plain text, Telegram HTML, or Slack mrkdwn, and values are escaped
//! for it, so a name with `<` or `&` cannot break a message.

use std::time::SystemTime;

use minijinja::Environment;

use super::message::Notification;
use super::{Reason, SendError};
use crate::clock;
pub use crate::template::Style;
use crate::template::{self, Context};

/// `[channel.templates]`: minijinja templates (checked when the config is
/// loaded), one per event; `subject` only for email channels.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateOverrides {
    pub code: Option<String>,
    pub linked: Option<String>,
    pub paused: Option<String>,
    pub alert: Option<String>,
    pub resumed: Option<String>,
    pub digest: Option<String>,
    pub subject: Option<String>,
}

impl TemplateOverrides {
    /// Each template by its key, to check them one by one.
    pub fn by_key(&mut self) -> [(&'static str, &mut Option<String>); 7] {
        [
            ("code", &mut self.code),
            ("linked", &mut self.linked),
            ("paused", &mut self.paused),
            ("alert", &mut self.alert),
            ("resumed", &mut self.resumed),
            ("digest", &mut self.digest),
            ("subject", &mut self.subject),
        ]
    }
}

pub const DEFAULT_CODE: &str = "relinkd: linking code for {{ instance_name | bold }} ({{ instance_id }}): {{ code | mono }}\n\
Expires {{ expires_at_utc }}{% if expires_at_local %} ({{ expires_at_local }}){% endif %}, in {{ seconds_left }} s.\n\
On the phone of +{{ phone }}, open WhatsApp → Linked devices → Link a device → Link with phone number instead, and enter the code.";
pub const DEFAULT_LINKED: &str =
    "relinkd: {{ instance_name | bold }} ({{ instance_id }}) is linked again. Nothing more to do.";
pub const DEFAULT_PAUSED: &str = "{% if reason == \"window\" %}relinkd: {{ instance_name | bold }} ({{ instance_id }}) is not linked, \
and it is outside its linking windows: {% if paused_until_utc %}no code until {{ paused_until_utc }}{% if paused_until_local %} ({{ paused_until_local }}){% endif %}\
{% else %}no window opens, so no code will be requested{% endif %}. \
To get a code now: relinkd relink {{ instance_id }}\
{% else %}relinkd: {{ instance_name | bold }} ({{ instance_id }}) is still not linked after {{ codes_used }} codes in a row. \
No more codes until {{ paused_until_utc }}{% if paused_until_local %} ({{ paused_until_local }}){% endif %}, so WhatsApp does not lock the number out. \
To get a code sooner: relinkd relink {{ instance_id }}{% endif %}";
pub const DEFAULT_ALERT: &str = "{% if reason == \"rebooted\" %}relinkd: {{ instance_name | bold }} ({{ instance_id }}) was stuck in starting \
for {{ stuck_for }}; relinkd rebooted it (GREEN-API's advice; at most once per cooldown).\
{% else %}relinkd: {{ instance_name | bold }} ({{ instance_id }}) is {{ state }}: WhatsApp restricts this number, \
so no linking codes will be requested. Check the number in the GREEN-API console.{% endif %}";
pub const DEFAULT_RESUMED: &str = "relinkd: a linking window opened: codes resume for {{ instance_name | bold }} ({{ instance_id }}).";
pub const DEFAULT_DIGEST: &str = "{{ digest_text }}";
pub const DEFAULT_TEST: &str = "relinkd: test message for channel {{ channel | bold }}. \
If you can read this, linking codes will reach you here.";
pub const DEFAULT_SUBJECT: &str = "relinkd: {% if event == \"code\" %}code for {{ instance_name }} (expires {{ expires_at_time_utc }})\
{% elif event == \"linked\" %}{{ instance_name }} is linked again\
{% elif event == \"paused\" %}codes paused for {{ instance_name }}\
{% elif event == \"alert\" %}{{ instance_name }} is {{ state }}\
{% elif event == \"resumed\" %}codes resume for {{ instance_name }}\
{% elif event == \"digest\" %}digest {{ digest }}\
{% else %}test message{% endif %}";

/// A channel's compiled templates.
pub struct Templates {
    env: Environment<'static>,
    channel: String,
}

impl Templates {
    /// Compiles the defaults and `overrides` (validated at config load, so
    /// an error here is a bug; it is reported, not panicked on).
    pub fn new(channel: &str, style: Style, overrides: &TemplateOverrides) -> Result<Self, String> {
        let mut env = template::environment(style);
        let entries = [
            ("code", &overrides.code, DEFAULT_CODE),
            ("linked", &overrides.linked, DEFAULT_LINKED),
            ("paused", &overrides.paused, DEFAULT_PAUSED),
            ("alert", &overrides.alert, DEFAULT_ALERT),
            ("resumed", &overrides.resumed, DEFAULT_RESUMED),
            ("digest", &overrides.digest, DEFAULT_DIGEST),
            ("test", &None, DEFAULT_TEST),
            ("subject", &overrides.subject, DEFAULT_SUBJECT),
        ];
        for (name, custom, default) in entries {
            let source = custom.clone().unwrap_or_else(|| default.to_owned());
            env.add_template_owned(name, source)
                .map_err(|e| format!("template {name}: {e}"))?;
        }
        Ok(Self {
            env,
            channel: channel.to_owned(),
        })
    }

    /// The message body for `n`.
    pub fn body(&self, n: &Notification) -> Result<String, SendError> {
        self.render(n.event.as_str(), n)
    }

    /// The email subject for `n` (never marked up).
    pub fn subject(&self, n: &Notification) -> Result<String, SendError> {
        self.render("subject", n)
    }

    fn render(&self, name: &str, n: &Notification) -> Result<String, SendError> {
        template::render(&self.env, name, &context(&self.channel, n))
            .map_err(|why| SendError::new(Reason::Other, format!("template {name}: {why}")))
    }
}

fn context<'a>(channel: &'a str, n: &'a Notification) -> Context<'a> {
    let zone = n.timezone.as_deref();
    let local = |t: Option<SystemTime>| t.zip(zone).and_then(|(t, z)| clock::in_zone(t, z));
    Context {
        event: n.event.as_str(),
        channel,
        instance_name: n.instance.as_ref().map_or("", |i| i.name.as_str()),
        instance_id: n.instance.as_ref().map_or(0, |i| i.id),
        digest: n.digest.as_ref().map(|d| d.digest.as_str()),
        digest_text: n.digest.as_ref().map(|d| d.text.as_str()),
        phone: n.phone,
        state: &n.state,
        code: n.code(),
        expires_at: n.expires_at.map(clock::rfc3339),
        expires_at_utc: n.expires_at.map(clock::utc),
        expires_at_time_utc: n.expires_at.map(clock::utc_time_of_day),
        expires_at_local: local(n.expires_at),
        seconds_left: n
            .expires_at
            .map(|t| t.duration_since(clock::now()).map_or(0, |d| d.as_secs())),
        paused_until_utc: n.paused_until.map(clock::utc),
        paused_until_local: n
            .paused_until
            .zip(n.paused_until_zone.as_deref().or(zone))
            .and_then(|(t, z)| clock::in_zone(t, z)),
        reason: n.reason,
        stuck_for: n.stuck_for.map(|d| {
            humantime::format_duration(std::time::Duration::from_secs(d.as_secs())).to_string()
        }),
        codes_used: n.codes_used,
        timezone: zone,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::message::{About, InstanceRef};
    use secrecy::SecretString;
    use std::time::Duration;
    use tokio::time::Instant;

    fn code_for(name: &str, zone: Option<&str>) -> Notification {
        About {
            instance: InstanceRef {
                id: 1101000001,
                name: name.into(),
            },
            phone: 441234567890,
            timezone: zone.map(str::to_owned),
        }
        .code(
            SecretString::from("AB<C&D12"),
            1,
            crate::clock::now() + Duration::from_secs(150),
            Instant::now(),
        )
    }

    #[test]
    fn plain_text_names_the_instance_the_code_its_expiry_and_how_to_enter_it() {
        let t = Templates::new("c", Style::Plain, &TemplateOverrides::default()).unwrap();
        let text = t.body(&code_for("sales-line", None)).unwrap();
        assert!(text.contains("sales-line (1101000001): AB<C&D12"), "{text}");
        assert!(text.contains(" UTC, in 1"), "{text}");
        assert!(text.contains("Link with phone number instead"));
    }

    #[test]
    fn telegram_html_escapes_values_and_puts_the_code_in_a_code_element() {
        let t = Templates::new("t", Style::Html, &TemplateOverrides::default()).unwrap();
        let text = t.body(&code_for("sales <&> line", None)).unwrap();
        assert!(text.contains("<b>sales &lt;&amp;&gt; line</b>"), "{text}");
        assert!(text.contains("<code>AB&lt;C&amp;D12</code>"), "{text}");
    }

    #[test]
    fn slack_escapes_values_and_uses_mrkdwn() {
        let t = Templates::new("s", Style::Slack, &TemplateOverrides::default()).unwrap();
        let text = t.body(&code_for("a<b>", None)).unwrap();
        assert!(text.contains("*a&lt;b&gt;*"), "{text}");
        assert!(text.contains("`AB&lt;C&amp;D12`"), "{text}");
    }

    #[test]
    fn a_configured_time_zone_shows_local_time_too() {
        let t = Templates::new("c", Style::Plain, &TemplateOverrides::default()).unwrap();
        let text = t.body(&code_for("x", Some("Asia/Tokyo"))).unwrap();
        assert!(text.contains(" UTC (") && text.contains(" JST)"), "{text}");
    }

    #[test]
    fn a_window_wait_says_when_codes_resume_in_the_windows_zone_and_how_to_get_one_now() {
        let t = Templates::new("c", Style::Plain, &TemplateOverrides::default()).unwrap();
        let about = About {
            instance: InstanceRef {
                id: 1101000001,
                name: "sales-line".into(),
            },
            phone: 441234567890,
            timezone: Some("Asia/Tokyo".into()),
        };
        let opens = std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let n = about.waiting_for_window(Some(opens), Some("Europe/London".into()), Instant::now());
        let text = t.body(&n).unwrap();
        assert!(text.contains("outside its linking windows"), "{text}");
        assert!(
            text.contains("2027-01-15 08:00:00 UTC (2027-01-15 08:00:00 GMT)"),
            "{text}"
        );
        assert!(text.contains("relinkd relink 1101000001"), "{text}");
        let never = about.waiting_for_window(None, None, Instant::now());
        assert!(t.body(&never).unwrap().contains("no window opens"));
        let rebooting = about.rebooting(Duration::from_secs(630), Instant::now());
        let text = t.body(&rebooting).unwrap();
        assert!(
            text.contains("stuck in starting for 10m 30s; relinkd rebooted it"),
            "{text}"
        );
    }

    #[test]
    fn overrides_replace_the_defaults_and_see_the_variables() {
        let overrides = TemplateOverrides {
            code: Some("{{ code }} for {{ instance_name }} ({{ seconds_left }}s)".into()),
            ..Default::default()
        };
        let t = Templates::new("c", Style::Plain, &overrides).unwrap();
        let text = t.body(&code_for("sales", None)).unwrap();
        assert!(text.starts_with("AB<C&D12 for sales (1"), "{text}");
    }

    #[test]
    fn the_email_subject_says_which_instance_and_when_the_code_expires() {
        let t = Templates::new("e", Style::Plain, &TemplateOverrides::default()).unwrap();
        let subject = t.subject(&code_for("sales-line", None)).unwrap();
        assert!(
            subject.starts_with("relinkd: code for sales-line (expires "),
            "{subject}"
        );
        assert!(subject.ends_with(" UTC)"), "{subject}");
    }
}
