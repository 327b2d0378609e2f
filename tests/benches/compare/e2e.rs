//! Section 2, end-to-end delivery to the local hyper receiver (keep-alive, 204 answers):
//! 256 B and 16 KiB bodies, 16 and 64 attempts in flight, and 5 % of first attempts
//! answered 503. 64 sender tasks each send their share and await every durable
//! acknowledgement; the rate is events from the first send to the receiver's n-th
//! success. Latency is from `send` returning to the receiver's first success for that id.
//!
//! Systems: the limit (raw reqwest → hyper at the same concurrency, nothing stored),
//! Herald on tokio and on smol, the naive design and apalis-sqlite. Each round runs each
//! system once, in turn, on a fresh file; figures are medians over rounds.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald::{ExternalEvent, Herald};

use crate::herald_setup::{PORT, event, webhook_port};
use crate::peers::apalis::Apalis;
use crate::peers::naive::Naive;
use crate::peers::raw;
use crate::report::{Table, ms, rate, ratio};
use crate::senders::{Ack, Sent, share, tokio_senders};
use crate::sink::Sink;
use crate::stats::{Latency, Sample, summarise};

/// Sender tasks of every system.
pub(crate) const SENDERS: usize = 64;

/// One configuration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cell {
    pub(crate) body: usize,
    pub(crate) in_flight: usize,
    pub(crate) fail_permille: u64,
}

/// The cells of the section.
pub(crate) const CELLS: [Cell; 5] = [
    Cell {
        body: 256,
        in_flight: 16,
        fail_permille: 0,
    },
    Cell {
        body: 256,
        in_flight: 64,
        fail_permille: 0,
    },
    Cell {
        body: 16 * 1024,
        in_flight: 16,
        fail_permille: 0,
    },
    Cell {
        body: 16 * 1024,
        in_flight: 64,
        fail_permille: 0,
    },
    Cell {
        body: 256,
        in_flight: 64,
        fail_permille: 50,
    },
];

/// Events per run: raw and Herald; the naive design; apalis.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sizes {
    pub(crate) fast: usize,
    pub(crate) naive: usize,
    pub(crate) apalis: usize,
}

/// The medians of one cell.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    pub(crate) cell: Cell,
    pub(crate) raw: Sample,
    pub(crate) tokio: Sample,
    pub(crate) smol: Sample,
    pub(crate) naive: Sample,
    pub(crate) apalis: Sample,
}

/// Longest a run may take to deliver everything before it counts as failed.
fn limit(n: usize) -> Duration {
    Duration::from_secs(60 + n as u64 / 50)
}

/// Rate from the first send to the n-th delivery, and acknowledgement-to-delivery latency.
async fn delivered(sink: &Sink, sent: &Sent, n: usize) -> Result<Sample, String> {
    sink.wait_for(n, limit(n)).await?;
    let secs = sent.started.elapsed().as_secs_f64();
    Ok(Sample {
        rate: n as f64 / secs,
        latency: delivery_latency(&sent.acks, &sink.arrivals()),
    })
}

/// From each acknowledgement to the first success of its id at the receiver.
fn delivery_latency(acks: &[Ack], arrivals: &[(String, Instant)]) -> Latency {
    let first: HashMap<usize, Instant> = arrivals
        .iter()
        .rev()
        .filter_map(|(id, t)| Some((id.rsplit('-').next()?.parse().ok()?, *t)))
        .collect();
    let mut l: Vec<Duration> = acks
        .iter()
        .filter_map(|a| first.get(&a.event).map(|t| t.saturating_duration_since(a.at)))
        .collect();
    Latency::of(&mut l)
}

fn events(n: usize, body: usize) -> Arc<Vec<ExternalEvent>> {
    let body = vec![b'x'; body];
    Arc::new((0..n).map(|i| event("evt", i, &body)).collect())
}

