//! The conformance suite: every scenario a driver × transport combination must pass,
//! written once. A test file instantiates it for one combination with
//! [`conformance_suite!`](crate::conformance_suite), and every failure message names the
//! combination.
//!
//! Scenarios talk to Herald only through its public API and check outcomes at the
//! receiver and in the store (status and history).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use herald::core::{AttemptReport, BoxFuture, Classifier, InputError, Jitter, Observation};
use herald::{
    DeliveryStatus, EventId, ExternalEvent, Herald, HeraldBuilder, IntegrationPort, Port, PortConfig, RetryPolicy,
    SendError, StartError,
};

use crate::fixtures::T0;
use crate::receiver::{Answer, Received, Receiver, Script};

/// How to start Herald on one runtime.
pub trait DriverKind: Send + Sync + 'static {
    /// `tokio`, `smol`.
    fn name(&self) -> &'static str;
    /// Starts a configured Herald on this runtime.
    fn start(&self, builder: HeraldBuilder) -> BoxFuture<'static, Result<Herald, StartError>>;
}

/// How to build a port of one transport that delivers to a test receiver.
pub trait TransportKind: Send + Sync + 'static {
    /// `webhook`, `api`, ...
    fn name(&self) -> &'static str;
    /// A port named `name` delivering to `receiver`.
    fn port(&self, name: &str, receiver: &Receiver) -> PortConfig;
    /// Starts a receiver answering by `script`, on `port` (0: any). HTTP by default; a
    /// broker transport starts a front that reads the script as the broker's verdicts.
    fn receiver(&self, port: u16, script: Script) -> Receiver {
        Receiver::on_port_with(port, script)
    }
    /// The outcome code an attempt answered with the scripted `status` is recorded with.
    fn outcome_code(&self, status: u16) -> String {
        format!("http_{status}")
    }
    /// What the recorded failure message of an attempt answered with the scripted `status`
    /// says (the classifier's words for this transport's fact; details may follow).
    fn outcome_message(&self, status: u16) -> String {
        let report = AttemptReport::new(Observation::Http {
            status,
            retry_after: None,
        });
        Classifier::default().classify(report, T0).message
    }
    /// Whether what this transport needs is there. A broker transport calls
    /// [`crate::brokers::require`]: `false` skips the scenario (with a printed reason), and
    /// with `HERALD_REQUIRE_BROKERS=1` a missing broker fails it instead.
    fn available(&self) -> bool {
        true
    }
}

/// One driver × transport combination, plus a scratch directory for its stores.
pub struct Combo {
    driver: Arc<dyn DriverKind>,
    transport: Arc<dyn TransportKind>,
    dir: tempfile::TempDir,
    stores: AtomicUsize,
}

impl std::fmt::Debug for Combo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.label())
    }
}

/// A fast policy for tests: 50 ms between attempts, no jitter, 5 attempts, 1 s timeout.
pub fn fast_policy() -> RetryPolicy {
    RetryPolicy::fixed(vec![Duration::from_millis(50)])
        .jitter(Jitter::None)
        .max_attempts(5)
        .attempt_timeout(Duration::from_secs(1))
}

