//! Section 3, status queries: `Port::status` latency p50/p99/p999 with the filled store
//! (n delivered and n retrying deliveries), idle and while the same Herald delivers the
//! 256 B / 64-in-flight load of section 2. Beside it, on the same keys and interleaved in
//! blocks of 500: herald-store's `Store::record` on the same open store (no blocking-pool
//! hop), and the limit, a raw redb read transaction + get of the same record bytes from a
//! file holding only those (see `store_fill.rs`).

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use herald::{DeliveryStatus, EventId, Herald};
use herald_store::{RedbStore, Store};
use redb::{Database, ReadableDatabase};

use crate::e2e::SENDERS;
use crate::herald_setup::{PORT, event, webhook_port};
use crate::report::{Table, rate, ratio, us};
use crate::sink::Sink;
use crate::stats::Latency;
use crate::store_fill::{Filled, RAW, raw_key};

/// Queries per block of one system before the next system's block.
const BLOCK: usize = 500;

/// Idle or loaded: the three systems' latencies (µs).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Row {
    pub(crate) raw: Latency,
    pub(crate) store: Latency,
    pub(crate) port: Latency,
    /// Deliveries per second of the load while it ran (None when idle).
    pub(crate) load_rate: Option<f64>,
}

/// Keys spread over the delivered deliveries by a fixed stride.
fn sample_ids(n: usize, count: usize) -> Vec<String> {
    let stride = (7_919 % n.max(1)) | 1;
    (0..count).map(|s| format!("done-{}", (s * stride) % n)).collect()
}

/// `rounds` rounds over `ids`, a third per system, interleaved; medians over rounds.
async fn measure(
    port: &herald::Port,
    store: &RedbStore,
    raw: &Database,
    ids: &[String],
    rounds: usize,
) -> Result<(Latency, Latency, Latency), String> {
    let event_ids: Vec<EventId> = ids
        .iter()
        .map(|i| EventId::new(i.as_str()).expect("bench id"))
        .collect();
    let keys: Vec<Vec<u8>> = ids.iter().map(|i| raw_key(i)).collect();
    let (mut r_raw, mut r_store, mut r_port) = (vec![], vec![], vec![]);
    for round in 0..rounds {
        let range = round * ids.len() / rounds..(round + 1) * ids.len() / rounds;
        let (mut t_raw, mut t_store, mut t_port) = (vec![], vec![], vec![]);
        for (b, block) in range.clone().step_by(BLOCK).enumerate() {
            let block = block..(block + BLOCK).min(range.end);
            // Each system reads a third of the block's keys, and which third turns with
            // every block: no system reads a key another just brought into a cache.
            let share = |system: usize| block.clone().filter(move |j| (j + system + b).is_multiple_of(3));
            for j in share(0) {
                let t = Instant::now();
                let txn = raw.begin_read().map_err(|e| e.to_string())?;
                let table = txn.open_table(RAW).map_err(|e| e.to_string())?;
                let v = table
                    .get(keys[j].as_slice())
                    .map_err(|e| e.to_string())?
                    .ok_or("raw key missing")?;
                black_box(v.value().len());
                t_raw.push(t.elapsed());
            }
            for j in share(1) {
                let id = &event_ids[j];
                let t = Instant::now();
                let r = store.record(PORT, id.key()).map_err(|e| e.to_string())?;
                t_store.push(t.elapsed());
                if r.is_none_or(|r| r.status != DeliveryStatus::Delivered) {
                    return Err(format!("store has no delivered record for {id}"));
                }
            }
            for j in share(2) {
                let id = &event_ids[j];
                let t = Instant::now();
                let r = port.status(id).await.map_err(|e| e.to_string())?;
                t_port.push(t.elapsed());
                if r.is_none_or(|r| r.status != DeliveryStatus::Delivered) {
                    return Err(format!("Herald has no delivered status for {id}"));
                }
            }
        }
        r_raw.push(Latency::of(&mut t_raw));
        r_store.push(Latency::of(&mut t_store));
        r_port.push(Latency::of(&mut t_port));
    }
    Ok((
        Latency::median_of(&r_raw),
        Latency::median_of(&r_store),
        Latency::median_of(&r_port),
    ))
}

/// Runs the section on the filled store: idle, then under load.
pub(crate) async fn run(filled: &Filled, sink: &Sink, queries: usize, rounds: usize) -> Result<Vec<Row>, String> {
    let store = Arc::new(RedbStore::open(&filled.herald).map_err(|e| e.to_string())?);
    // The page cache Herald's store has (redb's default is 1 GiB, which would hold the
    // whole raw file and compare a cache with a disk).
    let raw = redb::Builder::new()
        .set_cache_size(herald_store::RedbOptions::default().cache_size)
        .open(&filled.raw)
        .map_err(|e| e.to_string())?;
    let h = Herald::builder()
        .store(store.clone())
        .port(webhook_port(&sink.url(), 64))
        .start_tokio()
        .await
        .map_err(|e| e.to_string())?;
    let port = h.port(PORT).ok_or("no bench port")?;
    // `queries` per system: each reads a third of the keys.
    let ids = sample_ids(filled.n, 3 * queries);
    // Warm every cache alike before measuring.
    measure(&port, &store, &raw, &ids[..ids.len().min(5_000)], 1).await?;
    let idle = measure(&port, &store, &raw, &ids, rounds).await?;

    sink.reset(0);
    let stop = Arc::new(AtomicBool::new(false));
    let body = vec![b'x'; 256];
    let load: Vec<_> = (0..SENDERS)
        .map(|s| {
            let (port, stop, body) = (port.clone(), stop.clone(), body.clone());
            tokio::spawn(async move {
                let mut i = s;
                while !stop.load(Ordering::Relaxed) {
                    port.send(event("load", i, &body)).await.map_err(|e| e.to_string())?;
                    i += SENDERS;
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    // Let the load reach its steady state first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (before, start) = (sink.delivered(), Instant::now());
    let loaded = measure(&port, &store, &raw, &ids, rounds).await;
    let load_rate = (sink.delivered() - before) as f64 / start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.await.map_err(|e| e.to_string())??;
    }
    let loaded = loaded?;
    if load_rate < 100.0 {
        return Err(format!("the delivery load ran at only {load_rate:.0} deliveries/s"));
    }
    h.shutdown(Duration::from_secs(1)).await;
    Ok(vec![
        Row {
            raw: idle.0,
            store: idle.1,
            port: idle.2,
            load_rate: None,
        },
        Row {
            raw: loaded.0,
            store: loaded.1,
            port: loaded.2,
            load_rate: Some(load_rate),
        },
    ])
}

/// The section's table.
pub(crate) fn table(rows: &[Row], n: usize) -> Table {
    let mut t = Table::new(
        &format!("Status query latency (µs), {n} delivered + {n} retrying deliveries stored"),
        &[
            "while",
            "raw redb get p50 / p99 / p999",
            "herald-store `record`",
            "Herald `Port::status`",
            "status / raw at p99 (target ≤ 3)",
            "status / raw at p50",
        ],
    );
    for r in rows {
        let trio = |l: &Latency| format!("{} / {} / {}", us(l.p50), us(l.p99), us(l.p999));
        t.row(vec![
            r.load_rate
                .map_or_else(|| "idle".to_owned(), |v| format!("delivering {} ev/s", rate(v))),
            trio(&r.raw),
            trio(&r.store),
            trio(&r.port),
            ratio(r.port.p99 / r.raw.p99),
            ratio(r.port.p50 / r.raw.p50),
        ]);
    }
    t
}
