//! End-to-end delivery benchmark: Herald (tokio and smol drivers) against the raw limit
//! (reqwest → hyper with the same concurrency and bodies) and the naive design (one redb
//! commit per event, `tokio::spawn` per delivery, a backon retry loop, a second commit on
//! delivery), all against the same local hyper receiver, interleaved in one run.
//!
//! `cargo bench -p herald-tests --bench e2e` (full: 5 rounds of 20,000 events per cell);
//! `HERALD_BENCH_QUICK=1` for the quick mode (1 round of 2,000).

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use herald::transport::webhook::WebhookConfig;
use herald::{ExternalEvent, Herald, PortConfig, RetryPolicy};
use herald_core::Jitter;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// A lean receiver: counts 2xx answers, records first-success arrival times by id, and
/// answers 503 to the first attempt of ids whose hash falls in the failure share.
struct Sink {
    addr: SocketAddr,
    delivered: Arc<AtomicUsize>,
    fail_permille: Arc<AtomicU64>,
    arrivals: Arc<Mutex<Vec<(String, Instant)>>>,
}

impl Sink {
    async fn start() -> Sink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let delivered = Arc::new(AtomicUsize::new(0));
        let fail_permille = Arc::new(AtomicU64::new(0));
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let seen_fail = Arc::new(Mutex::new(std::collections::HashSet::<String>::new()));
        let (d, f, a) = (delivered.clone(), fail_permille.clone(), arrivals.clone());
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let _ = stream.set_nodelay(true);
                let (d, f, a, s) = (d.clone(), f.clone(), a.clone(), seen_fail.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let (d, f, a, s) = (d.clone(), f.clone(), a.clone(), s.clone());
                        async move {
                            let id = req
                                .headers()
                                .get("webhook-id")
                                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                                .unwrap_or_default();
                            let _ = req.into_body().collect().await;
                            let share = f.load(Ordering::Relaxed);
                            let fail = share > 0 && fnv(&id) % 1000 < share && s.lock().unwrap().insert(id.clone());
                            let mut r = Response::new(Full::new(Bytes::new()));
                            if fail {
                                *r.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
                            } else {
                                *r.status_mut() = hyper::StatusCode::NO_CONTENT;
                                d.fetch_add(1, Ordering::Relaxed);
                                a.lock().unwrap().push((id, Instant::now()));
                            }
                            Ok::<_, Infallible>(r)
                        }
                    });
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });
        Sink {
            addr,
            delivered,
            fail_permille,
            arrivals,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn reset(&self, fail_permille: u64) {
        self.delivered.store(0, Ordering::Relaxed);
        self.fail_permille.store(fail_permille, Ordering::Relaxed);
        self.arrivals.lock().unwrap().clear();
    }

    async fn wait_for(&self, n: usize) {
        while self.delivered.load(Ordering::Relaxed) < n {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[derive(Clone, Copy, Debug)]
struct Cell {
    body: usize,
    concurrency: usize,
    fail_permille: u64,
}

struct Sample {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn latencies(sent: &Mutex<Vec<(String, Instant)>>, sink: &Sink) -> (f64, f64) {
    let sent: std::collections::HashMap<String, Instant> = sent.lock().unwrap().iter().cloned().collect();
    let mut l: Vec<f64> = sink
        .arrivals
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(id, t)| {
            sent.get(id)
                .map(|s| t.saturating_duration_since(*s).as_secs_f64() * 1e3)
        })
        .collect();
    l.sort_by(f64::total_cmp);
    (percentile(&l, 0.5), percentile(&l, 0.99))
}

fn event(i: usize, body: &[u8]) -> ExternalEvent {
    ExternalEvent::builder("bench.event")
        .id(format!("evt-{i}"))
        .payload(body.to_vec())
        .occurred_at(herald::now())
        .build()
        .unwrap()
}

fn policy() -> RetryPolicy {
    RetryPolicy::fixed(vec![Duration::from_millis(10)])
        .jitter(Jitter::None)
        .max_attempts(20)
}

/// Senders: 64 tasks sending their share sequentially (each send awaits its commit).
const SENDERS: usize = 64;

/// Sender `s` of [`SENDERS`]: sends its share of the `n` events, each awaiting its
/// durable acceptance, and notes when each was accepted.
async fn send_share(port: herald::Port, s: usize, n: usize, body: Vec<u8>, sent: Arc<Mutex<Vec<(String, Instant)>>>) {
    for i in (s..n).step_by(SENDERS) {
        let e = event(i, &body);
        let id = e.id().to_string();
        port.send(e).await.unwrap();
        sent.lock().unwrap().push((id, Instant::now()));
    }
}

async fn herald_run(sink: &Sink, cell: Cell, n: usize, smol: bool) -> Sample {
    let dir = tempfile::tempdir().unwrap();
    let webhook = WebhookConfig::builder(&sink.url())
        .secret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
        .allow_private_network(true)
        .build()
        .unwrap();
    let port = PortConfig::webhook("bench", webhook)
        .unwrap()
        .policy(policy())
        .max_in_flight(cell.concurrency as u32);
    let builder = Herald::builder().store_path(dir.path().join("bench.redb")).port(port);
    let body = vec![b'x'; cell.body];
    let sent = Arc::new(Mutex::new(Vec::with_capacity(n)));
    if smol {
        // The smol driver on smol's global executor, in a thread of its own, like an application on smol.
        let (tx, rx) = std::sync::mpsc::channel();
        let sent2 = sent.clone();
        let start_at = Instant::now();
        std::thread::spawn(move || {
            smol::block_on(async {
                let herald = builder.start_smol().await.unwrap();
                let port = herald.port("bench").unwrap();
                let mut tasks = Vec::new();
                for s in 0..SENDERS {
                    tasks.push(smol::spawn(send_share(port.clone(), s, n, body.clone(), sent2.clone())));
                }
                for t in tasks {
                    t.await;
                }
                tx.send(herald).unwrap();
            });
        });
        let herald = tokio::task::spawn_blocking(move || rx.recv().unwrap()).await.unwrap();
        sink.wait_for(n).await;
        let secs = start_at.elapsed().as_secs_f64();
        let (p50, p99) = latencies(&sent, sink);
        let h = herald.clone();
        std::thread::spawn(move || smol::block_on(h.shutdown(Duration::from_secs(1))))
            .join()
            .unwrap();
        return Sample {
            rate: n as f64 / secs,
            p50_ms: p50,
            p99_ms: p99,
        };
    }
    let herald = builder.start_tokio().await.unwrap();
    let port = herald.port("bench").unwrap();
    let start_at = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..SENDERS {
        tasks.push(tokio::spawn(send_share(port.clone(), s, n, body.clone(), sent.clone())));
    }
    for t in tasks {
        t.await.unwrap();
    }
    sink.wait_for(n).await;
    let secs = start_at.elapsed().as_secs_f64();
    let (p50, p99) = latencies(&sent, sink);
    herald.shutdown(Duration::from_secs(1)).await;
    Sample {
        rate: n as f64 / secs,
        p50_ms: p50,
        p99_ms: p99,
    }
}

/// The raw limit: `concurrency` tasks POSTing the same bodies with one reqwest client,
/// retrying a 503 at once.
async fn raw_run(sink: &Sink, cell: Cell, n: usize) -> Sample {
    let client = reqwest::Client::builder().tcp_nodelay(true).build().unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let url = sink.url();
    let start_at = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..cell.concurrency {
        let (client, next, url) = (client.clone(), next.clone(), url.clone());
        let body = Bytes::from(vec![b'x'; cell.body]);
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                loop {
                    let r = client
                        .post(&url)
                        .header("webhook-id", format!("evt-{i}"))
                        .body(body.clone())
                        .send()
                        .await
                        .unwrap();
                    if r.status().is_success() {
                        break;
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    sink.wait_for(n).await;
    Sample {
        rate: n as f64 / start_at.elapsed().as_secs_f64(),
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
    }
}

const NAIVE_EVENTS: redb::TableDefinition<'_, &str, &[u8]> = redb::TableDefinition::new("events");
const NAIVE_DONE: redb::TableDefinition<'_, &str, u64> = redb::TableDefinition::new("delivered");

/// The naive design a team writes first: one durable redb commit per event on send,
/// `tokio::spawn` per delivery (bounded by a semaphore), a backon retry loop, and a
/// second durable commit when delivered.
async fn naive_run(sink: &Sink, cell: Cell, n: usize) -> Sample {
    use backon::{ConstantBuilder, Retryable};
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(redb::Database::create(dir.path().join("naive.redb")).unwrap());
    let client = reqwest::Client::builder().tcp_nodelay(true).build().unwrap();
    let sem = Arc::new(tokio::sync::Semaphore::new(cell.concurrency));
    let url = sink.url();
    let sent = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let start_at = Instant::now();
    let mut senders = Vec::new();
    for s in 0..SENDERS {
        let (db, client, sem, url, sent) = (db.clone(), client.clone(), sem.clone(), url.clone(), sent.clone());
        let body = Bytes::from(vec![b'x'; cell.body]);
        senders.push(tokio::spawn(async move {
            for i in (s..n).step_by(SENDERS) {
                let id = format!("evt-{i}");
                let (db2, id2, body2) = (db.clone(), id.clone(), body.clone());
                tokio::task::spawn_blocking(move || {
                    let tx = db2.begin_write().unwrap();
                    tx.open_table(NAIVE_EVENTS)
                        .unwrap()
                        .insert(id2.as_str(), &body2[..])
                        .unwrap();
                    tx.commit().unwrap();
                })
                .await
                .unwrap();
                sent.lock().unwrap().push((id.clone(), Instant::now()));
                let (db, client, sem, url, body) = (db.clone(), client.clone(), sem.clone(), url.clone(), body.clone());
                tokio::spawn(async move {
                    let _permit = sem.acquire().await.unwrap();
                    let post = || async {
                        let r = client
                            .post(&url)
                            .header("webhook-id", &id)
                            .body(body.clone())
                            .send()
                            .await?;
                        r.error_for_status()
                    };
                    post.retry(
                        ConstantBuilder::default()
                            .with_delay(Duration::from_millis(10))
                            .with_max_times(20),
                    )
                    .await
                    .unwrap();
                    tokio::task::spawn_blocking(move || {
                        let tx = db.begin_write().unwrap();
                        tx.open_table(NAIVE_DONE).unwrap().insert(id.as_str(), 1).unwrap();
                        tx.commit().unwrap();
                    })
                    .await
                    .unwrap();
                });
            }
        }));
    }
    for t in senders {
        t.await.unwrap();
    }
    sink.wait_for(n).await;
    let secs = start_at.elapsed().as_secs_f64();
    let (p50, p99) = latencies(&sent, sink);
    Sample {
        rate: n as f64 / secs,
        p50_ms: p50,
        p99_ms: p99,
    }
}

/// fdatasync latency of a 4 KiB write, median of 200.
fn fsync_p50_us(dir: &std::path::Path) -> f64 {
    let mut f = std::fs::File::create(dir.join("fsync.probe")).unwrap();
    let block = [7u8; 4096];
    let mut t: Vec<f64> = (0..200)
        .map(|_| {
            let s = Instant::now();
            f.write_all(&block).unwrap();
            f.sync_data().unwrap();
            s.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    t.sort_by(f64::total_cmp);
    percentile(&t, 0.5)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    percentile(&v, 0.5)
}

fn main() {
    let quick = std::env::var_os("HERALD_BENCH_QUICK").is_some();
    let (rounds, n) = if quick { (1, 2_000) } else { (5, 20_000) };
    let dir = tempfile::tempdir().unwrap();
    println!(
        "# Herald end-to-end delivery benchmark ({})",
        if quick { "quick" } else { "full" }
    );
    println!(
        "machine: {} cores; fdatasync 4 KiB p50 {:.0} us; {rounds} round(s) of {n} events per cell, interleaved",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        fsync_p50_us(dir.path())
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let sink = Sink::start().await;
        let cells = [
            Cell { body: 256, concurrency: 16, fail_permille: 0 },
            Cell { body: 256, concurrency: 64, fail_permille: 0 },
            Cell { body: 16 * 1024, concurrency: 16, fail_permille: 0 },
            Cell { body: 16 * 1024, concurrency: 64, fail_permille: 0 },
            Cell { body: 256, concurrency: 64, fail_permille: 50 },
        ];
        println!();
        println!("| body | attempts in flight | 503 share | raw reqwest→hyper (ev/s) | Herald tokio (ev/s) | ratio | Herald smol (ev/s) | ratio | naive (ev/s) | Herald/naive | Herald accept→delivered p50 / p99 (ms) | naive p50 / p99 (ms) |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
        for cell in cells {
            let (mut raw, mut tok, mut smo, mut nai) = (vec![], vec![], vec![], vec![]);
            let (mut lat, mut nlat) = (vec![], vec![]);
            for _ in 0..rounds {
                sink.reset(cell.fail_permille);
                raw.push(raw_run(&sink, cell, n).await.rate);
                sink.reset(cell.fail_permille);
                let t = herald_run(&sink, cell, n, false).await;
                tok.push(t.rate);
                lat.push((t.p50_ms, t.p99_ms));
                sink.reset(cell.fail_permille);
                smo.push(herald_run(&sink, cell, n, true).await.rate);
                sink.reset(cell.fail_permille);
                let nv = naive_run(&sink, cell, n).await;
                nai.push(nv.rate);
                nlat.push((nv.p50_ms, nv.p99_ms));
            }
            let (raw, tok, smo, nai) = (median(raw), median(tok), median(smo), median(nai));
            let lp50 = median(lat.iter().map(|l| l.0).collect());
            let lp99 = median(lat.iter().map(|l| l.1).collect());
            let np50 = median(nlat.iter().map(|l| l.0).collect());
            let np99 = median(nlat.iter().map(|l| l.1).collect());
            println!(
                "| {} B | {} | {:.0} % | {raw:.0} | {tok:.0} | {:.2}× | {smo:.0} | {:.2}× | {nai:.0} | {:.1}× | {lp50:.1} / {lp99:.1} | {np50:.1} / {np99:.1} |",
                cell.body,
                cell.concurrency,
                cell.fail_permille as f64 / 10.0,
                tok / raw,
                smo / raw,
                tok / nai,
            );
        }
    });
}
