//! A Herald instance: one driver loop for all its ports, started on a runtime.

mod attempt;
pub(crate) mod command;
mod event_loop;
mod round;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use herald_core::{Classifier, Engine, EngineConfig, RetryPolicy};
use herald_store::{RedbStore, Store};

use crate::clock::Clock;
use crate::error::{ConfigError, StartError};
use crate::port::Port;
use crate::runtime::Runtime;
use crate::transport::Transport;
use command::Command;
pub use command::{StatusChange, StatusHook};
use event_loop::{Driver, PortState};

/// What every handle shares.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) commands: async_channel::Sender<Command>,
    pub(crate) ports: Vec<PortInfo>,
}

/// What a port handle needs to know without asking the loop.
pub(crate) struct PortInfo {
    pub(crate) name: Arc<str>,
    pub(crate) max_attempts: u32,
}

/// One port's configuration: a name, a transport and the engine's settings. Cloning
/// shares the transport (and its connection pool).
#[must_use]
#[derive(Clone)]
pub struct PortConfig {
    name: String,
    transport: Arc<dyn Transport>,
    engine: EngineConfig,
    on_status: Option<StatusHook>,
}

impl std::fmt::Debug for PortConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortConfig")
            .field("name", &self.name)
            .field("transport", &self.transport.kind())
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

impl PortConfig {
    /// A port named `name` (ASCII letters, digits, `-`, `_`; at most 64) delivering
    /// through `transport`, with the default engine settings.
    pub fn new(name: impl Into<String>, transport: impl Transport) -> Self {
        PortConfig {
            name: name.into(),
            transport: Arc::new(transport),
            engine: EngineConfig::default(),
            on_status: None,
        }
    }

    /// A webhook port.
    #[cfg(feature = "webhook")]
    pub fn webhook(
        name: impl Into<String>,
        config: crate::transport::webhook::WebhookConfig,
    ) -> Result<Self, ConfigError> {
        Ok(Self::new(
            name,
            crate::transport::webhook::WebhookTransport::new(config)?,
        ))
    }

    /// A REST API port. Its classifier is the configuration's
    /// ([`ApiConfig::classifier`](crate::transport::api::ApiConfig::classifier): configured
    /// success codes count as delivered); a later [`Self::classifier`] call replaces it, so
    /// start that one from the configuration's.
    #[cfg(feature = "api")]
    pub fn api(name: impl Into<String>, config: crate::transport::api::ApiConfig) -> Result<Self, ConfigError> {
        let classifier = config.classifier();
        Ok(Self::new(name, crate::transport::api::ApiTransport::new(config)?).classifier(classifier))
    }

    /// A NATS JetStream port.
    #[cfg(feature = "nats")]
    pub fn nats(name: impl Into<String>, config: crate::transport::nats::NatsConfig) -> Result<Self, ConfigError> {
        Ok(Self::new(name, crate::transport::nats::NatsTransport::new(config)?))
    }

    /// A RabbitMQ port: publishes to the configured exchange with publisher confirms. No
    /// connection is opened until the first attempt.
    #[cfg(feature = "amqp")]
    pub fn amqp(name: impl Into<String>, config: crate::transport::amqp::AmqpConfig) -> Result<Self, ConfigError> {
        Ok(Self::new(name, crate::transport::amqp::AmqpTransport::new(config)?))
    }

    /// The retry policy (validated when Herald starts).
    pub fn policy(mut self, policy: RetryPolicy) -> Self {
        self.engine.policy = policy;
        self
    }
    /// Most attempts in flight at once on this port (default 64).
    pub fn max_in_flight(mut self, n: u32) -> Self {
        self.engine.max_in_flight = n;
        self
    }
    /// Largest payload `send` accepts, in bytes (default 1 MiB).
    pub fn payload_limit(mut self, bytes: usize) -> Self {
        self.engine.payload_limit = bytes;
        self
    }
    /// Jitter seed (default 0): the same seed gives the same retry schedule.
    pub fn seed(mut self, seed: u64) -> Self {
        self.engine.seed = seed;
        self
    }
    /// Per-status overrides of the outcome classification.
    pub fn classifier(mut self, classifier: Classifier) -> Self {
        self.engine.classifier = classifier;
        self
    }
    /// Observes every durable status change of this port.
    pub fn on_status_change(mut self, hook: impl Fn(&StatusChange) + Send + Sync + 'static) -> Self {
        self.on_status = Some(Arc::new(hook));
        self
    }

