//! The RabbitMQ transport against the real broker, without the conformance front: what a
//! consumer receives, and what the broker's own refusals and outages become. Every test
//! skips (with a printed reason) when RabbitMQ is unreachable, unless
//! `HERALD_REQUIRE_BROKERS=1`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use herald::transport::amqp::AmqpConfig;
use herald::{DeliveryStatus, EventId, ExternalEvent, Herald, HeraldBuilder, IntegrationResult, Port, PortConfig};
use herald_tests::brokers;
use herald_tests::combos::{Smol, Tokio};
use herald_tests::conformance::{event, fast_policy, sleep, with_deadline};
use herald_tests::rabbitmq::{self, Routed};
use lapin::types::{AMQPValue, FieldTable, LongString};

/// A RabbitMQ port through 127.0.0.1:`via` publishing to `exchange`, routed by event type.
fn port(via: u16, exchange: &str) -> PortConfig {
    let config = AmqpConfig::builder(&rabbitmq::url_via(via))
        .exchange(exchange)
        .routing_key("events.{type}")
        .build()
        .expect("valid amqp config");
    PortConfig::amqp("rabbit", config)
        .expect("valid port")
        .policy(fast_policy())
}

/// Runs `test` on tokio with the broker's address, or skips it (see [`brokers::require`]).
fn with_rabbitmq<F: std::future::Future<Output = ()>>(test: impl FnOnce(SocketAddr) -> F) {
    if let Some(broker) = brokers::require("RabbitMQ", brokers::RABBITMQ) {
        Tokio::block_on(test(broker));
    }
}

async fn start(builder: HeraldBuilder, smol: bool) -> (Herald, Port, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let builder = builder.store_path(dir.path().join("herald.redb"));
    let herald = if smol {
        builder.start_smol().await
    } else {
        builder.start_tokio().await
    }
    .expect("start");
    let port = herald.port("rabbit").expect("port");
    (herald, port, dir)
}

async fn settle(port: &Port, id: &EventId) -> IntegrationResult {
    with_deadline(Duration::from_secs(20), port.wait_for_terminal(id))
        .await
        .expect("terminal within 20 s")
        .expect("wait")
}

