//! The limits: what the disk and the network stack allow with nothing of Herald's on top.
//!
//! - [`redb_inserts`]: raw redb, one table, inserting per event the bytes Herald stores
//!   for an accepted event (its encoded event ‖ its encoded record, under port ‖ key), in
//!   batches of a given size, one durable (`Immediate`, fsync) commit per batch.
//! - [`reqwest_posts`]: one reqwest client POSTing the same bodies to the same receiver
//!   at the same concurrency, storing nothing, retrying a 503 at once.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use herald::ExternalEvent;
use herald_core::{DeliveryRecord, Timestamp};
use redb::{Database, Durability, TableDefinition};

use crate::herald_setup::PORT;
use crate::sink::Sink;
use crate::stats::{Latency, Sample};

const RAW: TableDefinition<'static, &[u8], &[u8]> = TableDefinition::new("raw");

/// Per event, the key and the bytes Herald's store writes when it accepts it.
pub(crate) fn herald_bytes(events: &[ExternalEvent]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let at = Timestamp::from_secs(1_700_000_000);
    events
        .iter()
        .map(|e| {
            let mut key = vec![PORT.len() as u8];
            key.extend_from_slice(PORT.as_bytes());
            key.extend_from_slice(&e.key().0);
            let mut value = herald_store::fuzzing::encode_event(e);
            value.extend(herald_store::fuzzing::encode_record(&DeliveryRecord::accepted(e, at)));
            (key, value)
        })
        .collect()
}

/// Inserts `items` into a new redb file in `dir`, `batch` per durable commit. The
/// latency is each commit's (every event of a batch is acknowledged when it ends).
pub(crate) fn redb_inserts(dir: &Path, items: &[(Vec<u8>, Vec<u8>)], batch: usize) -> Sample {
    let path = dir.join(format!("raw-{batch}.redb"));
    let _ = std::fs::remove_file(&path);
    let db = Database::create(&path).expect("raw redb file");
    let mut commits = Vec::with_capacity(items.len() / batch + 1);
    let start = Instant::now();
    for chunk in items.chunks(batch) {
        let t = Instant::now();
        let mut txn = db.begin_write().expect("write txn");
        txn.set_durability(Durability::Immediate).expect("durability");
        {
            let mut table = txn.open_table(RAW).expect("raw table");
            for (k, v) in chunk {
                table.insert(k.as_slice(), v.as_slice()).expect("insert");
            }
        }
        txn.commit().expect("commit");
        commits.push(t.elapsed());
    }
    let secs = start.elapsed().as_secs_f64();
    drop(db);
    let _ = std::fs::remove_file(path);
    Sample {
        rate: items.len() as f64 / secs,
        latency: Latency::of(&mut commits),
    }
}

/// `concurrency` tasks POSTing `n` bodies of `body` bytes to the sink with one client.
pub(crate) async fn reqwest_posts(sink: &Sink, body: usize, concurrency: usize, n: usize) -> Result<Sample, String> {
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .map_err(|e| e.to_string())?;
    let next = Arc::new(AtomicUsize::new(0));
    let url = sink.url();
    let body = Bytes::from(vec![b'x'; body]);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, next, url, body) = (client.clone(), next.clone(), url.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), String>(());
                }
                loop {
                    let r = client
                        .post(&url)
                        .header("webhook-id", format!("evt-{i}"))
                        .body(body.clone())
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    if r.status().is_success() {
                        break;
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    sink.wait_for(n, Duration::from_secs(60)).await?;
    Ok(Sample {
        rate: n as f64 / start.elapsed().as_secs_f64(),
        latency: Latency::NONE,
    })
}
