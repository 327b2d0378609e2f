//! Section 1, durable accept: how fast `send` returns `Ok` (the event is durable, fsync
//! on) with 1, 64 and 1024 concurrent senders, against the limit and the peers.
//!
//! - Herald, delivery parked: the port's attempts never answer (a hanging receiver), so
//!   after the first 64 attempts start, every commit holds acceptances only. This is the
//!   accept path alone, the figure comparable with raw redb inserting the same bytes.
//! - Herald, accept while delivering: the port's attempts succeed at once in process, so
//!   each event also costs its attempt's two durable changes in the same group commits.
//! - Limit: raw redb inserting the bytes Herald stores per acceptance, one per commit and
//!   in batches of the size Herald was observed to commit (acceptances per commit, counted
//!   by a store wrapper) in the same round.
//! - Peers with delivery parked too: the naive design (one commit per send) and apalis
//!   (one durable SQLite insert per push).
//!
//! Every round runs each system once, in turn; figures are medians over rounds.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use herald::ExternalEvent;

use crate::herald_setup::{Delivery, PORT, counting_store, event, in_process_port, start};
use crate::peers::apalis::Apalis;
use crate::peers::naive::Naive;
use crate::peers::raw;
use crate::report::{Table, rate, ratio, us};
use crate::senders::tokio_senders;
use crate::stats::{Sample, median, summarise};

/// Body size of every accepted event.
const BODY: usize = 256;

/// Most events of the raw one-per-commit run (it does not depend on the sender count,
/// and runs at the disk's fsync rate).
const RAW_ONE: usize = 1_000;

/// Events per run, by sender count.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sizes {
    pub(crate) senders: usize,
    /// Herald's runs and the raw batched run.
    pub(crate) herald: usize,
    /// Raw one-per-commit and the peers, which are 10-30× slower.
    pub(crate) slow: usize,
}

/// The medians of one sender count.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    pub(crate) senders: usize,
    pub(crate) parked: Sample,
    pub(crate) delivering: Sample,
    /// Acceptances per commit, parked and delivering; changes per commit, delivering.
    pub(crate) batch: (f64, f64, f64),
    pub(crate) raw_one: Sample,
    pub(crate) raw_batched: Sample,
    pub(crate) raw_batch: usize,
    pub(crate) naive: Sample,
    pub(crate) apalis: Sample,
}

/// Runs Herald once with `delivery`; returns the sample and the commit counters' batch
/// sizes (acceptances per commit, changes per commit).
async fn herald(
    dir: &Path,
    events: &Arc<Vec<ExternalEvent>>,
    senders: usize,
    delivery: Delivery,
) -> Result<(Sample, f64, f64), String> {
    let path = dir.join("herald-accept.redb");
    let _ = std::fs::remove_file(&path);
    let store = counting_store(&path);
    let commits = store.hook().commits.clone();
    let h = start(store, in_process_port(delivery)).await;
    let port = h.port(PORT).ok_or("no bench port")?;
    let evs = events.clone();
    let sent = tokio_senders(senders, events.len(), move |i| {
        let (port, e) = (port.clone(), evs[i].clone());
        async move { port.send(e).await.map(drop).map_err(|e| e.to_string()) }
    })
    .await?;
    h.shutdown(Duration::ZERO).await;
    drop(h);
    let accepted = commits.accepts.load(Ordering::Relaxed) as usize;
    if accepted != events.len() {
        return Err(format!(
            "Herald committed {accepted} acceptances for {} sends",
            events.len()
        ));
    }
    let _ = std::fs::remove_file(&path);
    Ok((sent.accept_sample(), commits.accept_batch(), commits.change_batch()))
}

