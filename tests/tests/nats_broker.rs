//! The NATS transport against real JetStream (127.0.0.1:4222): what lands in a stream, the
//! de-duplication `Nats-Msg-Id` buys, a subject no stream captures, a full stream, and a
//! server that goes away and comes back. Each test makes its own uniquely named stream and
//! deletes it. Skips with a printed reason when NATS is down, unless
//! HERALD_REQUIRE_BROKERS=1.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use herald::transport::nats::NatsConfig;
use herald::{DeliveryStatus, EventId, Herald, IntegrationResult, Port, PortConfig, RetryPolicy};
use herald_core::Jitter;
use herald_tests::brokers::{self, Proxy};
use herald_tests::combos::Tokio;
use herald_tests::conformance::{event, sleep, with_deadline};

/// A stream capturing `<name>.>`, deleted when the test ends.
struct TestStream {
    js: jetstream::Context,
    name: String,
}

impl TestStream {
    async fn create(tweak: impl FnOnce(stream::Config) -> stream::Config) -> TestStream {
        let client = async_nats::connect(brokers::NATS).await.expect("connect to NATS");
        let js = jetstream::new(client);
        let name = brokers::unique("herald_nats").replace('-', "_");
        let config = tweak(stream::Config {
            name: name.clone(),
            subjects: vec![format!("{name}.>")],
            ..Default::default()
        });
        js.create_stream(config).await.expect("create the test stream");
        TestStream { js, name }
    }

    /// How many messages the stream holds.
    async fn messages(&self) -> u64 {
        let mut s = self.js.get_stream(&self.name).await.expect("the test stream");
        s.info().await.expect("stream info").state.messages
    }

    async fn delete(self) {
        let _ = self.js.delete_stream(&self.name).await;
    }
}

fn policy() -> RetryPolicy {
    RetryPolicy::fixed(vec![Duration::from_millis(100)])
        .jitter(Jitter::None)
        .max_attempts(100)
        .attempt_timeout(Duration::from_secs(2))
}

async fn start(server_port: u16, subject: &str, dir: &tempfile::TempDir, store: &str) -> (Herald, Port) {
    let config = NatsConfig::builder(&format!("nats://127.0.0.1:{server_port}"))
        .subject(subject)
        .build()
        .expect("valid nats config");
    let herald = Herald::builder()
        .store_path(dir.path().join(store))
        .port(PortConfig::nats("nats", config).expect("valid port").policy(policy()))
        .start_tokio()
        .await
        .expect("start");
    let port = herald.port("nats").expect("port");
    (herald, port)
}

async fn settle(port: &Port, id: &EventId) -> IntegrationResult {
    with_deadline(Duration::from_secs(20), port.wait_for_terminal(id))
        .await
        .expect("terminal within 20 s")
        .expect("wait")
}

async fn until_retrying(port: &Port, id: &EventId) -> IntegrationResult {
    for _ in 0..500 {
        let s = port.status(id).await.unwrap().expect("known");
        if s.status == DeliveryStatus::Retrying {
            return s;
        }
        sleep(Duration::from_millis(10)).await;
    }
    panic!("{id} never reported Retrying");
}

fn nats_port() -> Option<u16> {
    brokers::require("NATS", brokers::NATS).map(|a| a.port())
}

#[test]
fn a_published_event_lands_in_the_stream_with_its_id_headers_and_exact_bytes() {
    let Some(server) = nats_port() else { return };
    Tokio::block_on(async {
        let stream = TestStream::create(|c| c).await;
        let dir = tempfile::tempdir().unwrap();
        let (herald, port) = start(server, &format!("{}.{{type}}", stream.name), &dir, "a.redb").await;
        let e = event("evt-lands");

        port.send(e.clone()).await.expect("accepted");
        let done = settle(&port, e.id()).await;

        assert_eq!(done.status, DeliveryStatus::Delivered);
        let s = stream.js.get_stream(&stream.name).await.unwrap();
        let m = s.get_raw_message(1).await.expect("message 1");
        assert_eq!(m.subject.as_str(), format!("{}.order.created", stream.name));
        assert_eq!(&m.payload[..], e.payload(), "exact bytes");
        let header = |n: &str| m.headers.get(n).map(|v| v.as_str().to_owned());
        assert_eq!(header("Nats-Msg-Id").as_deref(), Some("evt-lands"));
        assert_eq!(header("Content-Type").as_deref(), Some("application/json"));
        assert_eq!(header("Herald-Event-Type").as_deref(), Some("order.created"));
        assert_eq!(header("Herald-Meta-tenant").as_deref(), Some("acme"));
        assert_eq!(stream.messages().await, 1);
        herald.shutdown(Duration::from_secs(1)).await;
        stream.delete().await;
    });
}

