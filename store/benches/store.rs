//! herald-store against raw redb on the same machine, in the same run (DESIGN.md §5:
//! report ratios, not bare times). Prints a markdown report.
//!
//! - Durable insert rate at batch sizes 1, 10, 100, 1000: `Store::commit` of `Accepted`
//!   changes against raw redb inserting, per event, one key (`port ‖ key`) with the same
//!   bytes herald stores for it (encoded event ‖ encoded record, read back from herald's
//!   file), in the same batches, each a `Durability::Immediate` commit, each side into a
//!   new file. Herald also writes its status index and counts; raw writes nothing else.
//!   The two alternate in blocks of commits, so that both meet the same disk.
//! - Status lookup latency, p50/p99, with N records: `Store::record` (read transaction,
//!   get, decode) against a raw read transaction and get of the same record bytes.
//! - Restore: `for_each_unfinished` over N unfinished deliveries, alone and feeding
//!   `Engine::restore_record`, each in a fresh process so its peak RSS (VmHWM) is its own.
//!
//! `HERALD_BENCH_N` sets N (default 1 000 000); `HERALD_BENCH_QUICK=1` runs a small,
//! fast version (N = 20 000, fewer commits). Run with
//! `cargo bench -p herald-store --bench store`.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use herald_core::{Change, DeliveryRecord, Engine, EngineConfig, EventKey, ExternalEvent, Timestamp};
use herald_store::{RedbOptions, RedbStore, Store};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

const PORT: &str = "orders";
const PAYLOAD: usize = 256;
const RAW: TableDefinition<'static, &[u8], &[u8]> = TableDefinition::new("raw");
const HERALD_EVENTS: TableDefinition<'static, &[u8], &[u8]> = TableDefinition::new("herald_events");
const HERALD_DELIVERIES: TableDefinition<'static, &[u8], &[u8]> = TableDefinition::new("herald_deliveries");
const CHILD_ENV: &str = "HERALD_BENCH_CHILD";

fn t0() -> Timestamp {
    Timestamp::from_secs(1_700_000_000)
}

/// Event `i` of a run: a 256-byte JSON payload and one metadata entry.
fn event(run: &str, i: u64) -> ExternalEvent {
    let mut payload = format!(r#"{{"run":"{run}","i":{i},"pad":""#).into_bytes();
    payload.resize(PAYLOAD - 2, b'x');
    payload.extend_from_slice(br#""}"#);
    ExternalEvent::builder("invoice.paid")
        .id(format!("{run}-{i}"))
        .payload(payload)
        .occurred_at(t0())
        .metadata("tenant", "acme")
        .build()
        .expect("valid event")
}

fn port_key(key: EventKey) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + PORT.len() + 16);
    k.push(PORT.len() as u8);
    k.extend_from_slice(PORT.as_bytes());
    k.extend_from_slice(&key.0);
    k
}

fn options() -> RedbOptions {
    RedbOptions::default()
}

fn raw_db(path: &Path) -> Database {
    let mut b = Database::builder();
    b.set_cache_size(options().cache_size);
    b.create(path).expect("raw database")
}

/// When the `i`-th event is accepted: each batch one millisecond after the previous one,
/// as a driver's clock would have it.
fn accepted_at(i: usize, batch: usize) -> Timestamp {
    Timestamp::from_millis(t0().as_millis() + (i / batch) as u64)
}

/// The `Accepted` changes of batch `c`.
fn accepted_batch(events: &[ExternalEvent], batch: usize, c: usize) -> Vec<(&'static str, Change)> {
    let at = accepted_at(c * batch, batch);
    events[c * batch..((c + 1) * batch).min(events.len())]
        .iter()
        .map(|e| (PORT, Change::Accepted { event: e.clone(), at }))
        .collect()
}

