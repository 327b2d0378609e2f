//! The drivers and transports the conformance suite is instantiated with. A new transport
//! adds a [`TransportKind`] here and one test file with one `conformance_suite!` line.

use herald::core::BoxFuture;
use herald::transport::amqp::AmqpConfig;
use herald::transport::api::{ApiConfig, Method};
use herald::transport::nats::NatsConfig;
use herald::transport::webhook::WebhookConfig;
use herald::{Herald, HeraldBuilder, PortConfig, StartError};

use crate::conformance::{DriverKind, TransportKind};
use crate::receiver::{Answer, Receiver, Script, Verdict};
use crate::{amqp_front, brokers, rabbitmq};

/// The Standard Webhooks test-vector secret, used by every webhook test.
pub const TEST_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// The bearer token of every API test port; the receiver requires it.
pub const TEST_BEARER_TOKEN: &str = "herald-test-token";

/// The tokio driver.
#[derive(Debug, Clone, Copy)]
pub struct Tokio;

impl DriverKind for Tokio {
    fn name(&self) -> &'static str {
        "tokio"
    }
    fn start(&self, builder: HeraldBuilder) -> BoxFuture<'static, Result<Herald, StartError>> {
        Box::pin(builder.start_tokio())
    }
}

impl Tokio {
    /// Runs a test body on a fresh two-worker tokio runtime.
    pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime")
            .block_on(f)
    }

    /// Spawns a task on the current tokio runtime.
    pub fn spawn(f: BoxFuture<'static, ()>) {
        drop(tokio::spawn(f));
    }
}

/// The smol driver: no tokio runtime is created by the test.
#[derive(Debug, Clone, Copy)]
pub struct Smol;

impl DriverKind for Smol {
    fn name(&self) -> &'static str {
        "smol"
    }
    fn start(&self, builder: HeraldBuilder) -> BoxFuture<'static, Result<Herald, StartError>> {
        Box::pin(builder.start_smol())
    }
}

impl Smol {
    /// Runs a test body in `smol::block_on`.
    pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
        smol::block_on(f)
    }

    /// Spawns a task on smol's global executor.
    pub fn spawn(f: BoxFuture<'static, ()>) {
        smol::spawn(f).detach();
    }
}

/// Webhooks, signed with [`TEST_SECRET`]; the receiver verifies every signature.
#[derive(Debug, Clone, Copy)]
pub struct Webhook;

impl TransportKind for Webhook {
    fn name(&self) -> &'static str {
        "webhook"
    }
    fn port(&self, name: &str, receiver: &Receiver) -> PortConfig {
        let config = WebhookConfig::builder(&receiver.url())
            .secret(TEST_SECRET)
            .allow_private_network(true)
            .build()
            .expect("valid webhook config");
        receiver.verify_with(TEST_SECRET);
        PortConfig::webhook(name, config).expect("valid port")
    }
}

/// REST API ports: `PUT /api/{type}/{id}` with a bearer token (the receiver requires it),
/// the raw payload as the body, and the event id in `Idempotency-Key` (the receiver files
/// requests under it).
#[derive(Debug, Clone, Copy)]
pub struct Api;

impl TransportKind for Api {
    fn name(&self) -> &'static str {
        "api"
    }
    fn port(&self, name: &str, receiver: &Receiver) -> PortConfig {
        let config = ApiConfig::builder(&format!("http://127.0.0.1:{}/api/{{type}}/{{id}}", receiver.port()))
            .method(Method::Put)
            .bearer_token(TEST_BEARER_TOKEN)
            .allow_private_network(true)
            .build()
            .expect("valid api config");
        receiver.require_header("authorization", &format!("Bearer {TEST_BEARER_TOKEN}"));
        PortConfig::api(name, config).expect("valid port")
    }
}

/// NATS JetStream ports publishing to `<receiver subject prefix>.{type}` through the
/// receiver's proxy; the receiver is a scripted JetStream ([`crate::nats_front`]).
#[derive(Debug, Clone, Copy)]
pub struct Nats;

impl TransportKind for Nats {
    fn name(&self) -> &'static str {
        "nats"
    }
    fn port(&self, name: &str, receiver: &Receiver) -> PortConfig {
        let config = NatsConfig::builder(&format!("nats://127.0.0.1:{}", receiver.port()))
            .subject(&format!("{}.{{type}}", receiver.destination()))
            .build()
            .expect("valid nats config");
        PortConfig::nats(name, config).expect("valid port")
    }
    fn receiver(&self, port: u16, script: Script) -> Receiver {
        crate::nats_front::start(port, script)
    }
    fn available(&self) -> bool {
        crate::brokers::require("NATS", crate::brokers::NATS).is_some()
    }
    fn outcome_code(&self, status: u16) -> String {
        match status {
            200..=299 => "acknowledged".to_owned(),
            other => format!("jetstream_{other}"),
        }
    }
    fn outcome_message(&self, status: u16) -> String {
        format!("refused by the destination: {}", self.outcome_code(status))
    }
}

/// RabbitMQ ports publishing through an AMQP front (a frame-aware proxy to the real broker
/// that records each message and answers its confirm by the script: a 5xx becomes a nack,
/// a 4xx a returned unroutable message, a hang no confirm) to the receiver's exchange, with
/// the event type as routing key.
#[derive(Debug, Clone, Copy)]
pub struct Amqp;

impl TransportKind for Amqp {
    fn name(&self) -> &'static str {
        "amqp"
    }
    fn port(&self, name: &str, receiver: &Receiver) -> PortConfig {
        let config = AmqpConfig::builder(&rabbitmq::url_via(receiver.port()))
            .exchange(receiver.destination())
            .routing_key("{type}")
            .build()
            .expect("valid amqp config");
        PortConfig::amqp(name, config).expect("valid port")
    }
    fn receiver(&self, port: u16, script: Script) -> Receiver {
        amqp_front::receiver(port, script)
    }
    fn outcome_code(&self, status: u16) -> String {
        match Answer::Status(status).verdict().1 {
            Verdict::Accept => "acknowledged",
            Verdict::Retryable(_) => "nack",
            Verdict::Permanent(_) => "unroutable",
            Verdict::Never => "timeout",
        }
        .to_owned()
    }
    fn outcome_message(&self, status: u16) -> String {
        format!("refused by the destination: {}", self.outcome_code(status))
    }
    fn available(&self) -> bool {
        brokers::require("RabbitMQ", brokers::RABBITMQ).is_some()
    }
}