/// The event, a message of its own, arrives in the bound queue as it was sent.
async fn a_published_event_arrives_as_sent(smol: bool) {
    let routed = Routed::declare("herald-broker-arrives", FieldTable::default()).await;
    let (herald, port, _dir) = start(Herald::builder().port(port(rabbitmq::port(), &routed.exchange)), smol).await;
    let e = ExternalEvent::builder("order.created")
        .id("evt-arrives")
        .content_type("application/vnd.acme+json")
        .payload(br#"{"order":42,"note":"h\xc3\xa9llo"}"#.to_vec())
        .occurred_at(herald::Timestamp::from_secs(1_700_000_000))
        .metadata("tenant", "acme")
        .metadata("trace-id", "t-1")
        .build()
        .expect("event");

    port.send(e.clone()).await.expect("accepted");
    let done = settle(&port, e.id()).await;

    assert_eq!(done.status, DeliveryStatus::Delivered);
    let message = routed
        .next(Duration::from_secs(5))
        .await
        .expect("a message in the queue");
    let props = &message.delivery.properties;
    assert_eq!(message.delivery.data, e.payload(), "exact payload");
    assert_eq!(message.delivery.routing_key.as_str(), "events.order.created");
    assert_eq!(props.message_id().as_ref().map(|s| s.as_str()), Some("evt-arrives"));
    assert_eq!(
        props.content_type().as_ref().map(|s| s.as_str()),
        Some("application/vnd.acme+json")
    );
    assert_eq!(props.kind().as_ref().map(|s| s.as_str()), Some("order.created"));
    assert_eq!(*props.timestamp(), Some(1_700_000_000));
    assert_eq!(*props.delivery_mode(), Some(2), "persistent");
    let headers = props.headers().clone().expect("headers");
    assert_eq!(
        headers.inner().get("tenant"),
        Some(&AMQPValue::LongString(LongString::from("acme")))
    );
    assert_eq!(
        headers.inner().get("trace-id"),
        Some(&AMQPValue::LongString(LongString::from("t-1")))
    );
    assert!(
        routed.next(Duration::from_millis(200)).await.is_none(),
        "exactly one message"
    );
    herald.shutdown(Duration::from_secs(1)).await;
}

#[test]
fn a_published_event_arrives_with_its_id_headers_content_type_persistence_and_exact_payload_tokio() {
    with_rabbitmq(|_| a_published_event_arrives_as_sent(false));
}

#[test]
fn a_published_event_arrives_with_its_id_headers_content_type_persistence_and_exact_payload_smol() {
    if brokers::require("RabbitMQ", brokers::RABBITMQ).is_some() {
        Smol::block_on(a_published_event_arrives_as_sent(true));
    }
}

#[test]
fn an_exchange_with_no_queue_bound_fails_permanently_after_one_attempt_as_unroutable() {
    with_rabbitmq(|_| async {
        // Declared and bound, then unbound: the exchange exists but routes nowhere.
        let routed = Routed::declare("herald-broker-unroutable", FieldTable::default()).await;
        let lonely = format!("{}-lonely", routed.exchange);
        routed
            .channel
            .exchange_declare(
                lonely.as_str().into(),
                lapin::ExchangeKind::Topic,
                lapin::options::ExchangeDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("declare an exchange without bindings");
        let (herald, port, _dir) = start(Herald::builder().port(port(rabbitmq::port(), &lonely)), false).await;
        let e = event("evt-unroutable");

        port.send(e.clone()).await.expect("accepted");
        let done = settle(&port, e.id()).await;

        routed
            .channel
            .exchange_delete(lonely.as_str().into(), Default::default())
            .await
            .expect("clean up");
        assert_eq!(done.status, DeliveryStatus::Failed);
        assert_eq!(done.attempts_made, 1, "one attempt only");
        let failure = done.last_failure.expect("failure");
        assert_eq!(failure.code, "unroutable");
        assert!(failure.message.contains(&lonely), "{}", failure.message);
        assert!(failure.message.contains("events.order.created"), "{}", failure.message);
        assert!(failure.message.contains("312 NO_ROUTE"), "{}", failure.message);
        herald.shutdown(Duration::from_secs(1)).await;
    });
}

#[test]
fn a_missing_exchange_fails_permanently_as_no_exchange() {
    with_rabbitmq(|_| async {
        let missing = brokers::unique("herald-broker-missing");
        let (herald, port, _dir) = start(Herald::builder().port(port(rabbitmq::port(), &missing)), false).await;
        let e = event("evt-no-exchange");

        port.send(e.clone()).await.expect("accepted");
        let done = settle(&port, e.id()).await;

        assert_eq!((done.status, done.attempts_made), (DeliveryStatus::Failed, 1));
        let failure = done.last_failure.expect("failure");
        assert_eq!(failure.code, "no_exchange");
        assert!(failure.message.contains("NOT_FOUND"), "{}", failure.message);
        herald.shutdown(Duration::from_secs(1)).await;
    });
}

#[test]
fn a_queue_that_rejects_publishes_is_nacked_and_retried_until_exhausted() {
    with_rabbitmq(|_| async {
        let mut full = FieldTable::default();
        full.insert("x-max-length".into(), AMQPValue::LongInt(0));
        full.insert("x-overflow".into(), AMQPValue::LongString("reject-publish".into()));
        let routed = Routed::declare("herald-broker-nack", full).await;
        let (herald, port, _dir) = start(
            Herald::builder().port(port(rabbitmq::port(), &routed.exchange).policy(fast_policy().max_attempts(3))),
            false,
        )
        .await;
        let e = event("evt-nack");

        port.send(e.clone()).await.expect("accepted");
        let done = settle(&port, e.id()).await;

        assert_eq!(done.status, DeliveryStatus::Exhausted);
        let history = port.history(e.id()).await.unwrap().expect("history");
        let codes: Vec<&str> = history.attempts.iter().map(|a| a.outcome.code.as_str()).collect();
        assert_eq!(codes, ["nack", "nack", "nack"]);
        herald.shutdown(Duration::from_secs(1)).await;
    });
}

#[test]
fn a_broker_cut_mid_run_is_retried_and_the_event_is_delivered_once_when_it_is_back() {
    with_rabbitmq(|broker| async move {
        let routed = Routed::declare("herald-broker-cut", FieldTable::default()).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let via = listener.local_addr().expect("addr").port();
        let proxy = tokio::spawn(brokers::forward(listener, broker));
        let policy = fast_policy().max_attempts(100);
        let (herald, port, _dir) = start(
            Herald::builder().port(port(via, &routed.exchange).policy(policy)),
            false,
        )
        .await;
        let before = event("evt-before-cut");
        port.send(before.clone()).await.expect("accepted");
        assert_eq!(settle(&port, before.id()).await.status, DeliveryStatus::Delivered);

        // The broker goes away: the proxy and every connection through it.
        proxy.abort();
        let _ = proxy.await;
        let during = event("evt-during-cut");
        port.send(during.clone()).await.expect("accepted");
        let retrying = until_retrying(&port, during.id()).await;
        let code = retrying.last_failure.expect("failure").code;
        assert!(
            ["connect_error", "connection_reset"].contains(&code.as_str()),
            "a network code, got {code}"
        );
        // Back on the same address.
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", via)).await.expect("rebind");
        let proxy = tokio::spawn(brokers::forward(listener, broker));
        let done = settle(&port, during.id()).await;

        assert_eq!(done.status, DeliveryStatus::Delivered);
        let ids: Vec<String> = [
            routed.next(Duration::from_secs(5)).await,
            routed.next(Duration::from_secs(5)).await,
            routed.next(Duration::from_millis(300)).await,
        ]
        .into_iter()
        .flatten()
        .map(|m| {
            m.delivery
                .properties
                .message_id()
                .clone()
                .map(String::from)
                .unwrap_or_default()
        })
        .collect();
        assert_eq!(ids, ["evt-before-cut", "evt-during-cut"], "each event exactly once");
        herald.shutdown(Duration::from_secs(1)).await;
        proxy.abort();
    });
}

async fn until_retrying(port: &Port, id: &EventId) -> IntegrationResult {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = port.status(id).await.unwrap().expect("known");
        if s.status == DeliveryStatus::Retrying {
            return s;
        }
        assert!(Instant::now() < deadline, "{id} never reported Retrying: {s:?}");
        sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn wrong_credentials_fail_permanently_as_access_refused() {
    with_rabbitmq(|_| async {
        let config = AmqpConfig::builder(&format!(
            "amqp://guest:wrong-password@127.0.0.1:{}/%2f",
            rabbitmq::port()
        ))
        .exchange("amq.topic")
        .build()
        .expect("valid amqp config");
        let rabbit = PortConfig::amqp("rabbit", config)
            .expect("valid port")
            .policy(fast_policy());
        let (herald, port, _dir) = start(Herald::builder().port(rabbit), false).await;
        let e = event("evt-access");

        port.send(e.clone()).await.expect("accepted");
        let done = settle(&port, e.id()).await;

        assert_eq!((done.status, done.attempts_made), (DeliveryStatus::Failed, 1));
        let failure = done.last_failure.expect("failure");
        assert_eq!(failure.code, "access_refused");
        assert!(!failure.message.contains("wrong-password"), "{}", failure.message);
        herald.shutdown(Duration::from_secs(1)).await;
    });
}
