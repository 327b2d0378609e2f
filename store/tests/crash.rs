//! A real crash test. A child process (this test binary, re-executed with
//! `HERALD_CRASH_CHILD` set) commits batches in a loop and prints `ack N` once batch N's
//! commit has returned. The parent kills it with SIGKILL at random moments, at least
//! [`KILLS`] times, and after each kill reopens the file and checks that every
//! acknowledged batch is there (at most one more, whose acknowledgement the kill cut
//! off), that the store equals a model of those batches, and that the file passes redb's
//! and the store's integrity checks. The first kills can land while the file is being
//! created.
//!
//! Runs without libtest (`harness = false`), so the child's stdout is a plain pipe.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use herald_core::{Change, ExhaustedBy, OutcomeClass, Transition};
use herald_store::{RedbStore, Store};
use support::{Model, accepted, assert_matches, at, event_sized, finished, started};

const KILLS: u32 = 24;
const CHILD_ENV: &str = "HERALD_CRASH_CHILD";
const FROM_ENV: &str = "HERALD_CRASH_FROM";
const PORTS: [&str; 2] = ["orders", "billing"];
const PER_BATCH: u64 = 4;

fn id(batch: u64, j: u64) -> String {
    format!("b{batch}-e{j}")
}

fn port(j: u64) -> &'static str {
    PORTS[(j % 2) as usize]
}

fn key(batch: u64, j: u64) -> herald_core::EventKey {
    herald_core::EventId::new(id(batch, j)).unwrap().key()
}

/// Batch `n` of the workload, a pure function of `n`: it accepts four events (one of
/// them large enough to span pages) and moves the events of earlier batches along, so
/// that every kind of change is in flight when a kill lands.
fn batch(n: u64) -> Vec<(&'static str, Change)> {
    let t = at(n * 1_000);
    let mut out = Vec::new();
    for j in 0..PER_BATCH {
        let size = if j == 3 { 9_000 } else { 100 + 50 * (n % 7) as usize };
        out.push((port(j), accepted(&event_sized(&id(n, j), 0, size), t)));
    }
    let back = |k: u64| n.checked_sub(k);
    if let Some(b) = back(1) {
        for j in 0..PER_BATCH {
            out.push((port(j), started(key(b, j), 1, t)));
        }
    }
    if let Some(b) = back(2) {
        let retry = Transition::RetryAt(at(n * 1_000 + 5_000));
        for (j, class, next) in [
            (0, OutcomeClass::Delivered, Transition::Delivered),
            (1, OutcomeClass::Retryable, retry),
            (2, OutcomeClass::Permanent, Transition::Failed),
            (
                3,
                OutcomeClass::Retryable,
                Transition::Exhausted(ExhaustedBy::MaxAttempts),
            ),
        ] {
            out.push((port(j), finished(key(b, j), 1, t, class, next)));
        }
    }
    if let Some(b) = back(3) {
        out.push((port(1), started(key(b, 1), 2, t)));
        out.push((port(2), Change::Redriven { key: key(b, 2), at: t }));
    }
    if let Some(b) = back(4) {
        out.push((
            port(1),
            finished(key(b, 1), 2, t, OutcomeClass::Delivered, Transition::Delivered),
        ));
    }
    out
}

/// Whether batch `n` is in the store (batches are all or nothing; its first event tells).
fn has_batch(store: &RedbStore, n: u64) -> bool {
    store.record(port(0), key(n, 0)).unwrap().is_some()
}

/// The child: commit batches from `HERALD_CRASH_FROM` on, acknowledging each, forever.
fn child(path: &Path) -> ! {
    let store = RedbStore::open(path).unwrap_or_else(|e| {
        eprintln!("child: {e}");
        std::process::exit(2)
    });
    let mut n: u64 = std::env::var(FROM_ENV).ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    // The previous child may have committed one batch it could not acknowledge.
    while has_batch(&store, n) {
        n += 1;
    }
    let mut out = std::io::stdout().lock();
    loop {
        if let Err(e) = store.commit(&batch(n)) {
            eprintln!("child: batch {n}: {e}");
            std::process::exit(2);
        }
        writeln!(out, "ack {n}")
            .and_then(|()| out.flush())
            .unwrap_or_else(|_| std::process::exit(3));
        n += 1;
    }
}

/// splitmix64, seeded per run (printed, and replayable with `HERALD_CRASH_SEED`).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}