    /// The port's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let field = format!("ports.{}", self.name);
        if self.name.is_empty() || self.name.len() > 64 {
            return Err(ConfigError::invalid(
                "ports[].name",
                "a port name is 1 to 64 characters",
            ));
        }
        if let Some(c) = self
            .name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(ConfigError::invalid(
                format!("{field}.name"),
                format!("{c:?} is not allowed; use ASCII letters, digits, '-' and '_'"),
            ));
        }
        self.engine
            .validate()
            .map_err(|source| ConfigError::Engine { field, source })
    }
}

enum StoreChoice {
    Path(PathBuf),
    Open(Arc<dyn Store>),
}

/// Configures and starts a [`Herald`].
#[must_use]
pub struct HeraldBuilder {
    store: Option<StoreChoice>,
    ports: Vec<PortConfig>,
}

impl std::fmt::Debug for HeraldBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeraldBuilder")
            .field("ports", &self.ports)
            .finish_non_exhaustive()
    }
}

impl HeraldBuilder {
    /// Keeps deliveries in the redb file at `path` (created if missing).
    pub fn store_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.store = Some(StoreChoice::Path(path.into()));
        self
    }

    /// Keeps deliveries in an already opened store.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(StoreChoice::Open(store));
        self
    }

    /// Adds a port.
    pub fn port(mut self, port: PortConfig) -> Self {
        self.ports.push(port);
        self
    }

    /// Starts on the current tokio runtime.
    #[cfg(feature = "tokio")]
    pub async fn start_tokio(self) -> Result<Herald, StartError> {
        let runtime = crate::runtime::TokioRuntime::current().ok_or(StartError::NoRuntime("tokio"))?;
        self.start_on(runtime).await
    }

    /// Starts on smol's global executor (inside `smol::block_on` or any executor): no tokio
    /// runtime is needed from the caller.
    #[cfg(feature = "smol")]
    pub async fn start_smol(self) -> Result<Herald, StartError> {
        self.start_on(crate::runtime::SmolRuntime).await
    }

    /// Starts on the given runtime: opens the store, resumes every unfinished delivery,
    /// and spawns the driver loop.
    pub async fn start_on<R: Runtime>(self, runtime: R) -> Result<Herald, StartError> {
        let mut seen = std::collections::HashSet::new();
        for p in &self.ports {
            p.validate()?;
            if !seen.insert(p.name.clone()) {
                return Err(ConfigError::DuplicatePort(p.name.clone()).into());
            }
        }
        let store: Arc<dyn Store> = match self.store {
            Some(StoreChoice::Open(s)) => s,
            Some(StoreChoice::Path(path)) => Arc::new(runtime.unblock(move || RedbStore::open(&path)).await?),
            None => return Err(ConfigError::invalid("store.path", "no store configured").into()),
        };
        let clock = Clock::new(runtime.clone());
        let now = clock.now();
        let mut states = Vec::with_capacity(self.ports.len());
        let mut infos = Vec::with_capacity(self.ports.len());
        for p in self.ports {
            let name: Arc<str> = p.name.into();
            // The engine starts no more attempts than may run at once. (It used to start
            // twice as many, to commit the next starts while the current attempts ran;
            // but an attempt's deadline runs from its recorded start, so one waiting for
            // a running slot lost that wait from its timeout, and could time out, or be
            // exhausted, without ever being sent: simulation seed 304.)
            let running = p.engine.max_in_flight;
            let engine_config = p.engine.clone();
            let (store2, name2, config) = (store.clone(), name.clone(), engine_config.clone());
            let engine = runtime
                .unblock(move || -> Result<Engine, StartError> {
                    let mut engine = Engine::new(config, now).map_err(|source| ConfigError::Engine {
                        field: format!("ports.{name2}"),
                        source,
                    })?;
                    store2
                        .for_each_unfinished(&name2, &mut |r| engine.restore_record(&r))
                        .map_err(|source| StartError::Restore {
                            port: name2.to_string(),
                            source,
                        })?;
                    engine.handle_timeout(now);
                    Ok(engine)
                })
                .await?;
            tracing::info!(port = %name, resumed = engine.tracked_count(), "port restored");
            infos.push(PortInfo {
                name: name.clone(),
                max_attempts: p.engine.policy.get_max_attempts(),
            });
            states.push(PortState::new(
                name,
                engine_config,
                engine,
                p.transport,
                running,
                p.on_status,
            ));
        }
        let (commands_tx, commands_rx) = async_channel::unbounded();
        let (finished_tx, finished_rx) = async_channel::unbounded();
        let driver = Driver {
            runtime: runtime.clone(),
            clock,
            store: store.clone(),
            names: states.iter().map(|p| p.name.clone()).collect(),
            ports: states,
            commands: commands_rx,
            finished_tx,
            finished_rx,
            cancel: async_channel::bounded(1),
            attempts_running: 0,
            stopping: false,
            shutdown_replies: Vec::new(),
        };
        runtime.spawn_driver(driver.run()).map_err(StartError::Thread)?;
        Ok(Herald {
            shared: Arc::new(Shared {
                store,
                commands: commands_tx,
                ports: infos,
            }),
        })
    }
}

