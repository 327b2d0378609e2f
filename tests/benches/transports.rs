//! Delivery rate per transport: Herald delivering N events through one port of each
//! transport (REST API to the comparison's lean hyper receiver, NATS JetStream to a real stream, RabbitMQ
//! to a real exchange and queue with publisher confirms), next to
//! the raw client of the same transport at the same concurrency with nothing stored (the
//! limit), interleaved round by round in one run.
//!
//! `cargo bench -p herald-tests --bench transports` (full: 5 rounds of 10,000 events);
//! `HERALD_BENCH_QUICK=1` for 1 round of 2,000. Brokers that do not answer are reported
//! as skipped (or fail the run under `HERALD_REQUIRE_BROKERS=1`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald::transport::amqp::AmqpConfig;
use herald::transport::api::{ApiConfig, Method};
use herald::transport::nats::NatsConfig;
use herald::{DeliveryStatus, ExternalEvent, Herald, PortConfig, RetryPolicy};
use herald_core::Jitter;
use herald_tests::brokers;
use herald_tests::rabbitmq::{self, Routed};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Confirmation};

// The comparison's receiver: answers 204 at once and keeps only counters (the tests'
// receiver records every request, which a benchmark would measure instead).
#[path = "compare/sink.rs"]
#[allow(dead_code)]
mod sink;

/// Concurrent senders, and the port's (and the raw client's) attempts in flight.
const CONCURRENCY: usize = 64;
const BODY: usize = 256;

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One transport: how to build a Herald port to it and how to publish one event raw.
trait Bench: Send + Sync {
    fn name(&self) -> &'static str;
    fn port(&self) -> PortConfig;
    /// Publishes one event with the raw client and waits for its confirmation.
    fn raw<'a>(&'a self, event: &'a ExternalEvent) -> BoxFut<'a, Result<(), String>>;
}

/// The sink lives in `main`; this holds its base URL.
struct Rest {
    base: String,
    client: reqwest::Client,
}

impl Bench for Rest {
    fn name(&self) -> &'static str {
        "REST API (hyper receiver)"
    }
    fn port(&self) -> PortConfig {
        let config = ApiConfig::builder(&format!("{}/api/{{type}}/{{id}}", self.base))
            .method(Method::Put)
            .allow_private_network(true)
            .build()
            .expect("api config");
        PortConfig::api("bench", config).expect("port")
    }
    fn raw<'a>(&'a self, event: &'a ExternalEvent) -> BoxFut<'a, Result<(), String>> {
        Box::pin(async move {
            let url = format!("{}/api/{}/{}", self.base, event.event_type(), event.id());
            let response = self
                .client
                .put(url)
                .header("idempotency-key", event.id().as_str())
                .header("content-type", event.content_type())
                .body(event.payload().to_vec())
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if response.status().is_success() {
                Ok(())
            } else {
                Err(format!("status {}", response.status()))
            }
        })
    }
}

struct Nats {
    js: async_nats::jetstream::Context,
    stream: String,
}

impl Nats {
    async fn start() -> Nats {
        let client = async_nats::connect(brokers::NATS).await.expect("connect to NATS");
        let js = async_nats::jetstream::new(client);
        let stream = brokers::unique("herald_bench").replace('-', "_");
        js.create_stream(async_nats::jetstream::stream::Config {
            name: stream.clone(),
            subjects: vec![format!("{stream}.>")],
            ..Default::default()
        })
        .await
        .expect("create the bench stream");
        Nats { js, stream }
    }
}

impl Bench for Nats {
    fn name(&self) -> &'static str {
        "NATS JetStream (file stream)"
    }
    fn port(&self) -> PortConfig {
        let config = NatsConfig::builder(&format!("nats://{}", brokers::NATS))
            .subject(&format!("{}.{{type}}", self.stream))
            .build()
            .expect("nats config");
        PortConfig::nats("bench", config).expect("port")
    }
    fn raw<'a>(&'a self, event: &'a ExternalEvent) -> BoxFut<'a, Result<(), String>> {
        Box::pin(async move {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", event.id().as_str());
            headers.insert("Content-Type", event.content_type());
            let ack = self
                .js
                .publish_with_headers(
                    format!("{}.{}", self.stream, event.event_type()),
                    headers,
                    event.payload().to_vec().into(),
                )
                .await
                .map_err(|e| e.to_string())?;
            ack.await.map(|_| ()).map_err(|e| e.to_string())
        })
    }
}

/// The raw side publishes on one confirm-mode channel shared by all tasks (lapin matches
/// confirms to publishes by delivery tag); Herald keeps a channel per attempt in flight.
struct Amqp {
    routed: Routed,
    channel: lapin::Channel,
    _connection: lapin::Connection,
}

impl Amqp {
    async fn start() -> Amqp {
        let routed = Routed::declare("herald-bench", Default::default()).await;
        let connection = rabbitmq::connect().await;
        let channel = connection.create_channel().await.expect("channel");
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirm mode");
        Amqp {
            routed,
            channel,
            _connection: connection,
        }
    }
}