async fn herald_tokio(dir: &Path, sink: &Sink, cell: Cell, events: &Arc<Vec<ExternalEvent>>) -> Result<Sample, String> {
    let path = dir.join("herald-e2e.redb");
    let _ = std::fs::remove_file(&path);
    let h = Herald::builder()
        .store_path(&path)
        .port(webhook_port(&sink.url(), cell.in_flight))
        .start_tokio()
        .await
        .map_err(|e| e.to_string())?;
    let port = h.port(PORT).ok_or("no bench port")?;
    let evs = events.clone();
    let sent = tokio_senders(SENDERS, events.len(), move |i| {
        let (port, e) = (port.clone(), evs[i].clone());
        async move { port.send(e).await.map(drop).map_err(|e| e.to_string()) }
    })
    .await?;
    let sample = delivered(sink, &sent, events.len()).await;
    h.shutdown(Duration::from_secs(1)).await;
    sample
}

/// The smol driver on smol's global executor, in a thread of its own, as an application
/// on smol would run it (the receiver stays on tokio).
async fn herald_smol(dir: &Path, sink: &Sink, cell: Cell, events: &Arc<Vec<ExternalEvent>>) -> Result<Sample, String> {
    let path = dir.join("herald-e2e-smol.redb");
    let _ = std::fs::remove_file(&path);
    let builder = Herald::builder()
        .store_path(&path)
        .port(webhook_port(&sink.url(), cell.in_flight));
    let evs = events.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    // Closed (dropped) once the run is measured: the smol thread then shuts Herald down.
    let (measured, stop) = async_channel::bounded::<()>(1);
    let runner = std::thread::spawn(move || {
        smol::block_on(async {
            let h = match builder.start_smol().await {
                Ok(h) => h,
                Err(e) => return drop(tx.send(Err(e.to_string()))),
            };
            let Some(port) = h.port(PORT) else {
                return drop(tx.send(Err("no bench port".to_owned())));
            };
            let started = Instant::now();
            let n = evs.len();
            let tasks: Vec<_> = (0..SENDERS)
                .map(|s| {
                    let (port, evs) = (port.clone(), evs.clone());
                    smol::spawn(share(s, SENDERS, n, move |i| {
                        let (port, e) = (port.clone(), evs[i].clone());
                        async move { port.send(e).await.map(drop).map_err(|e| e.to_string()) }
                    }))
                })
                .collect();
            let mut acks = Ok(Vec::with_capacity(n));
            for t in tasks {
                match (t.await, &mut acks) {
                    (Ok(a), Ok(all)) => all.extend(a),
                    (Err(e), _) => acks = Err(e),
                    _ => {}
                }
            }
            let elapsed = started.elapsed();
            let _ = tx.send(acks.map(|acks| Sent { started, elapsed, acks }));
            let _ = stop.recv().await;
            h.shutdown(Duration::from_secs(1)).await;
        });
    });
    let sent = tokio::task::spawn_blocking(move || rx.recv().map_err(|e| e.to_string()))
        .await
        .map_err(|e| e.to_string())??;
    let sample = match sent {
        Ok(sent) => delivered(sink, &sent, events.len()).await,
        Err(e) => Err(e),
    };
    drop(measured);
    let _ = tokio::task::spawn_blocking(move || runner.join()).await;
    sample
}