/// Runs every system for `sizes.senders` senders, `rounds` times, interleaved.
async fn cell(dir: &Path, sizes: Sizes, rounds: usize) -> Result<Row, String> {
    let events: Arc<Vec<ExternalEvent>> = Arc::new((0..sizes.herald).map(|i| event("acc", i, &[b'x'; BODY])).collect());
    let items = raw::herald_bytes(&events);
    let (mut parked, mut delivering, mut raw_one, mut raw_batched, mut naive, mut apalis) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut batches, mut dbatches, mut cbatches) = (vec![], vec![], vec![]);
    for _ in 0..rounds {
        let (s, b, _) = herald(dir, &events, sizes.senders, Delivery::Parked).await?;
        parked.push(s);
        batches.push(b);
        let batch = b.round().max(1.0) as usize;
        raw_batched.push((batch, raw::redb_inserts(dir, &items, batch)));
        raw_one.push(raw::redb_inserts(dir, &items[..sizes.slow.min(RAW_ONE)], 1));
        let (s, b, c) = herald(dir, &events, sizes.senders, Delivery::Instant).await?;
        delivering.push(s);
        dbatches.push(b);
        cbatches.push(c);
        naive.push(
            Naive::new(dir, None)?
                .send_all(sizes.senders, sizes.slow, BODY)
                .await?
                .accept_sample(),
        );
        apalis.push(
            Apalis::new(dir, None)
                .await?
                .send_all(sizes.senders, sizes.slow, BODY)
                .await?
                .accept_sample(),
        );
    }
    // The raw batched figure of the round whose batch size is the median one.
    raw_batched.sort_by_key(|(b, _)| *b);
    let raw_batch = raw_batched[raw_batched.len() / 2].0;
    let same: Vec<Sample> = raw_batched
        .iter()
        .filter(|(b, _)| *b == raw_batch)
        .map(|(_, s)| *s)
        .collect();
    Ok(Row {
        senders: sizes.senders,
        parked: summarise(&parked),
        delivering: summarise(&delivering),
        batch: (median(batches), median(dbatches), median(cbatches)),
        raw_one: summarise(&raw_one),
        raw_batched: summarise(&same),
        raw_batch,
        naive: summarise(&naive),
        apalis: summarise(&apalis),
    })
}

/// Runs the section.
pub(crate) async fn run(dir: &Path, sizes: &[Sizes], rounds: usize) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for s in sizes {
        rows.push(cell(dir, *s, rounds).await?);
    }
    Ok(rows)
}

/// The section's tables: rates and ratios, then time-to-acknowledge.
pub(crate) fn tables(rows: &[Row]) -> Vec<Table> {
    let mut rates = Table::new(
        "Durable accept: events/s (fsync on, 256 B bodies)",
        &[
            "senders",
            "Herald (delivery parked)",
            "acceptances per commit",
            "raw redb at that batch",
            "Herald / raw (target ≥ 0.8)",
            "raw redb, 1 per commit",
            "Herald / raw 1-per-commit (target ≥ 20 at 1024)",
            "Herald accept while delivering",
            "changes per commit",
            "naive",
            "Herald / naive (target ≥ 10 at 64+)",
            "apalis-sqlite",
            "Herald / apalis (target ≥ 10 at 64+)",
        ],
    );
    let mut acks = Table::new(
        "Durable accept: time to acknowledge p50 / p99 (µs); raw: per commit",
        &[
            "senders",
            "Herald (parked)",
            "Herald (delivering)",
            "raw at Herald's batch",
            "raw 1 per commit",
            "naive",
            "apalis-sqlite",
        ],
    );
    for r in rows {
        rates.row(vec![
            r.senders.to_string(),
            rate(r.parked.rate),
            format!("{:.1}", r.batch.0),
            format!("{} (batch {})", rate(r.raw_batched.rate), r.raw_batch),
            ratio(r.parked.rate / r.raw_batched.rate),
            rate(r.raw_one.rate),
            ratio(r.parked.rate / r.raw_one.rate),
            rate(r.delivering.rate),
            format!("{:.1}", r.batch.2),
            rate(r.naive.rate),
            ratio(r.parked.rate / r.naive.rate),
            rate(r.apalis.rate),
            ratio(r.parked.rate / r.apalis.rate),
        ]);
        let pair = |s: &Sample| format!("{} / {}", us(s.latency.p50), us(s.latency.p99));
        acks.row(vec![
            r.senders.to_string(),
            pair(&r.parked),
            pair(&r.delivering),
            pair(&r.raw_batched),
            pair(&r.raw_one),
            pair(&r.naive),
            pair(&r.apalis),
        ]);
    }
    vec![rates, acks]
}