/// An event with a caller-given id and a JSON payload.
pub fn event(id: &str) -> ExternalEvent {
    ExternalEvent::builder("order.created")
        .id(id)
        .payload(format!(r#"{{"order":"{id}","note":"héllo"}}"#).into_bytes())
        .occurred_at(T0)
        .metadata("tenant", "acme")
        .build()
        .expect("valid event")
}

impl Combo {
    /// A combination.
    pub fn new(driver: impl DriverKind, transport: impl TransportKind) -> Self {
        Combo {
            driver: Arc::new(driver),
            transport: Arc::new(transport),
            dir: tempfile::tempdir().expect("temp dir"),
            stores: AtomicUsize::new(0),
        }
    }

    /// `tokio × webhook`.
    pub fn label(&self) -> String {
        format!("{} × {}", self.driver.name(), self.transport.name())
    }

    /// A fresh store path.
    pub fn new_store(&self) -> std::path::PathBuf {
        let n = self.stores.fetch_add(1, Ordering::Relaxed);
        self.dir.path().join(format!("herald-{n}.redb"))
    }

    /// A port of this combination's transport with the fast policy.
    pub fn port(&self, name: &str, receiver: &Receiver) -> PortConfig {
        self.transport.port(name, receiver).policy(fast_policy())
    }

    /// Starts Herald with these ports on `store`.
    pub async fn start(&self, store: &std::path::Path, ports: Vec<PortConfig>) -> Herald {
        let mut b = Herald::builder().store_path(store);
        for p in ports {
            b = b.port(p);
        }
        self.driver
            .start(b)
            .await
            .unwrap_or_else(|e| panic!("[{}] start failed: {e}", self.label()))
    }

    /// Starts Herald with one port `p` delivering to `receiver`, and returns the port.
    pub async fn one_port(&self, receiver: &Receiver, tune: impl FnOnce(PortConfig) -> PortConfig) -> (Herald, Port) {
        let herald = self
            .start(&self.new_store(), vec![tune(self.port("p", receiver))])
            .await;
        let port = herald.port("p").expect("port p");
        (herald, port)
    }

    /// A receiver of this combination's transport answering every message with success.
    pub fn receiver_ok(&self) -> Receiver {
        self.receiver(|_, _| Answer::Status(204))
    }

    /// A receiver of this combination's transport answering by `script`.
    pub fn receiver(&self, script: impl Fn(&Received, usize) -> Answer + Send + Sync + 'static) -> Receiver {
        self.transport.receiver(0, Arc::new(script))
    }

    /// A receiver back on `port` after an outage.
    pub fn receiver_on_port(
        &self,
        port: u16,
        script: impl Fn(&Received, usize) -> Answer + Send + Sync + 'static,
    ) -> Receiver {
        self.transport.receiver(port, Arc::new(script))
    }

    /// The outcome code for a scripted status, in this transport's words.
    pub fn code(&self, status: u16) -> String {
        self.transport.outcome_code(status)
    }

    /// The failure message for a scripted status, in this transport's words.
    pub fn message(&self, status: u16) -> String {
        self.transport.outcome_message(status)
    }

    /// Whether the combination can run here (see [`TransportKind::available`]).
    pub fn available(&self) -> bool {
        self.transport.available()
    }

    fn ctx(&self, what: &str) -> String {
        format!("[{}] {what}", self.label())
    }
}

async fn settle(combo: &Combo, port: &Port, id: &EventId) -> herald::IntegrationResult {
    let wait = port.wait_for_terminal(id);
    match with_deadline(Duration::from_secs(20), wait).await {
        Some(r) => r.unwrap_or_else(|e| panic!("{}", combo.ctx(&format!("waiting for {id}: {e}")))),
        None => panic!(
            "{}",
            combo.ctx(&format!("{id} did not reach a terminal state within 20 s"))
        ),
    }
}

/// Polls the status until it says `Retrying` (at most 2 s) and returns it.
async fn until_retrying(combo: &Combo, port: &Port, id: &EventId) -> herald::IntegrationResult {
    for _ in 0..200 {
        let s = port.status(id).await.unwrap().expect("known");
        if s.status == DeliveryStatus::Retrying {
            return s;
        }
        sleep(Duration::from_millis(10)).await;
    }
    panic!("{}", combo.ctx(&format!("{id} never reported Retrying")))
}

/// Runs `f` with a wall-clock deadline (runtime-agnostic: a thread-backed timer).
pub async fn with_deadline<T>(d: Duration, f: impl std::future::Future<Output = T>) -> Option<T> {
    let timer = async {
        async_io::Timer::after(d).await;
        None
    };
    futures_lite::future::or(async { Some(f.await) }, timer).await
}

/// Sleeps (runtime-agnostic).
pub async fn sleep(d: Duration) {
    async_io::Timer::after(d).await;
}

/// US1: an accepted event reaches the receiver once, signed, with its id and exact bytes.
pub async fn accepted_event_is_delivered_once_with_its_id_and_bytes(c: &Combo) {
    let receiver = c.receiver_ok();
    let (herald, port) = c.one_port(&receiver, |p| p).await;
    let e = event("evt-accept");
    let accepted = port.send(e.clone()).await.expect("accepted");
    assert_eq!(
        accepted.status,
        DeliveryStatus::Pending,
        "{}",
        c.ctx("send returns Pending")
    );
    assert_eq!(accepted.event_id, *e.id());
    let done = settle(c, &port, e.id()).await;
    assert_eq!(done.status, DeliveryStatus::Delivered, "{}", c.ctx("delivered"));
    assert!(done.delivered_at.is_some());
    let got = receiver.received_for("evt-accept");
    assert_eq!(got.len(), 1, "{}", c.ctx("exactly one request"));
    assert_eq!(got[0].body, e.payload(), "{}", c.ctx("exact bytes"));
    assert_eq!(got[0].content_type, "application/json");
    herald.shutdown(Duration::from_secs(1)).await;
}

/// US2: 503s are retried with retry metadata until the receiver recovers.
pub async fn retryable_failures_are_retried_until_delivered(c: &Combo) {
    let receiver = c.receiver(|_, n| {
        if n < 2 {
            Answer::Status(503)
        } else {
            Answer::Status(200)
        }
    });
    let (herald, port) = c
        .one_port(&receiver, |p| {
            p.policy(fast_policy().attempt_timeout(Duration::from_secs(1)))
        })
        .await;
    let e = event("evt-503");
    port.send(e.clone()).await.expect("accepted");
    let done = settle(c, &port, e.id()).await;
    assert_eq!(
        done.status,
        DeliveryStatus::Delivered,
        "{}",
        c.ctx("delivered after 503s")
    );
    assert_eq!(done.attempts_made, 3, "{}", c.ctx("three attempts"));
    let h = port.history(e.id()).await.unwrap().expect("history");
    let codes: Vec<&str> = h.attempts.iter().map(|a| a.outcome.code.as_str()).collect();
    assert_eq!(codes, [c.code(503), c.code(503), c.code(200)], "{}", c.ctx("history"));
    let numbers: Vec<u32> = h.attempts.iter().map(|a| a.attempt).collect();
    assert_eq!(numbers, [1, 2, 3]);
    herald.shutdown(Duration::from_secs(1)).await;
}

/// US2 scenario 1: while failing, the status says Retrying with retry metadata.
pub async fn a_failing_delivery_reports_retrying_with_metadata(c: &Combo) {
    let receiver = c.receiver(|_, _| Answer::Status(503));
    let slow = RetryPolicy::fixed(vec![Duration::from_secs(30)])
        .jitter(Jitter::None)
        .max_attempts(3);
    let (herald, port) = c.one_port(&receiver, |p| p.policy(slow)).await;
    let e = event("evt-retrying");
    port.send(e.clone()).await.expect("accepted");
    let s = until_retrying(c, &port, e.id()).await;
    let failure = s.last_failure.expect("failure detail");
    assert_eq!(failure.code, c.code(503), "{}", c.ctx("failure code"));
    assert!(
        failure.message.contains(&c.message(503)),
        "{}: {}",
        c.ctx("failure message"),
        failure.message
    );
    assert_eq!(
        (s.attempts_made, s.attempts_remaining),
        (1, 2),
        "{}",
        c.ctx("retry counts")
    );
    let next = s.next_attempt_at.expect("next attempt time");
    assert!(next > failure.at, "{}", c.ctx("next attempt after the failure"));
    herald.shutdown(Duration::from_secs(1)).await;
}

/// US2 scenario 3: always failing ends Exhausted after exactly max attempts, with history.
pub async fn always_failing_is_exhausted_after_exactly_max_attempts(c: &Combo) {
    let receiver = c.receiver(|_, _| Answer::Status(503));
    let (herald, port) = c.one_port(&receiver, |p| p.policy(fast_policy().max_attempts(3))).await;
    let e = event("evt-exhaust");
    port.send(e.clone()).await.expect("accepted");
    let done = settle(c, &port, e.id()).await;
    assert_eq!(done.status, DeliveryStatus::Exhausted, "{}", c.ctx("exhausted"));
    assert_eq!(
        receiver.received_for("evt-exhaust").len(),
        3,
        "{}",
        c.ctx("exactly 3 requests")
    );
    let h = port.history(e.id()).await.unwrap().unwrap();
    assert_eq!(h.attempts.len(), 3);
    assert_eq!(done.last_failure.unwrap().code, c.code(503));
    herald.shutdown(Duration::from_secs(1)).await;
}

/// Edge case: 400 fails permanently after exactly one attempt.
pub async fn a_bad_request_fails_after_exactly_one_attempt(c: &Combo) {
    let receiver = c.receiver(|_, _| Answer::Status(400));
    let (herald, port) = c.one_port(&receiver, |p| p).await;
    let e = event("evt-400");
    port.send(e.clone()).await.expect("accepted");
    let done = settle(c, &port, e.id()).await;
    assert_eq!(done.status, DeliveryStatus::Failed, "{}", c.ctx("failed"));
    sleep(Duration::from_millis(200)).await;
    assert_eq!(
        receiver.received_for("evt-400").len(),
        1,
        "{}",
        c.ctx("one attempt only")
    );
    let f = done.last_failure.unwrap();
    assert_eq!(f.code, c.code(400));
    assert!(
        f.message.contains(&c.message(400)),
        "{}: {}",
        c.ctx("failure message"),
        f.message
    );
    herald.shutdown(Duration::from_secs(1)).await;
}

/// Edge case: a slow receiver times out (retryable), then delivery succeeds.
pub async fn a_timeout_is_retried(c: &Combo) {
    let receiver = c.receiver(|_, n| if n == 0 { Answer::Hang } else { Answer::Status(204) });
    let policy = fast_policy().attempt_timeout(Duration::from_millis(300));
    let (herald, port) = c.one_port(&receiver, |p| p.policy(policy)).await;
    let e = event("evt-timeout");
    port.send(e.clone()).await.expect("accepted");
    let done = settle(c, &port, e.id()).await;
    assert_eq!(
        done.status,
        DeliveryStatus::Delivered,
        "{}",
        c.ctx("delivered after a timeout")
    );
    let h = port.history(e.id()).await.unwrap().unwrap();
    assert_eq!(
        h.attempts[0].outcome.code,
        "timeout",
        "{}",
        c.ctx("first attempt timed out")
    );
    herald.shutdown(Duration::from_secs(1)).await;
}

/// US2: a refused connection is retried, and the event is delivered once the receiver is
/// back on its port.
pub async fn a_refused_connection_is_retried_until_the_receiver_is_back(c: &Combo) {
    let receiver = c.receiver_ok();
    let port_number = receiver.port();
    let (herald, port) = c
        .one_port(&receiver, |p| p.policy(fast_policy().max_attempts(50)))
        .await;
    drop(receiver);
    // Clients that hold a connection (brokers) see it close a moment after the drop.
    sleep(Duration::from_millis(200)).await;
    let e = event("evt-refused");
    port.send(e.clone()).await.expect("accepted");
    let s = until_retrying(c, &port, e.id()).await;
    assert_eq!(
        s.last_failure.unwrap().code,
        "connect_error",
        "{}",
        c.ctx("refused is a connect error")
    );
    let back = c.receiver_on_port(port_number, |_, _| Answer::Status(204));
    let done = settle(c, &port, e.id()).await;
    assert_eq!(
        done.status,
        DeliveryStatus::Delivered,
        "{}",
        c.ctx("delivered once the receiver is back")
    );
    assert_eq!(back.received_for("evt-refused").len(), 1);
    herald.shutdown(Duration::from_secs(1)).await;
}

/// US4: every attempt carries the same id and the same bytes.
pub async fn every_attempt_carries_the_same_id_and_bytes(c: &Combo) {
    let receiver = c.receiver(|_, n| {
        if n < 3 {
            Answer::Status(500)
        } else {
            Answer::Status(200)
        }
    });
    let (herald, port) = c.one_port(&receiver, |p| p).await;
    let e = event("evt-same");
    port.send(e.clone()).await.expect("accepted");
    settle(c, &port, e.id()).await;
    let got = receiver.received_for("evt-same");
    assert_eq!(got.len(), 4, "{}", c.ctx("four attempts"));
    assert!(got.iter().all(|r| r.body == e.payload()), "{}", c.ctx("same bytes"));
    herald.shutdown(Duration::from_secs(1)).await;
}

/// US4 scenarios 3–4 and FR-004: a re-send is one delivery; a content-derived id is stable;
/// the same id with other content is a conflict.
pub async fn resending_is_idempotent_and_conflicts_are_refused(c: &Combo) {
    let receiver = c.receiver_ok();
    let (herald, port) = c.one_port(&receiver, |p| p).await;
    let derived = || {
        ExternalEvent::builder("invoice.paid")
            .payload(b"{\"invoice\":7}".to_vec())
            .occurred_at(T0)
            .build()
            .unwrap()
    };
    let first = port.send(derived()).await.expect("accepted");
    let again = port.send(derived()).await.expect("re-send accepted");
    assert_eq!(first.event_id, again.event_id, "{}", c.ctx("derived id is stable"));
    let done = settle(c, &port, &first.event_id).await;
    assert_eq!(done.status, DeliveryStatus::Delivered);
    let after = port.send(derived()).await.expect("re-send after delivery");
    assert_eq!(
        after.status,
        DeliveryStatus::Delivered,
        "{}",
        c.ctx("re-send returns the existing status")
    );
    assert_eq!(
        receiver.received_for(first.event_id.as_str()).len(),
        1,
        "{}",
        c.ctx("one delivery")
    );
    let changed = ExternalEvent::builder("invoice.paid")
        .id(first.event_id.as_str())
        .payload(b"{\"invoice\":8}".to_vec())
        .occurred_at(T0)
        .build()
        .unwrap();
    let err = port.send(changed).await.unwrap_err();
    assert!(
        matches!(err, SendError::Rejected(InputError::Conflict { .. })),
        "{}: {err}",
        c.ctx("conflict")
    );
    herald.shutdown(Duration::from_secs(1)).await;
}

/// Edge case: an oversized payload is refused at send with limit and size; nothing is sent.
pub async fn an_oversized_payload_is_refused_before_any_attempt(c: &Combo) {
    let receiver = c.receiver_ok();
    let (herald, port) = c.one_port(&receiver, |p| p.payload_limit(64)).await;
    let big = ExternalEvent::builder("t")
        .id("evt-big")
        .payload(vec![b'x'; 65])
        .occurred_at(T0)
        .build()
        .unwrap();
    let err = port.send(big).await.unwrap_err();
    assert_eq!(
        err,
        SendError::Rejected(InputError::PayloadTooLarge { size: 65, limit: 64 }),
        "{}",
        c.ctx("size error")
    );
    assert!(err.to_string().contains("64") && err.to_string().contains("65"));
    assert!(port.status(&EventId::new("evt-big").unwrap()).await.unwrap().is_none());
    sleep(Duration::from_millis(100)).await;
    assert!(receiver.received().is_empty(), "{}", c.ctx("nothing attempted"));
    herald.shutdown(Duration::from_secs(1)).await;
}

/// Restart: events accepted while the receiver is down are delivered by the next instance,
/// and the earlier failed attempts stay in the history.
pub async fn a_restart_delivers_what_the_previous_instance_accepted(c: &Combo) {
    let receiver = c.receiver(|_, _| Answer::Status(503));
    let store = c.new_store();
    let slow = RetryPolicy::fixed(vec![Duration::from_millis(200)])
        .jitter(Jitter::None)
        .max_attempts(10);
    let herald = c.start(&store, vec![c.port("p", &receiver).policy(slow.clone())]).await;
    let port = herald.port("p").unwrap();
    let ids: Vec<String> = (0..20).map(|i| format!("evt-restart-{i}")).collect();
    for id in &ids {
        port.send(event(id)).await.expect("accepted");
    }
    sleep(Duration::from_millis(100)).await;
    herald.shutdown(Duration::from_millis(500)).await;
    drop((port, herald));
    receiver.set_script(|_, _| Answer::Status(200));
    let herald = c.start(&store, vec![c.port("p", &receiver).policy(slow)]).await;
    let port = herald.port("p").unwrap();
    for id in &ids {
        let id = EventId::new(id.as_str()).unwrap();
        let done = settle(c, &port, &id).await;
        assert_eq!(
            done.status,
            DeliveryStatus::Delivered,
            "{}",
            c.ctx("delivered after restart")
        );
        let h = port.history(&id).await.unwrap().unwrap();
        assert!(h.attempts.len() >= 2, "{}", c.ctx("history kept across the restart"));
        assert_eq!(h.attempts[0].outcome.code, c.code(503));
    }
    herald.shutdown(Duration::from_secs(1)).await;
}

/// Graceful shutdown with slow attempts: when it returns nothing is in flight, and the
/// next instance finishes the work; the cut attempt is in the history as interrupted.
pub async fn shutdown_leaves_nothing_in_flight_and_the_next_start_resumes(c: &Combo) {
    let receiver = c.receiver(|_, _| Answer::Slow(Duration::from_secs(5), 200));
    let store = c.new_store();
    let policy = fast_policy().attempt_timeout(Duration::from_secs(10));
    let herald = c
        .start(&store, vec![c.port("p", &receiver).policy(policy.clone())])
        .await;
    let port = herald.port("p").unwrap();
    let e = event("evt-shutdown");
    port.send(e.clone()).await.expect("accepted");
    for _ in 0..100 {
        if !receiver.received_for("evt-shutdown").is_empty() {
            break;
        }
        sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    herald.shutdown(Duration::from_millis(200)).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{}",
        c.ctx("shutdown honours its grace")
    );
    let refused = port.send(event("evt-after")).await.unwrap_err();
    assert!(
        matches!(
            refused,
            SendError::Closed | SendError::Rejected(InputError::ShuttingDown)
        ),
        "{}: {refused}",
        c.ctx("sends refused after shutdown")
    );
    let h = port.history(e.id()).await.unwrap().unwrap();
    assert_eq!(
        h.result.status,
        DeliveryStatus::Retrying,
        "{}",
        c.ctx("left for the next start")
    );
    assert_eq!(
        h.attempts[0].outcome.code,
        "interrupted",
        "{}",
        c.ctx("interrupted attempt recorded")
    );
    drop((port, herald));
    receiver.set_script(|_, _| Answer::Status(200));
    let herald = c.start(&store, vec![c.port("p", &receiver).policy(policy)]).await;
    let port = herald.port("p").unwrap();
    let done = settle(c, &port, e.id()).await;
    assert_eq!(
        done.status,
        DeliveryStatus::Delivered,
        "{}",
        c.ctx("resumed and delivered")
    );
    herald.shutdown(Duration::from_secs(1)).await;
}

/// SC-004 / SC-007: 1000 concurrent sends complete, and a status query during the load
/// answers within the spec's 100 ms.
pub async fn a_thousand_concurrent_sends_complete_and_status_stays_fast(
    c: &Combo,
    spawn: &dyn Fn(BoxFuture<'static, ()>),
) {
    let receiver = c.receiver_ok();
    let (herald, port) = c.one_port(&receiver, |p| p.max_in_flight(64)).await;
    port.send(event("evt-probe")).await.expect("accepted");
    let (tx, rx) = async_channel::unbounded();
    for i in 0..1000 {
        let port = port.clone();
        let tx = tx.clone();
        spawn(Box::pin(async move {
            let r = port.send(event(&format!("evt-load-{i}"))).await;
            let _ = tx.send(r.map(|_| ())).await;
        }));
    }
    drop(tx);
    let probe = EventId::new("evt-probe").unwrap();
    let t = Instant::now();
    let status = port.status(&probe).await.unwrap();
    let took = t.elapsed();
    assert!(status.is_some());
    assert!(
        took <= Duration::from_millis(100),
        "{}",
        c.ctx(&format!("status took {took:?} under load"))
    );
    let mut ok = 0;
    while let Ok(r) = rx.recv().await {
        r.unwrap_or_else(|e| panic!("{}", c.ctx(&format!("send failed: {e}"))));
        ok += 1;
    }
    assert_eq!(ok, 1000);
    let last = EventId::new("evt-load-999").unwrap();
    assert_eq!(settle(c, &port, &last).await.status, DeliveryStatus::Delivered);
    herald.shutdown(Duration::from_secs(2)).await;
}

/// Edge case: one event on two ports is tracked independently.
pub async fn two_ports_track_the_same_event_independently(c: &Combo) {
    let good = c.receiver_ok();
    let bad = c.receiver(|_, _| Answer::Status(503));
    let store = c.new_store();
    let herald = c
        .start(
            &store,
            vec![
                c.port("good", &good),
                c.port("bad", &bad).policy(fast_policy().max_attempts(2)),
            ],
        )
        .await;
    let (gp, bp) = (herald.port("good").unwrap(), herald.port("bad").unwrap());
    let e = event("evt-two-ports");
    gp.send(e.clone()).await.unwrap();
    bp.send(e.clone()).await.unwrap();
    assert_eq!(
        settle(c, &gp, e.id()).await.status,
        DeliveryStatus::Delivered,
        "{}",
        c.ctx("good port")
    );
    assert_eq!(
        settle(c, &bp, e.id()).await.status,
        DeliveryStatus::Exhausted,
        "{}",
        c.ctx("bad port")
    );
    assert_eq!(gp.history(e.id()).await.unwrap().unwrap().attempts.len(), 1);
    assert_eq!(bp.history(e.id()).await.unwrap().unwrap().attempts.len(), 2);
    herald.shutdown(Duration::from_secs(1)).await;
}

/// Redrive: an exhausted delivery is sent again as a new cycle with growing attempt numbers.
pub async fn redrive_sends_an_exhausted_event_again(c: &Combo) {
    let receiver = c.receiver(|_, _| Answer::Status(503));
    let (herald, port) = c.one_port(&receiver, |p| p.policy(fast_policy().max_attempts(2))).await;
    let e = event("evt-redrive");
    port.send(e.clone()).await.unwrap();
    assert_eq!(settle(c, &port, e.id()).await.status, DeliveryStatus::Exhausted);
    receiver.set_script(|_, _| Answer::Status(200));
    let r = port.redrive(e.id()).await.expect("redriven");
    assert_eq!(
        (r.status, r.cycle),
        (DeliveryStatus::Pending, 1),
        "{}",
        c.ctx("new cycle")
    );
    let done = settle(c, &port, e.id()).await;
    assert_eq!(
        done.status,
        DeliveryStatus::Delivered,
        "{}",
        c.ctx("delivered after redrive")
    );
    let numbers: Vec<(u32, u32)> = port
        .history(e.id())
        .await
        .unwrap()
        .unwrap()
        .attempts
        .iter()
        .map(|a| (a.cycle, a.attempt))
        .collect();
    assert_eq!(
        numbers,
        [(0, 1), (0, 2), (1, 3)],
        "{}",
        c.ctx("attempt numbers only grow")
    );
    herald.shutdown(Duration::from_secs(1)).await;
}

/// FR-001/SC-001: domain code uses the port as `Arc<dyn IntegrationPort>`.
pub async fn the_port_works_behind_dyn_integration_port(c: &Combo) {
    let receiver = c.receiver_ok();
    let (herald, port) = c.one_port(&receiver, |p| p).await;
    let dynport: Arc<dyn IntegrationPort> = Arc::new(port.clone());
    let e = event("evt-dyn");
    dynport.send(e.clone()).await.expect("accepted");
    settle(c, &port, e.id()).await;
    let s = dynport.status(e.id()).await.unwrap().unwrap();
    assert_eq!(
        s.status,
        DeliveryStatus::Delivered,
        "{}",
        c.ctx("status through the trait")
    );
    assert!(dynport.history(e.id()).await.unwrap().unwrap().attempts.len() == 1);
    herald.shutdown(Duration::from_secs(1)).await;
}

/// Instantiates every scenario for one combination:
/// `conformance_suite!(combo, block_on, spawn)`, where `block_on` runs a future to completion
/// on the combination's runtime and `spawn` starts a task on it.
#[macro_export]
macro_rules! conformance_suite {
    ($combo:expr, $block_on:path, $spawn:expr) => {
        $crate::conformance_suite!(@tests $combo, $block_on;
            accepted_event_is_delivered_once_with_its_id_and_bytes,
            retryable_failures_are_retried_until_delivered,
            a_failing_delivery_reports_retrying_with_metadata,
            always_failing_is_exhausted_after_exactly_max_attempts,
            a_bad_request_fails_after_exactly_one_attempt,
            a_timeout_is_retried,
            a_refused_connection_is_retried_until_the_receiver_is_back,
            every_attempt_carries_the_same_id_and_bytes,
            resending_is_idempotent_and_conflicts_are_refused,
            an_oversized_payload_is_refused_before_any_attempt,
            a_restart_delivers_what_the_previous_instance_accepted,
            shutdown_leaves_nothing_in_flight_and_the_next_start_resumes,
            two_ports_track_the_same_event_independently,
            redrive_sends_an_exhausted_event_again,
            the_port_works_behind_dyn_integration_port,
        );
        #[test]
        fn a_thousand_concurrent_sends_complete_and_status_stays_fast() {
            let combo = $combo;
            if !combo.available() {
                return;
            }
            $block_on(async move {
                $crate::conformance::a_thousand_concurrent_sends_complete_and_status_stays_fast(&combo, &$spawn).await
            });
        }
    };
    (@tests $combo:expr, $block_on:path; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let combo = $combo;
                if !combo.available() {
                    return;
                }
                $block_on(async move { $crate::conformance::$name(&combo).await });
            }
        )*
    };
}
