//! What the driver does when the store fails under it, scenario by scenario, with a store
//! whose commits a test can hold and whose record reads it can make fail.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use herald::core::{AttemptReport, BoxFuture, Change, EventKey, Observation};
use herald::transport::{AttemptRequest, Transport};
use herald::{DeliveryStatus, ExternalEvent, Herald, PortConfig, RetryPolicy, SendError};
use herald_store::{Applied, CommitError, ReadError, RedbStore, Store};
use herald_tests::hooked::{CommitHook, Hooked};

/// Commits wait while `held`; record reads fail while `fail_reads` is set, and reads of
/// the key in `fail_key` always.
#[derive(Debug, Default)]
struct Faults {
    held: Mutex<bool>,
    released: Condvar,
    fail_reads: AtomicBool,
    fail_key: Mutex<Option<EventKey>>,
}

impl Faults {
    fn hold_commits(&self, held: bool) {
        *self.held.lock().unwrap() = held;
        self.released.notify_all();
    }
}

impl CommitHook for Faults {
    fn commit(&self, store: &RedbStore, batch: &[(&str, Change)]) -> Result<Vec<Applied>, CommitError> {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        drop(self.released.wait_while(held, |held| *held));
        store.commit(batch)
    }

    fn before_record_read(&self, _: &str, key: EventKey) -> Result<(), ReadError> {
        if self.fail_reads.load(Ordering::SeqCst) || *self.fail_key.lock().unwrap() == Some(key) {
            return Err(ReadError::Storage {
                source: redb::Error::Io(std::io::Error::other("injected read failure")),
            });
        }
        Ok(())
    }
}

/// Acknowledges each attempt once the test lets one through.
struct Gated(async_channel::Receiver<()>);

impl Transport for Gated {
    fn kind(&self) -> &'static str {
        "gated"
    }
    fn attempt<'a>(&'a self, _: AttemptRequest<'a>) -> BoxFuture<'a, AttemptReport> {
        Box::pin(async {
            let _ = self.0.recv().await;
            AttemptReport::new(Observation::Acknowledged { duplicate: false })
        })
    }
}

fn event(id: &str) -> ExternalEvent {
    ExternalEvent::builder("order.created")
        .id(id)
        .occurred_at(herald::now())
        .payload(b"{}".to_vec())
        .build()
        .expect("valid event")
}

/// A Herald with one port `p` (attempt timeout 60 s) on a store with [`Faults`], whose
/// attempts wait at a gate: each message on the returned sender lets one through.
async fn start_gated(dir: &std::path::Path) -> (Arc<Hooked<Faults>>, Herald, async_channel::Sender<()>) {
    let store = Arc::new(Hooked::new(
        RedbStore::open(dir.join("h.redb")).unwrap(),
        Faults::default(),
    ));
    let (release, gate) = async_channel::unbounded();
    let policy = RetryPolicy::default().attempt_timeout(Duration::from_secs(60));
    let herald = Herald::builder()
        .store(store.clone())
        .port(PortConfig::new("p", Gated(gate)).policy(policy))
        .start_tokio()
        .await
        .unwrap();
    (store, herald, release)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_report_in_a_round_whose_record_read_fails_is_still_recorded() {
    // Arrange: e1 accepted, its attempt waiting at the gate.
    let dir = tempfile::tempdir().unwrap();
    let (store, herald, release) = start_gated(dir.path()).await;
    let port = herald.port("p").unwrap();
    let e1 = event("e1");
    port.send(e1.clone()).await.unwrap();

    // Act: hold the loop in a commit (e0's acceptance) while e1's attempt reports and e2
    // is sent, so that both wait for the same round; that round's record read fails.
    store.hook().hold_commits(true);
    let p0 = port.clone();
    let e0 = tokio::spawn(async move { p0.send(event("e0")).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    release.send(()).await.unwrap();
    let p2 = port.clone();
    let e2 = tokio::spawn(async move { p2.send(event("e2")).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    store.hook().fail_reads.store(true, Ordering::SeqCst);
    store.hook().hold_commits(false);
    let e2 = e2.await.unwrap();
    store.hook().fail_reads.store(false, Ordering::SeqCst);

    // Assert: e2 was refused as unrecorded, and e1's report was not lost with it.
    assert!(
        matches!(e2, Err(SendError::Unrecorded(ref why)) if why.contains("injected read failure")),
        "{e2:?}"
    );
    assert!(e0.await.unwrap().is_ok());
    let done = tokio::time::timeout(Duration::from_secs(10), port.wait_for_terminal(e1.id()))
        .await
        .expect("e1's attempt report was dropped")
        .unwrap();
    assert_eq!(done.status, DeliveryStatus::Delivered);
    assert_eq!(done.attempts_made, 1);
    for _ in 0..2 {
        release.send(()).await.unwrap();
    }
    tokio::time::timeout(Duration::from_secs(10), herald.shutdown(Duration::from_secs(5)))
        .await
        .expect("shutdown waited for an attempt the loop had forgotten");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_whose_record_cannot_be_read_is_refused_alone() {
    // Arrange: two sends wait for the same round while the loop is held in a commit; the
    // record of one of them cannot be read.
    let dir = tempfile::tempdir().unwrap();
    let (store, herald, _release) = start_gated(dir.path()).await;
    let port = herald.port("p").unwrap();
    let (bad, good) = (event("unreadable"), event("readable"));
    *store.hook().fail_key.lock().unwrap() = Some(bad.key());

    // Act
    store.hook().hold_commits(true);
    let p0 = port.clone();
    let first = tokio::spawn(async move { p0.send(event("first")).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (p1, p2) = (port.clone(), port.clone());
    let bad_sent = tokio::spawn(async move { p1.send(bad).await });
    let good_sent = tokio::spawn(async move { p2.send(good).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    store.hook().hold_commits(false);

    // Assert
    assert!(first.await.unwrap().is_ok());
    let bad_sent = bad_sent.await.unwrap();
    assert!(
        matches!(bad_sent, Err(SendError::Unrecorded(ref why)) if why.contains("injected read failure")),
        "{bad_sent:?}"
    );
    let good_sent = good_sent.await.unwrap().expect("the readable send is accepted");
    assert_eq!(good_sent.status, DeliveryStatus::Pending);
    herald.shutdown(Duration::ZERO).await;
}

#[test]
fn a_runtime_shut_down_while_the_loop_commits_ends_the_loop_without_a_panic() {
    // Arrange: a panic on a driver thread is recorded; e1's attempt holds a timer in the
    // engine; the loop is held in the commit of e2's acceptance.
    let driver_panicked = Arc::new(AtomicBool::new(false));
    let flag = driver_panicked.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() == Some("herald-driver") {
            flag.store(true, Ordering::SeqCst);
        }
        previous(info);
    }));
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (store, herald, _release) = runtime.block_on(async {
        let (store, herald, release) = start_gated(dir.path()).await;
        let port = herald.port("p").unwrap();
        port.send(event("e1")).await.unwrap();
        store.hook().hold_commits(true);
        tokio::spawn(async move { port.send(event("e2")).await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        (store, herald, release)
    });

    // Act: the runtime shuts down under the busy loop, then its commit completes.
    drop(runtime);
    store.hook().hold_commits(false);

    // Assert: the loop ends (it releases its hold on the store) and did not panic.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while Arc::strong_count(&store) > 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(Arc::strong_count(&store), 2, "the loop still holds the store");
    assert!(!driver_panicked.load(Ordering::SeqCst), "the driver thread panicked");
    drop(herald);
}