/// Runs one child life: spawn, let it work for a random while, SIGKILL. Returns the last
/// batch it acknowledged, if any.
fn one_life(path: &Path, from: u64, first: bool, rng: &mut Rng) -> Option<u64> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, path)
        .env(FROM_ENV, from.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let n: u64 = line
                .strip_prefix("ack ")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected child output {line:?}"));
            if tx.send(n).is_err() {
                break;
            }
        }
    });
    // Kill at a random moment: in the first life and in one of six others a few
    // milliseconds after the start (before or while the child opens, or creates, the
    // file), otherwise at a random point after its first acknowledgement.
    let early = first || rng.below(6) == 0;
    let mut last = None;
    if !early {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(n) => last = Some(n),
            Err(e) => panic!("the child acknowledged nothing: {e}"),
        }
    }
    let life = Duration::from_millis(if early { rng.below(15) } else { rng.below(60) });
    let deadline = Instant::now() + life;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(n) => last = Some(n),
            Err(mpsc::RecvTimeoutError::Timeout) => break,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().unwrap();
                panic!("the child stopped by itself: {status}");
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    // Acknowledgements printed before the kill still count.
    last.into_iter().chain(rx.try_iter()).max()
}

fn a_killed_writer_loses_no_acknowledged_batch() {
    let seed = std::env::var("HERALD_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("crash test seed {seed} (replay with HERALD_CRASH_SEED={seed})");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.redb");

    let mut acked: Option<u64> = None;
    let mut model = Model::default();
    let mut modelled: u64 = 0; // batches applied to `model`
    let mut kills_mid_run = 0;
    for kill in 0..KILLS {
        let from = acked.map_or(0, |a| a + 1);
        let last = one_life(&path, from, kill == 0, &mut rng);
        if let Some(l) = last {
            assert!(acked.is_none_or(|a| l > a), "kill {kill}: acknowledgements went back");
            acked = Some(l);
            kills_mid_run += 1;
        }
        if !path.exists() {
            assert_eq!(acked, None, "kill {kill}: the file is gone after acknowledged batches");
            continue;
        }

        let mut store = RedbStore::open(&path).unwrap_or_else(|e| panic!("kill {kill}: reopen failed: {e}"));
        let mut durable = acked.map_or(0, |a| a + 1);
        while has_batch(&store, durable) {
            durable += 1;
        }
        assert!(
            durable <= acked.map_or(0, |a| a + 1) + 1,
            "kill {kill}: {durable} batches found, {acked:?} acknowledged"
        );
        if let Some(a) = acked {
            for n in 0..=a {
                assert!(has_batch(&store, n), "kill {kill}: acknowledged batch {n} is missing");
            }
        }
        while modelled < durable {
            assert!(model.apply(&batch(modelled)), "the workload is valid");
            modelled += 1;
        }
        for ((p, k), e) in &model.entries {
            assert_eq!(store.record(p, *k).unwrap().as_ref(), Some(&e.record), "kill {kill}");
        }
        let report = store
            .check_integrity()
            .unwrap_or_else(|e| panic!("kill {kill}: integrity check failed: {e}"));
        assert_eq!(report.deliveries, model.entries.len() as u64, "kill {kill}");
        if kill + 1 == KILLS {
            assert_matches(&store, &model);
        }
        // An unacknowledged batch that made it is the next child's starting point.
        acked = durable.checked_sub(1).or(acked);
        drop(store);
    }
    println!("{KILLS} kills, {kills_mid_run} with acknowledged batches, {modelled} batches durable");
    assert!(
        kills_mid_run >= KILLS / 2,
        "too few kills landed mid-run: {kills_mid_run}"
    );
    assert!(modelled > u64::from(KILLS), "too little progress: {modelled} batches");
}

fn main() {
    if let Some(path) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&path));
    }
    // `cargo test -- --list` and name filters: this binary has one test.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        println!("a_killed_writer_loses_no_acknowledged_batch: test");
        return;
    }
    if let Some(filter) = args.iter().find(|a| !a.starts_with('-'))
        && !"a_killed_writer_loses_no_acknowledged_batch".contains(filter.as_str())
    {
        return;
    }
    let started = Instant::now();
    a_killed_writer_loses_no_acknowledged_batch();
    println!(
        "test a_killed_writer_loses_no_acknowledged_batch ... ok ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
}
