//! Peer (a): apalis 1.0 with its SQLite backend, held to Herald's durability (WAL,
//! `synchronous = FULL`: every committed push is fsync'd). One job per event, carrying
//! the id and the body; the job POSTs it with reqwest and fails on a non-2xx answer, and
//! apalis's retry layer runs it again. The worker runs `concurrency` jobs at once,
//! fetches up to that many per poll, and polls every 10 ms (apalis-sqlite's default
//! parks the poller when the queue is empty; an interval is how its docs wake it). One
//! connection: SQLite has one writer, and with a pool of 8 two runs in four stalled for
//! about 30 s (a poll that lost the write lock, we believe), which one connection avoids.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use apalis::layers::retry::RetryPolicy;
use apalis::prelude::*;
use apalis_sqlite::{Config, SqlitePool, SqlitePoolOptions, SqliteStorage};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

use crate::senders::{Sent, tokio_senders};
use crate::sink::Sink;

/// A job: the event id and its body.
type Job = (String, String);

/// Where jobs deliver.
#[derive(Clone)]
struct Target {
    client: reqwest::Client,
    url: Arc<str>,
}

async fn deliver((id, body): Job, target: Data<Target>) -> Result<(), BoxDynError> {
    target
        .client
        .post(&*target.url)
        .header("webhook-id", id)
        .body(body)
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

/// An apalis instance: its database and, when delivering, its running worker.
pub(crate) struct Apalis {
    storage: SqliteStorage<Job>,
    worker: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Apalis {
    fn drop(&mut self) {
        if let Some(w) = self.worker.take() {
            w.abort();
        }
    }
}

impl Apalis {
    /// A new database in `dir`; with `sink`, a worker delivers there with `concurrency`
    /// jobs at once; without, jobs stay queued (accept alone).
    pub(crate) async fn new(dir: &Path, sink: Option<(&Sink, usize)>) -> Result<Apalis, String> {
        let path = dir.join("apalis.sqlite");
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        // `setup` sets `synchronous = OFF` on the connection it runs on: give it its own.
        let setup = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(|e| e.to_string())?;
        SqliteStorage::setup(&setup).await.map_err(|e| e.to_string())?;
        setup.close().await;
        let pool: SqlitePool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(|e| e.to_string())?;
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&pool)
            .await
            .map_err(|e| e.to_string())?;
        if sync != 2 {
            return Err(format!("apalis database is not synchronous = FULL (got {sync})"));
        }
        let concurrency = sink.map_or(1, |(_, c)| c);
        let storage =
            SqliteStorage::<Job>::new(&pool).with_config(Config::default().queue("bench").batch_size(concurrency));
        let worker = match sink {
            None => None,
            Some((sink, concurrency)) => {
                let target = Target {
                    client: reqwest::Client::builder()
                        .tcp_nodelay(true)
                        .build()
                        .map_err(|e| e.to_string())?,
                    url: sink.url().into(),
                };
                let worker = WorkerBuilder::new("bench")
                    .backend(storage.clone().poll_with_interval(Duration::from_millis(10)))
                    .data(target)
                    .concurrency(concurrency)
                    .retry(RetryPolicy::retries(20))
                    .build(deliver);
                Some(tokio::spawn(async move {
                    let _ = worker.run().await;
                }))
            }
        };
        Ok(Apalis { storage, worker })
    }

    /// `senders` tasks push `n` jobs with bodies of `body` bytes; each push is durable
    /// when it returns.
    pub(crate) async fn send_all(&self, senders: usize, n: usize, body: usize) -> Result<Sent, String> {
        let body = "x".repeat(body);
        let storage = self.storage.clone();
        tokio_senders(senders, n, move |i| {
            let (mut storage, body) = (storage.clone(), body.clone());
            async move {
                storage
                    .push((format!("evt-{i}"), body))
                    .await
                    .map_err(|e| e.to_string())
            }
        })
        .await
    }
}