/// A running Herald: a driver loop delivering for its ports. Cheap to clone; dropping
/// every handle stops the loop as a zero-grace shutdown would (nothing is lost).
#[derive(Clone)]
pub struct Herald {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Herald {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.shared.ports.iter().map(|p| &*p.name).collect();
        f.debug_struct("Herald").field("ports", &names).finish()
    }
}

impl Herald {
    /// Starts configuring a Herald.
    pub fn builder() -> HeraldBuilder {
        HeraldBuilder {
            store: None,
            ports: Vec::new(),
        }
    }

    /// The port named `name`.
    pub fn port(&self, name: &str) -> Option<Port> {
        let index = self.shared.ports.iter().position(|p| &*p.name == name)?;
        Some(Port::new(self.shared.clone(), index))
    }

    /// Every port, in configuration order.
    pub fn ports(&self) -> Vec<Port> {
        (0..self.shared.ports.len())
            .map(|i| Port::new(self.shared.clone(), i))
            .collect()
    }

    /// The store (for inspection tools).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// Stops taking sends (they get `ShuttingDown`), lets attempts in flight finish until
    /// `grace` has passed, records the ones still running as interrupted, and returns when
    /// nothing is in flight. Unfinished deliveries stay persisted; the next start resumes
    /// them.
    pub async fn shutdown(&self, grace: Duration) {
        let (tx, rx) = command::reply();
        if self
            .shared
            .commands
            .send(Command::Shutdown { grace, reply: tx })
            .await
            .is_ok()
        {
            let _ = rx.recv().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use herald_core::{AttemptReport, BoxFuture, Observation};

    use super::*;
    use crate::transport::AttemptRequest;

    struct Ack;

    impl Transport for Ack {
        fn kind(&self) -> &'static str {
            "ack"
        }
        fn attempt<'a>(&'a self, _: AttemptRequest<'a>) -> BoxFuture<'a, AttemptReport> {
            Box::pin(async { AttemptReport::new(Observation::Acknowledged { duplicate: false }) })
        }
    }

    fn start_error(builder: HeraldBuilder) -> StartError {
        let runtime = ::tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(builder.start_tokio()).expect_err("start must fail")
    }

    #[test]
    fn an_invalid_port_name_is_refused_with_its_field() {
        let e = start_error(
            Herald::builder()
                .store_path("/nonexistent")
                .port(PortConfig::new("or ders", Ack)),
        );
        assert_eq!(
            e.to_string(),
            "ports.or ders.name: ' ' is not allowed; use ASCII letters, digits, '-' and '_'"
        );
    }

    #[test]
    fn invalid_engine_settings_name_the_port() {
        let e = start_error(
            Herald::builder()
                .store_path("/nonexistent")
                .port(PortConfig::new("orders", Ack).max_in_flight(0)),
        );
        assert_eq!(e.to_string(), "ports.orders: max_in_flight must be at least 1");
        let bad = RetryPolicy::default().max_attempts(0);
        let e = start_error(
            Herald::builder()
                .store_path("/nonexistent")
                .port(PortConfig::new("orders", Ack).policy(bad)),
        );
        assert_eq!(
            e.to_string(),
            "ports.orders: retry policy: max_attempts must be at least 1"
        );
    }

    #[test]
    fn two_ports_with_one_name_are_refused() {
        let e = start_error(
            Herald::builder()
                .store_path("/nonexistent")
                .port(PortConfig::new("a", Ack))
                .port(PortConfig::new("a", Ack)),
        );
        assert!(
            matches!(e, StartError::Config(ConfigError::DuplicatePort(ref n)) if n == "a"),
            "{e}"
        );
    }

    #[test]
    fn a_missing_store_is_a_configuration_error() {
        let e = start_error(Herald::builder().port(PortConfig::new("a", Ack)));
        assert_eq!(e.to_string(), "store.path: no store configured");
    }

    #[test]
    fn starting_outside_tokio_says_so() {
        let e = futures_lite::future::block_on(Herald::builder().start_tokio()).unwrap_err();
        assert!(matches!(e, StartError::NoRuntime("tokio")), "{e}");
    }

    #[test]
    fn status_changes_are_published_once_durable() {
        let dir = tempfile::tempdir().unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let port = PortConfig::new("p", Ack).on_status_change(move |c| {
            log.lock().unwrap().push((c.port.to_string(), c.result.status));
        });
        let runtime = ::tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let herald = Herald::builder()
                .store_path(dir.path().join("h.redb"))
                .port(port)
                .start_tokio()
                .await
                .unwrap();
            let p = herald.port("p").unwrap();
            let e = herald_core::ExternalEvent::builder("t")
                .id("e1")
                .occurred_at(crate::now())
                .build()
                .unwrap();
            p.send(e.clone()).await.unwrap();
            let done = p.wait_for_terminal(e.id()).await.unwrap();
            assert_eq!(done.status, herald_core::DeliveryStatus::Delivered);
            herald.shutdown(Duration::from_secs(1)).await;
        });
        let seen = seen.lock().unwrap().clone();
        use herald_core::DeliveryStatus::{Delivered, Pending};
        assert_eq!(seen, [("p".to_owned(), Pending), ("p".to_owned(), Delivered)]);
    }

    #[test]
    fn the_loop_ends_with_its_tokio_runtime_and_later_sends_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = ::tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let herald = runtime.block_on(async {
            Herald::builder()
                .store_path(dir.path().join("h.redb"))
                .port(PortConfig::new("p", Ack))
                .start_tokio()
                .await
                .unwrap()
        });
        let port = herald.port("p").unwrap();

        drop(runtime);
        let event = herald_core::ExternalEvent::builder("t")
            .id("after-the-runtime")
            .occurred_at(crate::now())
            .build()
            .unwrap();
        let sent = futures_lite::future::block_on(port.send(event));

        // Accepted, it would wait for attempts that can no longer run.
        assert!(matches!(sent, Err(herald_core::SendError::Closed)), "{sent:?}");
    }
}