/// The bytes herald stored for each event: (key, encoded event ‖ encoded record).
fn stored_bytes(path: &Path, events: &[ExternalEvent], batch: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let db = Database::open(path).expect("herald file");
    let txn = db.begin_read().unwrap();
    let ev = txn.open_table(HERALD_EVENTS).unwrap();
    let de = txn.open_table(HERALD_DELIVERIES).unwrap();
    events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            // The event is filed under its acceptance time, the record by key.
            let k = port_key(e.key());
            let mut ek = k[..1 + PORT.len()].to_vec();
            ek.extend_from_slice(&accepted_at(i, batch).as_millis().to_be_bytes());
            ek.extend_from_slice(&e.key().0);
            let mut v = ev.get(ek.as_slice()).unwrap().unwrap().value().to_vec();
            v.extend_from_slice(de.get(k.as_slice()).unwrap().unwrap().value());
            (k, v)
        })
        .collect()
}

/// Raw redb: one durable commit inserting `items` into one table.
fn raw_commit(db: &Database, items: &[(Vec<u8>, Vec<u8>)]) {
    let mut txn = db.begin_write().unwrap();
    txn.set_durability(Durability::Immediate).unwrap();
    {
        let mut t = txn.open_table(RAW).unwrap();
        for (k, v) in items {
            t.insert(k.as_slice(), v.as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();
}

/// Inserts `commits` batches of `batch` events with herald and, the same bytes, with raw
/// redb, each into a new file, alternating blocks of commits between the two so that both
/// meet the same disk (another process's fsyncs hit both alike). Returns both rates.
fn insert_rates(dir: &Path, batch: usize, commits: usize, run: &str) -> (f64, f64) {
    let n = batch * commits;
    let events: Vec<ExternalEvent> = (0..n as u64).map(|i| event(run, i)).collect();
    // Learn the bytes herald stores, untimed, from a scratch file.
    let scratch = dir.join(format!("{run}-scratch.redb"));
    {
        let store = RedbStore::open_with(&scratch, &options()).expect("store");
        for c in 0..commits {
            store.commit(&accepted_batch(&events, batch, c)).expect("commit");
        }
    }
    let items = stored_bytes(&scratch, &events, batch);
    let _ = std::fs::remove_file(&scratch);

    let (hp, rp) = (
        dir.join(format!("{run}-herald.redb")),
        dir.join(format!("{run}-raw.redb")),
    );
    let store = RedbStore::open_with(&hp, &options()).expect("store");
    let raw = raw_db(&rp);
    let block = (commits / 30).max(1);
    let (mut herald_time, mut raw_time) = (Duration::ZERO, Duration::ZERO);
    for first in (0..commits).step_by(block) {
        let last = (first + block).min(commits);
        let batches: Vec<_> = (first..last).map(|c| accepted_batch(&events, batch, c)).collect();
        let start = Instant::now();
        for b in &batches {
            black_box(store.commit(b).expect("commit"));
        }
        herald_time += start.elapsed();
        let start = Instant::now();
        for c in first..last {
            raw_commit(&raw, &items[c * batch..((c + 1) * batch).min(n)]);
        }
        raw_time += start.elapsed();
    }
    drop((store, raw));
    let _ = std::fs::remove_file(hp);
    let _ = std::fs::remove_file(rp);
    (n as f64 / herald_time.as_secs_f64(), n as f64 / raw_time.as_secs_f64())
}

fn inserts_section(dir: &Path, quick: bool) {
    println!("## Durable inserts (payload {PAYLOAD} B, one fsync'd commit per batch)\n");
    println!("| batch size | herald-store inserts/s | raw redb inserts/s | ratio |");
    println!("|---:|---:|---:|---:|");
    for (batch, commits) in [(1usize, 3_000usize), (10, 1_500), (100, 450), (1000, 90)] {
        let commits = if quick { commits / 10 } else { commits };
        let (h, r) = insert_rates(dir, batch, commits, &format!("b{batch}"));
        println!("| {batch} | {h:.0} | {r:.0} | {:.2} |", h / r);
    }
    println!();
}

/// Builds a herald store with `n` pending deliveries, in batches of 10 000.
fn populate(path: &Path, n: u64) -> Duration {
    let store = RedbStore::open_with(path, &options()).expect("store");
    let start = Instant::now();
    let mut i = 0;
    while i < n {
        let end = (i + 10_000).min(n);
        let events: Vec<ExternalEvent> = (i..end).map(|j| event("big", j)).collect();
        let changes: Vec<(&str, Change)> = events
            .iter()
            .map(|e| {
                (
                    PORT,
                    Change::Accepted {
                        event: e.clone(),
                        at: Timestamp::from_millis(t0().as_millis() + i),
                    },
                )
            })
            .collect();
        store.commit(&changes).expect("commit");
        i = end;
    }
    start.elapsed()
}

/// Copies herald's delivery records into a raw table with the same keys.
fn raw_copy(herald: &Path, raw: &Path) {
    let src = Database::open(herald).expect("herald file");
    let dst = raw_db(raw);
    let read = src.begin_read().unwrap();
    let table = read.open_table(HERALD_DELIVERIES).unwrap();
    let mut rows = table.iter().unwrap().peekable();
    while rows.peek().is_some() {
        let txn = dst.begin_write().unwrap();
        {
            let mut t = txn.open_table(RAW).unwrap();
            for row in rows.by_ref().take(50_000) {
                let (k, v) = row.unwrap();
                t.insert(k.value(), v.value()).unwrap();
            }
        }
        txn.commit().unwrap();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn micros(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e6)
}

/// A sample of keys of the populated store, spread over it by a fixed stride.
fn sample_keys(n: u64, count: u64) -> Vec<EventKey> {
    let stride = (7_919 % n.max(1)) | 1;
    (0..count).map(|s| event("big", (s * stride) % n).key()).collect()
}

fn lookup_section(herald: &Path, raw: &Path, n: u64, quick: bool) {
    let samples = if quick { 20_000 } else { 200_000 };
    let keys = sample_keys(n, samples);
    let raw_keys: Vec<Vec<u8>> = keys.iter().map(|k| port_key(*k)).collect();

    let store = RedbStore::open_with(herald, &options()).expect("store");
    let db = {
        let mut b = Database::builder();
        b.set_cache_size(options().cache_size);
        b.open(raw).expect("raw")
    };
    // Warm both caches alike.
    for (k, rk) in keys.iter().zip(&raw_keys).take(20_000) {
        black_box(store.record(PORT, *k).unwrap());
        let txn = db.begin_read().unwrap();
        black_box(
            txn.open_table(RAW)
                .unwrap()
                .get(rk.as_slice())
                .unwrap()
                .map(|v| v.value().len()),
        );
    }
    let mut h = Vec::with_capacity(keys.len());
    let mut r = Vec::with_capacity(keys.len());
    for (k, rk) in keys.iter().zip(&raw_keys) {
        let s = Instant::now();
        let rec = store.record(PORT, *k).unwrap();
        h.push(s.elapsed());
        assert!(rec.is_some());
        let s = Instant::now();
        let txn = db.begin_read().unwrap();
        let len = txn
            .open_table(RAW)
            .unwrap()
            .get(rk.as_slice())
            .unwrap()
            .map(|v| v.value().len());
        drop(txn);
        r.push(s.elapsed());
        assert!(len.is_some());
    }
    h.sort();
    r.sort();
    println!("## Status lookup with {n} records ({samples} lookups, interleaved)\n");
    println!("| | herald-store `record` µs | raw redb read txn + get µs | ratio |");
    println!("|---|---:|---:|---:|");
    for (name, p) in [("p50", 0.5), ("p99", 0.99)] {
        let (a, b) = (percentile(&h, p), percentile(&r, p));
        println!(
            "| {name} | {} | {} | {:.2} |",
            micros(a),
            micros(b),
            a.as_secs_f64() / b.as_secs_f64()
        );
    }
    println!();
}

fn vm_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// In a child process: open, stream the unfinished deliveries (into an engine or not),
/// print one line of figures.
fn restore_child(mode: &str, path: &Path) {
    let before = vm_kib("VmHWM:");
    let start = Instant::now();
    let store = RedbStore::open_with(path, &options()).expect("store");
    let opened = start.elapsed();
    let after_open = vm_kib("VmRSS:");
    let start = Instant::now();
    let n = if mode == "engine" {
        let mut engine = Engine::new(EngineConfig::default(), t0()).expect("engine");
        let n = store
            .for_each_unfinished(PORT, &mut |r: DeliveryRecord| engine.restore_record(&r))
            .expect("restore");
        engine.handle_timeout(t0());
        assert_eq!(engine.tracked_count() as u64, n);
        black_box(&engine);
        n
    } else {
        let mut attempts = 0u64;
        let n = store
            .for_each_unfinished(PORT, &mut |r: DeliveryRecord| attempts += u64::from(r.attempts))
            .expect("restore");
        black_box(attempts);
        n
    };
    let took = start.elapsed();
    println!(
        "restore {n} {} {} {before} {after_open} {}",
        opened.as_secs_f64(),
        took.as_secs_f64(),
        vm_kib("VmHWM:")
    );
}

fn restore_section(herald: &Path, n: u64) {
    println!(
        "## Restore of {n} unfinished deliveries (fresh process each; redb cache {} MiB)\n",
        options().cache_size >> 20
    );
    println!("| what | open (verify) s | stream s | records/s | peak RSS MiB | RSS after open MiB |");
    println!("|---|---:|---:|---:|---:|---:|");
    for mode in ["stream", "engine"] {
        let out = Command::new(std::env::current_exe().unwrap())
            .env(CHILD_ENV, format!("{mode}:{}", herald.display()))
            .output()
            .expect("child");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.starts_with("restore "))
            .unwrap_or_else(|| panic!("restore child failed: {}", String::from_utf8_lossy(&out.stderr)));
        let f: Vec<f64> = line.split_whitespace().skip(1).map(|x| x.parse().unwrap()).collect();
        let what = if mode == "stream" {
            "`for_each_unfinished` alone"
        } else {
            "into `Engine::restore_record`"
        };
        println!(
            "| {what} | {:.2} | {:.2} | {:.0} | {:.0} | {:.0} |",
            f[1],
            f[2],
            f[0] / f[2],
            f[5] / 1024.0,
            f[4] / 1024.0
        );
    }
    let size = std::fs::metadata(herald).map(|m| m.len()).unwrap_or(0);
    println!(
        "\nStore file: {:.0} MiB for {n} deliveries.\n",
        size as f64 / (1 << 20) as f64
    );
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let (mode, path) = spec.split_once(':').expect("mode:path");
        restore_child(mode, Path::new(path));
        return;
    }
    let quick = std::env::var("HERALD_BENCH_QUICK").is_ok_and(|v| v == "1");
    let n: u64 = std::env::var("HERALD_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 20_000 } else { 1_000_000 });
    let dir = tempfile::tempdir_in(std::env::var_os("HERALD_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from))
        .expect("temp dir");
    println!(
        "# herald-store benchmark (N = {n}{})\n",
        if quick { ", quick" } else { "" }
    );
    inserts_section(dir.path(), quick);

    let herald = dir.path().join("big-herald.redb");
    let raw = dir.path().join("big-raw.redb");
    let took = populate(&herald, n);
    println!(
        "Populated {n} pending deliveries in {:.1} s ({:.0}/s, batches of 10 000).\n",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
    raw_copy(&herald, &raw);
    lookup_section(&herald, &raw, n, quick);
    restore_section(&herald, n);
}