async fn cell(dir: &Path, sink: &Sink, cell: Cell, sizes: Sizes, rounds: usize) -> Result<Row, String> {
    let events = events(sizes.fast, cell.body);
    let (mut raw, mut tok, mut smo, mut nai, mut apa) = (vec![], vec![], vec![], vec![], vec![]);
    // For profiling one system: HERALD_BENCH_SYSTEMS=raw,tokio,smol,naive,apalis.
    let systems = std::env::var("HERALD_BENCH_SYSTEMS").unwrap_or_default();
    let runs = |s: &str| systems.is_empty() || systems.split(',').any(|o| o.trim() == s);
    for _ in 0..rounds {
        if runs("raw") {
            sink.reset(cell.fail_permille);
            raw.push(raw::reqwest_posts(sink, cell.body, cell.in_flight, sizes.fast).await?);
        }
        if runs("tokio") {
            sink.reset(cell.fail_permille);
            tok.push(herald_tokio(dir, sink, cell, &events).await?);
        }
        if runs("smol") {
            sink.reset(cell.fail_permille);
            smo.push(herald_smol(dir, sink, cell, &events).await?);
        }
        if runs("naive") {
            sink.reset(cell.fail_permille);
            let naive = Naive::new(dir, Some((sink, cell.in_flight)))?;
            let sent = naive.send_all(SENDERS, sizes.naive, cell.body).await?;
            nai.push(delivered(sink, &sent, sizes.naive).await?);
        }
        if runs("apalis") {
            sink.reset(cell.fail_permille);
            let apalis = Apalis::new(dir, Some((sink, cell.in_flight))).await?;
            let sent = apalis.send_all(SENDERS, sizes.apalis, cell.body).await?;
            apa.push(delivered(sink, &sent, sizes.apalis).await?);
        }
    }
    Ok(Row {
        cell,
        raw: summarise(&raw),
        tokio: summarise(&tok),
        smol: summarise(&smo),
        naive: summarise(&nai),
        apalis: summarise(&apa),
    })
}

/// Runs the section.
pub(crate) async fn run(dir: &Path, sink: &Sink, sizes: Sizes, rounds: usize) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    // For working on one cell: HERALD_BENCH_CELL=0..4.
    let only: Option<usize> = std::env::var("HERALD_BENCH_CELL").ok().and_then(|c| c.parse().ok());
    for c in CELLS
        .into_iter()
        .enumerate()
        .filter(|(i, _)| only.is_none_or(|o| o == *i))
        .map(|(_, c)| c)
    {
        rows.push(cell(dir, sink, c, sizes, rounds).await?);
    }
    Ok(rows)
}

/// The section's tables: delivered events/s with ratios, then latency.
pub(crate) fn tables(rows: &[Row]) -> Vec<Table> {
    let mut rates = Table::new(
        "End-to-end delivery: events/s from the first send to the last success",
        &[
            "body",
            "in flight",
            "503 share",
            "raw reqwest→hyper",
            "Herald tokio",
            "/ raw (target ≥ 0.7)",
            "Herald smol",
            "/ raw",
            "naive",
            "Herald / naive",
            "apalis-sqlite",
            "Herald / apalis",
        ],
    );
    let mut lat = Table::new(
        "End-to-end delivery: acknowledgement → delivered p50 / p99 (ms)",
        &[
            "body",
            "in flight",
            "503 share",
            "Herald tokio",
            "Herald smol",
            "naive",
            "apalis-sqlite",
            "time per attempt slot, raw / Herald tokio (ms)",
        ],
    );
    for r in rows {
        let c = r.cell;
        let (body, inf, share) = (
            if c.body >= 1024 {
                format!("{} KiB", c.body / 1024)
            } else {
                format!("{} B", c.body)
            },
            c.in_flight.to_string(),
            format!("{} %", c.fail_permille as f64 / 10.0),
        );
        rates.row(vec![
            body.clone(),
            inf.clone(),
            share.clone(),
            rate(r.raw.rate),
            rate(r.tokio.rate),
            ratio(r.tokio.rate / r.raw.rate),
            rate(r.smol.rate),
            ratio(r.smol.rate / r.raw.rate),
            rate(r.naive.rate),
            ratio(r.tokio.rate / r.naive.rate),
            rate(r.apalis.rate),
            ratio(r.tokio.rate / r.apalis.rate),
        ]);
        let pair = |s: &Sample| format!("{} / {}", ms(s.latency.p50), ms(s.latency.p99));
        // Little's law: each in-flight slot serves one event per in_flight / rate.
        let slot = |rate: f64| ms(c.in_flight as f64 / rate * 1e6);
        lat.row(vec![
            body,
            inf,
            share,
            pair(&r.tokio),
            pair(&r.smol),
            pair(&r.naive),
            pair(&r.apalis),
            format!("{} / {}", slot(r.raw.rate), slot(r.tokio.rate)),
        ]);
    }
    vec![rates, lat]
}
