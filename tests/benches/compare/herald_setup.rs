//! How the harness builds Herald: events, the webhook port aimed at the local sink, two
//! in-process transports for the accept measurement, and a store wrapper that counts
//! commits, so that Herald's group-commit batch size is observed rather than guessed.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use herald::transport::webhook::WebhookConfig;
use herald::transport::{AttemptRequest, Transport};
use herald::{ExternalEvent, Herald, PortConfig, RetryPolicy};
use herald_core::{AttemptReport, BoxFuture, Change, Jitter, Observation, Timestamp};
use herald_store::{Applied, CommitError, RedbStore, Store};
use herald_tests::hooked::{CommitHook, Hooked};

/// The port every bench instance has.
pub(crate) const PORT: &str = "bench";

/// Event `i` with a body of `body` bytes; the same id and bytes for every system.
pub(crate) fn event(prefix: &str, i: usize, body: &[u8]) -> ExternalEvent {
    ExternalEvent::builder("bench.event")
        .id(format!("{prefix}-{i}"))
        .payload(body.to_vec())
        .occurred_at(Timestamp::from_secs(1_700_000_000))
        .build()
        .expect("valid bench event")
}

/// Retries every 10 ms, up to 20 attempts: a 503 is retried as soon as a naive loop would.
pub(crate) fn fast_retry_policy() -> RetryPolicy {
    RetryPolicy::fixed(vec![Duration::from_millis(10)])
        .jitter(Jitter::None)
        .max_attempts(20)
}

/// A webhook port to `url` with `in_flight` attempts at once.
pub(crate) fn webhook_port(url: &str, in_flight: usize) -> PortConfig {
    let webhook = WebhookConfig::builder(url)
        .secret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
        .allow_private_network(true)
        .build()
        .expect("webhook config");
    PortConfig::webhook(PORT, webhook)
        .expect("webhook port")
        .policy(fast_retry_policy())
        .max_in_flight(in_flight as u32)
}

/// How the accept measurement's port delivers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Attempts never answer (a receiver that hangs; the timeout is an hour): after the
    /// first `max_in_flight` attempts start, the store sees only acceptances. This is the
    /// accept path alone, comparable with raw redb inserting the same bytes.
    Parked,
    /// Attempts succeed at once, in process: every event also costs its attempt's two
    /// durable changes, in the same group commits as the acceptances.
    Instant,
}

struct InProcess(Delivery);

impl Transport for InProcess {
    fn kind(&self) -> &'static str {
        "bench-in-process"
    }

    fn attempt<'a>(&'a self, _request: AttemptRequest<'a>) -> BoxFuture<'a, AttemptReport> {
        match self.0 {
            Delivery::Parked => Box::pin(std::future::pending()),
            Delivery::Instant => Box::pin(std::future::ready(AttemptReport::new(Observation::Http {
                status: 204,
                retry_after: None,
            }))),
        }
    }
}

/// A port delivering in process (see [`Delivery`]), 64 attempts at once, one-hour timeout.
pub(crate) fn in_process_port(delivery: Delivery) -> PortConfig {
    PortConfig::new(PORT, InProcess(delivery))
        .policy(fast_retry_policy().attempt_timeout(Duration::from_secs(3600)))
        .max_in_flight(64)
}

/// Commit counters of a [`CountingStore`].
#[derive(Debug, Default)]
pub(crate) struct Commits {
    /// Commits that carried at least one acceptance.
    pub(crate) with_accepts: AtomicU64,
    /// Acceptances committed.
    pub(crate) accepts: AtomicU64,
    /// Commits of any kind.
    pub(crate) all: AtomicU64,
    /// Changes of any kind committed.
    pub(crate) changes: AtomicU64,
}

impl Commits {
    /// Acceptances per commit that carried any: Herald's observed group-commit batch.
    pub(crate) fn accept_batch(&self) -> f64 {
        self.accepts.load(Ordering::Relaxed) as f64 / self.with_accepts.load(Ordering::Relaxed).max(1) as f64
    }

    /// Changes of every kind per commit.
    pub(crate) fn change_batch(&self) -> f64 {
        self.changes.load(Ordering::Relaxed) as f64 / self.all.load(Ordering::Relaxed).max(1) as f64
    }
}

/// A [`RedbStore`] that counts what Herald commits (the driver has no public counter).
pub(crate) type CountingStore = Hooked<Counter>;

/// The hook that counts.
#[derive(Debug, Default)]
pub(crate) struct Counter {
    pub(crate) commits: Arc<Commits>,
}

/// Opens (or creates) a counting store file at `path`.
pub(crate) fn counting_store(path: &Path) -> Arc<CountingStore> {
    let inner = RedbStore::open(path).expect("open bench store");
    Arc::new(Hooked::new(inner, Counter::default()))
}

impl CommitHook for Counter {
    fn commit(&self, store: &RedbStore, batch: &[(&str, Change)]) -> Result<Vec<Applied>, CommitError> {
        let accepts = batch
            .iter()
            .filter(|(_, c)| matches!(c, Change::Accepted { .. }))
            .count() as u64;
        let applied = store.commit(batch)?;
        let c = &self.commits;
        c.all.fetch_add(1, Ordering::Relaxed);
        c.changes.fetch_add(batch.len() as u64, Ordering::Relaxed);
        if accepts > 0 {
            c.with_accepts.fetch_add(1, Ordering::Relaxed);
            c.accepts.fetch_add(accepts, Ordering::Relaxed);
        }
        Ok(applied)
    }
}

/// Starts Herald on the current tokio runtime with `store` and `port`.
pub(crate) async fn start(store: Arc<dyn Store>, port: PortConfig) -> Herald {
    Herald::builder()
        .store(store)
        .port(port)
        .start_tokio()
        .await
        .expect("start Herald")
}
