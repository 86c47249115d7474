//! The fleet: one supervisor per configured instance, started, updated and
//! stopped as the config changes.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::policy::Policy;
use super::supervisor::{Command, InstanceSpec, Supervisor};
use crate::config::{Config, InstanceConfig, InstanceSettings};
use crate::delivery::{Dispatcher, InstanceRef};
use crate::greenapi::Client;
use crate::metrics::Metrics;

/// Spread of first polls per instance: a fleet of 3,000 starts over a minute
/// (capped at the poll interval), a handful at once.
const START_SPREAD_PER_INSTANCE: Duration = Duration::from_millis(20);

struct Running {
    config: InstanceConfig,
    commands: mpsc::Sender<Command>,
    task: JoinHandle<()>,
}

pub struct Fleet {
    client: Client,
    dispatcher: Dispatcher,
    metrics: Metrics,
    running: HashMap<u64, Running>,
}

impl Fleet {
    pub fn new(client: Client, dispatcher: Dispatcher, metrics: Metrics) -> Self {
        Self {
            client,
            dispatcher,
            metrics,
            running: HashMap::new(),
        }
    }

    /// Starts supervisors for every instance of `config`.
    pub fn start(&mut self, config: &Config) {
        let count = config.instances.len().max(1);
        let now = Instant::now();
        for (i, instance) in config.instances.iter().enumerate() {
            let spread = START_SPREAD_PER_INSTANCE
                .saturating_mul(count as u32)
                .min(instance.settings.poll_interval);
            let first_poll = now + spread.mul_f64(i as f64 / count as f64);
            self.spawn(instance.clone(), first_poll);
        }
    }

    fn spawn(&mut self, config: InstanceConfig, first_poll: Instant) {
        let spec = self.spec(&config);
        let policy = Policy::new(config.settings.clone(), config.id, first_poll);
        let metrics = self.metrics.instance(config.id, &config.name);
        let supervisor = Supervisor::new(spec, policy, self.dispatcher.clone(), metrics);
        let (commands, receiver) = mpsc::channel(8);
        let task = tokio::spawn(supervisor.run(receiver));
        self.running.insert(
            config.id,
            Running {
                config,
                commands,
                task,
            },
        );
    }

    fn spec(&self, config: &InstanceConfig) -> InstanceSpec {
        InstanceSpec {
            instance: InstanceRef {
                id: config.id,
                name: config.name.clone(),
            },
            phone: config.phone,
            channels: config.channels.clone(),
            api: self.client.instance(
                &config.api_url,
                config.id,
                config.api_token.clone(),
                config.settings.request_timeout,
            ),
        }
    }

    pub fn len(&self) -> usize {
        self.running.len()
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// Asks an instance's supervisor to end its pause or poll now.
    pub async fn relink(&self, id: u64) -> bool {
        match self.running.get(&id) {
            Some(running) => running.commands.send(Command::Relink).await.is_ok(),
            None => false,
        }
    }

    /// Settings of a running instance (for tests and status).
    pub fn settings(&self, id: u64) -> Option<&InstanceSettings> {
        self.running.get(&id).map(|r| &r.config.settings)
    }

    /// Stops every supervisor and waits for them (they stop at their next
    /// await point; in-flight vendor calls are abandoned).
    pub async fn shutdown(&mut self) {
        let running: Vec<_> = self.running.drain().map(|(_, r)| r).collect();
        for r in &running {
            r.task.abort();
        }
        for r in running {
            let _ = r.task.await;
        }
    }
}
