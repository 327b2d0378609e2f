//! Peer (b), the naive design a team writes first: `send` is one durable redb commit per
//! event (on the blocking pool); delivery is a `tokio::spawn` per event, bounded by a
//! semaphore of the attempt concurrency, a backon retry loop around a reqwest POST, and a
//! second durable commit when delivered.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use backon::{ConstantBuilder, Retryable};
use bytes::Bytes;
use redb::{Database, TableDefinition};

use crate::senders::{Sent, tokio_senders};
use crate::sink::Sink;

const EVENTS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("events");
const DONE: TableDefinition<'static, &str, u64> = TableDefinition::new("delivered");

/// One durable commit of `value` under `table`/`key`, on the blocking pool.
async fn commit(db: Arc<Database>, key: String, value: Bytes) -> Result<(), String> {
    tokio::task::spawn_blocking(move || -> Result<(), redb::Error> {
        let tx = db.begin_write()?;
        if value.is_empty() {
            tx.open_table(DONE)?.insert(key.as_str(), 1)?;
        } else {
            tx.open_table(EVENTS)?.insert(key.as_str(), &value[..])?;
        }
        tx.commit()?;
        Ok(())
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())
}

/// The naive design's instance: its file, and where it delivers (if anywhere).
pub(crate) struct Naive {
    db: Arc<Database>,
    deliver: Option<Delivery>,
}

#[derive(Clone)]
struct Delivery {
    client: reqwest::Client,
    url: String,
    slots: Arc<tokio::sync::Semaphore>,
}

impl Naive {
    /// A new file in `dir`; with `sink`, each accepted event is delivered there with
    /// `concurrency` POSTs at once; without, delivery is parked (accept alone).
    pub(crate) fn new(dir: &Path, sink: Option<(&Sink, usize)>) -> Result<Naive, String> {
        let path = dir.join("naive.redb");
        let _ = std::fs::remove_file(&path);
        let db = Database::create(&path).map_err(|e| e.to_string())?;
        let deliver = match sink {
            None => None,
            Some((sink, concurrency)) => Some(Delivery {
                client: reqwest::Client::builder()
                    .tcp_nodelay(true)
                    .build()
                    .map_err(|e| e.to_string())?,
                url: sink.url(),
                slots: Arc::new(tokio::sync::Semaphore::new(concurrency)),
            }),
        };
        Ok(Naive {
            db: Arc::new(db),
            deliver,
        })
    }

    /// `senders` tasks send `n` events of `body` bytes; returns when all are acknowledged.
    pub(crate) async fn send_all(&self, senders: usize, n: usize, body: usize) -> Result<Sent, String> {
        let body = Bytes::from(vec![b'x'; body]);
        let (db, deliver) = (self.db.clone(), self.deliver.clone());
        tokio_senders(senders, n, move |i| {
            let (db, deliver, body) = (db.clone(), deliver.clone(), body.clone());
            async move {
                let id = format!("evt-{i}");
                commit(db.clone(), id.clone(), body.clone()).await?;
                if let Some(d) = deliver {
                    tokio::spawn(deliver_one(db, d, id, body));
                }
                Ok(())
            }
        })
        .await
    }
}

/// The delivery task of one event: POST with backon retries, then record it delivered.
async fn deliver_one(db: Arc<Database>, d: Delivery, id: String, body: Bytes) {
    let Ok(_slot) = d.slots.acquire().await else { return };
    let post = || async {
        d.client
            .post(&d.url)
            .header("webhook-id", &id)
            .body(body.clone())
            .send()
            .await?
            .error_for_status()
    };
    let retries = ConstantBuilder::default()
        .with_delay(Duration::from_millis(10))
        .with_max_times(20);
    if post.retry(retries).await.is_ok() {
        // A failure here shows as a missing delivery at the sink's count: the run errors.
        let _ = commit(db, id, Bytes::new()).await;
    }
}