impl Bench for Amqp {
    fn name(&self) -> &'static str {
        "RabbitMQ (confirms, mandatory, persistent)"
    }
    fn port(&self) -> PortConfig {
        let config = AmqpConfig::builder(&rabbitmq::url())
            .exchange(self.routed.exchange.as_str())
            .routing_key("{type}")
            .build()
            .expect("amqp config");
        PortConfig::amqp("bench", config).expect("port")
    }
    fn raw<'a>(&'a self, event: &'a ExternalEvent) -> BoxFut<'a, Result<(), String>> {
        Box::pin(async move {
            let properties = BasicProperties::default()
                .with_message_id(event.id().as_str().into())
                .with_content_type(event.content_type().into())
                .with_delivery_mode(2);
            let confirmation = self
                .channel
                .basic_publish(
                    self.routed.exchange.as_str().into(),
                    event.event_type().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        immediate: false,
                    },
                    event.payload(),
                    properties,
                )
                .await
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())?;
            match confirmation {
                Confirmation::Ack(None) => Ok(()),
                other => Err(format!("not confirmed: {other:?}")),
            }
        })
    }
}

fn event(tag: &str, i: usize) -> ExternalEvent {
    let mut payload = format!(r#"{{"i":{i},"pad":""#).into_bytes();
    payload.resize(BODY - 2, b'x');
    payload.extend_from_slice(b"\"}");
    ExternalEvent::builder("bench.event")
        .id(format!("{tag}-{i}"))
        .payload(payload)
        .occurred_at(herald_tests::fixtures::T0)
        .build()
        .expect("event")
}

/// Events per second through Herald: `n` events from `CONCURRENCY` senders, until every
/// delivery is final (all must be delivered).
async fn herald_rate(bench: &dyn Bench, tag: &str, n: usize) -> Result<f64, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let policy = RetryPolicy::fixed(vec![Duration::from_millis(100)])
        .jitter(Jitter::None)
        .max_attempts(5)
        .attempt_timeout(Duration::from_secs(5));
    let herald = Herald::builder()
        .store_path(dir.path().join("bench.redb"))
        .port(bench.port().policy(policy).max_in_flight(CONCURRENCY as u32))
        .start_tokio()
        .await
        .map_err(|e| e.to_string())?;
    let port = herald.port("bench").ok_or("no port")?;
    let port_for_senders = port.clone();
    let events: Vec<ExternalEvent> = (0..n).map(|i| event(tag, i)).collect();
    let started = Instant::now();
    in_parallel(&events, move |e| {
        let port = port_for_senders.clone();
        async move { port.send(e).await.map(drop).map_err(|e| e.to_string()) }
    })
    .await?;
    for e in &events {
        let done = port.wait_for_terminal(e.id()).await.map_err(|e| e.to_string())?;
        if done.status != DeliveryStatus::Delivered {
            return Err(format!("{} ended {:?}: {:?}", e.id(), done.status, done.last_failure));
        }
    }
    let took = started.elapsed();
    herald.shutdown(Duration::from_secs(5)).await;
    Ok(n as f64 / took.as_secs_f64())
}

/// Events per second with the raw client: `CONCURRENCY` tasks publishing their share.
async fn raw_rate(bench: Arc<dyn Bench>, tag: &str, n: usize) -> Result<f64, String> {
    let events: Vec<ExternalEvent> = (0..n).map(|i| event(tag, i)).collect();
    let started = Instant::now();
    in_parallel(&events, move |e| {
        let bench = bench.clone();
        async move { bench.raw(&e).await }
    })
    .await?;
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// Runs `f` on every event from `CONCURRENCY` tasks, each taking its share in order;
/// the first error ends the run.
async fn in_parallel<F, Fut>(events: &[ExternalEvent], f: F) -> Result<(), String>
where
    F: Fn(ExternalEvent) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let mut tasks = tokio::task::JoinSet::new();
    for share in events.chunks(events.len().div_ceil(CONCURRENCY).max(1)) {
        let (f, share) = (f.clone(), share.to_vec());
        tasks.spawn(async move {
            for e in share {
                f(e).await?;
            }
            Ok::<_, String>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.map_err(|e| e.to_string())??;
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::var("HERALD_BENCH_QUICK").is_ok_and(|v| v == "1");
    let (rounds, n) = if quick { (1, 2_000) } else { (5, 10_000) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let sink = sink::Sink::start().await;
        let mut benches: Vec<Arc<dyn Bench>> = vec![Arc::new(Rest {
            base: sink.url().trim_end_matches("/hook").to_owned(),
            client: reqwest::Client::new(),
        })];
        if brokers::require("NATS", brokers::NATS).is_some() {
            benches.push(Arc::new(Nats::start().await));
        }
        if brokers::require("RabbitMQ", brokers::RABBITMQ).is_some() {
            benches.push(Arc::new(Amqp::start().await));
        }
        println!(
            "delivery rate per transport: {} round(s) × {n} events, {BODY} B bodies, {CONCURRENCY} senders and attempts in flight, {} cores",
            rounds,
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        let mut results: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); benches.len()];
        for round in 0..rounds {
            for (b, bench) in benches.iter().enumerate() {
                let tag = format!("r{round}-{b}");
                let raw = raw_rate(bench.clone(), &format!("{tag}-raw"), n).await;
                let herald = herald_rate(bench.as_ref(), &format!("{tag}-herald"), n).await;
                match (raw, herald) {
                    (Ok(raw), Ok(herald)) => {
                        results[b].0.push(herald);
                        results[b].1.push(raw);
                    }
                    (raw, herald) => panic!("{} round {round}: raw {raw:?}, herald {herald:?}", bench.name()),
                }
            }
        }
        println!("| transport | Herald events/s | raw client events/s | Herald / raw |");
        println!("|---|---:|---:|---:|");
        for (bench, (herald, raw)) in benches.iter().zip(results) {
            let (h, r) = (median(herald), median(raw));
            println!("| {} | {h:.0} | {r:.0} | {:.2} |", bench.name(), h / r);
        }
    });
}