#[test]
fn a_redelivered_event_is_stored_once_because_of_nats_msg_id() {
    let Some(server) = nats_port() else { return };
    Tokio::block_on(async {
        let stream = TestStream::create(|c| c).await;
        let dir = tempfile::tempdir().unwrap();
        let subject = format!("{}.{{type}}", stream.name);
        let e = event("evt-dedup");
        // Two instances with separate stores: the second knows nothing of the first
        // delivery, as after a crash between the publish and recording its ack.
        let (first, port1) = start(server, &subject, &dir, "first.redb").await;
        port1.send(e.clone()).await.unwrap();
        assert_eq!(settle(&port1, e.id()).await.status, DeliveryStatus::Delivered);
        let (second, port2) = start(server, &subject, &dir, "second.redb").await;

        port2.send(e.clone()).await.unwrap();
        let again = settle(&port2, e.id()).await;

        assert_eq!(
            again.status,
            DeliveryStatus::Delivered,
            "a duplicate ack counts as delivered"
        );
        let h = port2.history(e.id()).await.unwrap().unwrap();
        assert!(
            h.attempts[0].outcome.message.contains("duplicate"),
            "{:?}",
            h.attempts[0].outcome
        );
        assert_eq!(stream.messages().await, 1, "the stream holds the event once");
        first.shutdown(Duration::from_secs(1)).await;
        second.shutdown(Duration::from_secs(1)).await;
        stream.delete().await;
    });
}

#[test]
fn a_subject_no_stream_captures_fails_after_exactly_one_attempt() {
    let Some(server) = nats_port() else { return };
    Tokio::block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let nowhere = brokers::unique("herald-nowhere");
        let (herald, port) = start(server, &format!("{nowhere}.{{type}}"), &dir, "n.redb").await;
        let e = event("evt-nowhere");

        port.send(e.clone()).await.unwrap();
        let done = settle(&port, e.id()).await;

        assert_eq!(done.status, DeliveryStatus::Failed);
        assert_eq!(done.attempts_made, 1);
        let f = done.last_failure.expect("a failure");
        assert_eq!(f.code, "no_stream");
        assert!(
            f.message.contains(&nowhere),
            "the message names the subject: {}",
            f.message
        );
        herald.shutdown(Duration::from_secs(1)).await;
    });
}

#[test]
fn a_full_stream_is_retried_until_it_has_room() {
    let Some(server) = nats_port() else { return };
    Tokio::block_on(async {
        let stream = TestStream::create(|c| stream::Config {
            max_messages: 1,
            discard: stream::DiscardPolicy::New,
            ..c
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let (herald, port) = start(server, &format!("{}.{{type}}", stream.name), &dir, "f.redb").await;
        let (first, second) = (event("evt-fills"), event("evt-waits"));
        port.send(first.clone()).await.unwrap();
        assert_eq!(settle(&port, first.id()).await.status, DeliveryStatus::Delivered);

        port.send(second.clone()).await.unwrap();
        let waiting = until_retrying(&port, second.id()).await;
        let code = waiting.last_failure.expect("a failure").code;
        assert!(
            code.starts_with("jetstream_5"),
            "a full stream is a retryable JetStream error: {code}"
        );
        let s = stream.js.get_stream(&stream.name).await.unwrap();
        s.purge().await.expect("purge");
        let done = settle(&port, second.id()).await;

        assert_eq!(done.status, DeliveryStatus::Delivered, "delivered once there is room");
        assert_eq!(stream.messages().await, 1);
        herald.shutdown(Duration::from_secs(1)).await;
        stream.delete().await;
    });
}

#[test]
fn an_unreachable_server_is_retried_until_it_is_back() {
    let Some(_) = nats_port() else { return };
    Tokio::block_on(async {
        let stream = TestStream::create(|c| c).await;
        let upstream = brokers::NATS.parse().unwrap();
        let proxy = Proxy::start(0, upstream);
        let proxy_port = proxy.port();
        let dir = tempfile::tempdir().unwrap();
        let (herald, port) = start(proxy_port, &format!("{}.{{type}}", stream.name), &dir, "u.redb").await;
        let before = event("evt-before-outage");
        port.send(before.clone()).await.unwrap();
        assert_eq!(settle(&port, before.id()).await.status, DeliveryStatus::Delivered);

        drop(proxy);
        sleep(Duration::from_millis(200)).await;
        let during = event("evt-during-outage");
        port.send(during.clone()).await.unwrap();
        let waiting = until_retrying(&port, during.id()).await;
        let code = waiting.last_failure.expect("a failure").code;
        assert!(
            ["connect_error", "connection_reset", "timeout"].contains(&code.as_str()),
            "an outage is a network failure: {code}"
        );
        let _back = Proxy::start(proxy_port, upstream);
        let done = settle(&port, during.id()).await;

        assert_eq!(
            done.status,
            DeliveryStatus::Delivered,
            "delivered once the server is back"
        );
        assert_eq!(stream.messages().await, 2, "each event stored once");
        herald.shutdown(Duration::from_secs(1)).await;
        stream.delete().await;
    });
}
