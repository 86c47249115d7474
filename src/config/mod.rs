//! TEMPORARY stub: replaced by the config module under development.
use secrecy::{SecretBox, SecretString};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
}
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub digest: String,
    pub daemon: DaemonConfig,
    pub channels: Vec<ChannelConfig>,
    pub instances: Vec<InstanceConfig>,
    pub warnings: Vec<String>,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat { Text, Json }
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub listen: SocketAddr,
    pub state_dir: PathBuf,
    pub log_format: LogFormat,
    pub admin_token: Option<SecretString>,
    pub max_concurrent_requests: usize,
}
#[derive(Debug, Clone)]
pub struct ChannelConfig { pub name: String, pub attempt_timeout: Duration, pub kind: ChannelKind }
#[derive(Debug, Clone)]
pub enum ChannelKind { Webhook { url: String, secret: Option<WebhookSecret> }, Console }
#[derive(Clone)]
pub struct WebhookSecret(std::sync::Arc<SecretBox<Vec<u8>>>);
impl WebhookSecret {
    pub fn expose(&self) -> &[u8] { use secrecy::ExposeSecret; self.0.expose_secret() }
    pub fn new(b: Vec<u8>) -> Self { Self(std::sync::Arc::new(SecretBox::new(Box::new(b)))) }
}
impl std::fmt::Debug for WebhookSecret { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("[redacted]") } }
#[derive(Debug, Clone)]
pub struct InstanceConfig {
    pub id: u64, pub name: String, pub api_url: String,
    pub api_token: SecretString, pub phone: u64, pub channels: Vec<String>,
    pub settings: InstanceSettings,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSettings {
    pub poll_interval: Duration, pub linking_poll_interval: Duration, pub code_ttl: Duration,
    pub codes_per_episode: u32, pub cooldown: Duration, pub request_timeout: Duration,
    pub backoff_max: Duration,
}
pub fn load(path: &Path) -> Result<Config, ConfigError> { Err(ConfigError::Parse { path: path.into(), message: "stub".into() }) }
