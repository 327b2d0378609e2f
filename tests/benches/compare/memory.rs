//! Section 4, memory and restart: a fresh process (this bench binary again, so that no
//! other measurement's allocations count) starts Herald on the filled store, which holds
//! n deliveries retrying in one hour, and answers one status query. Reported: the
//! process's resident-set growth per pending delivery over that start (from
//! /proc/self/statm, payloads stay in the store), its peak (VmHWM), and the time from
//! `Herald::builder()…start_tokio()` to the first answered status (restart and resume).
//! The same child on an empty store gives the growth that does not depend on the
//! deliveries (runtime threads, redb's cache, buffers); a child that only opens the
//! store file shows how much of the restart is opening it (redb verifies every page),
//! and a restart on the store opened with `verify_on_open = false` (through
//! `HeraldBuilder::store`) what is left without that check.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald::{DeliveryStatus, EventId, Herald};
use herald_store::{RedbOptions, RedbStore};

use crate::herald_setup::{PORT, webhook_port};
use crate::report::Table;
use crate::stats::median;

/// Set in the child's environment: the store to restart on, and its pending count.
pub(crate) const CHILD_ENV: &str = "HERALD_BENCH_MEMORY_CHILD";
const COUNT_ENV: &str = "HERALD_BENCH_MEMORY_N";
/// Set when the child only opens the store (how much of a restart is opening the file).
const OPEN_ONLY_ENV: &str = "HERALD_BENCH_MEMORY_OPEN_ONLY";
/// Set when the child opens the store without verifying its checksums
/// (`RedbOptions::verify_on_open = false`, handed to `HeraldBuilder::store`).
const NO_VERIFY_ENV: &str = "HERALD_BENCH_MEMORY_NO_VERIFY";

/// Medians over rounds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Row {
    pub(crate) n: usize,
    pub(crate) bytes_per_delivery: f64,
    /// Less the growth of a restart on an empty store.
    pub(crate) marginal_bytes: f64,
    pub(crate) peak_mib: f64,
    pub(crate) restart_secs: f64,
    /// Opening the file alone (`RedbStore::open`, which verifies every page checksum).
    pub(crate) open_secs: f64,
    /// The restart with `verify_on_open = false`.
    pub(crate) unverified_secs: f64,
    pub(crate) empty_restart_secs: f64,
}

fn status_kib(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// The child's work: restart on the store in `CHILD_ENV` and print one result line.
pub(crate) fn child(store: &str) -> Result<(), String> {
    if std::env::var_os(OPEN_ONLY_ENV).is_some() {
        let start = Instant::now();
        let opened = RedbStore::open(store).map_err(|e| e.to_string())?;
        println!("memory-child open_s={}", start.elapsed().as_secs_f64());
        drop(opened);
        return Ok(());
    }
    let n: usize = std::env::var(COUNT_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or("pending count missing")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let before = resident_bytes().ok_or("no /proc/self/statm")?;
        let start = Instant::now();
        let builder = if std::env::var_os(NO_VERIFY_ENV).is_some() {
            let options = RedbOptions {
                verify_on_open: false,
                ..RedbOptions::default()
            };
            Herald::builder().store(Arc::new(
                RedbStore::open_with(store, &options).map_err(|e| e.to_string())?,
            ))
        } else {
            Herald::builder().store_path(store)
        };
        let h = builder
            .port(webhook_port("http://127.0.0.1:9/never", 64))
            .start_tokio()
            .await
            .map_err(|e| e.to_string())?;
        let port = h.port(PORT).ok_or("no bench port")?;
        let id = EventId::new(format!("later-{}", n.max(1) - 1)).map_err(|e| e.to_string())?;
        let status = port.status(&id).await.map_err(|e| e.to_string())?;
        let took = start.elapsed();
        let expected = (n > 0).then_some(DeliveryStatus::Retrying);
        if status.as_ref().map(|s| s.status) != expected {
            return Err(format!("{id} should be {expected:?} after the restart, is {status:?}"));
        }
        let after = resident_bytes().ok_or("no /proc/self/statm")?;
        let peak = status_kib("VmHWM:").unwrap_or(0);
        println!(
            "memory-child growth={} peak_kib={peak} restart_s={}",
            after.saturating_sub(before),
            took.as_secs_f64()
        );
        h.shutdown(Duration::ZERO).await;
        Ok(())
    })
}

/// What a child run does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Child {
    Restart,
    RestartUnverified,
    OpenOnly,
}

/// Runs the child on `store` and returns its result line.
fn child_line(store: &Path, n: usize, what: Child) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(&exe);
    cmd.env(CHILD_ENV, store).env(COUNT_ENV, n.to_string());
    match what {
        Child::Restart => {}
        Child::RestartUnverified => {
            cmd.env(NO_VERIFY_ENV, "1");
        }
        Child::OpenOnly => {
            cmd.env(OPEN_ONLY_ENV, "1");
        }
    }
    let out = cmd.output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find(|l| l.starts_with("memory-child ")).ok_or_else(|| {
        format!(
            "memory child failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })?;
    Ok(line.to_owned())
}

/// A number `name=value` of a child's result line.
fn field(line: &str, name: &str) -> Result<f64, String> {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
        .ok_or_else(|| format!("no {name} in {line:?}"))
}

/// One child run: (RSS growth bytes, peak KiB, restart seconds).
fn child_run(store: &Path, n: usize, what: Child) -> Result<(f64, f64, f64), String> {
    let line = child_line(store, n, what)?;
    Ok((
        field(&line, "growth")?,
        field(&line, "peak_kib")?,
        field(&line, "restart_s")?,
    ))
}

/// Runs the child `rounds` times on `store` holding `n` pending deliveries, and as many
/// times on an empty store in `dir` (the growth that does not depend on the deliveries:
/// threads, caches, buffers), alternating.
pub(crate) fn run(dir: &Path, store: &Path, n: usize, rounds: usize) -> Result<Row, String> {
    let empty = dir.join("memory-empty.redb");
    let (mut per, mut marginal, mut peak, mut secs, mut empty_secs) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut open_secs, mut unverified_secs) = (vec![], vec![]);
    for _ in 0..rounds {
        open_secs.push(field(&child_line(store, n, Child::OpenOnly)?, "open_s")?);
        unverified_secs.push(child_run(store, n, Child::RestartUnverified)?.2);
        let _ = std::fs::remove_file(&empty);
        let base = child_run(&empty, 0, Child::Restart)?;
        let full = child_run(store, n, Child::Restart)?;
        per.push(full.0 / n as f64);
        marginal.push((full.0 - base.0) / n as f64);
        peak.push(full.1 / 1024.0);
        secs.push(full.2);
        empty_secs.push(base.2);
    }
    Ok(Row {
        n,
        bytes_per_delivery: median(per),
        marginal_bytes: median(marginal),
        peak_mib: median(peak),
        restart_secs: median(secs),
        open_secs: median(open_secs),
        unverified_secs: median(unverified_secs),
        empty_restart_secs: median(empty_secs),
    })
}

/// The section's table.
pub(crate) fn table(r: &Row) -> Table {
    let mut t = Table::new(
        &format!(
            "Memory and restart with {} deliveries pending (retrying in one hour)",
            r.n
        ),
        &[
            "RSS growth per pending delivery (target ≤ 256 B)",
            "the same less an empty store's restart",
            "peak RSS of the process",
            "restart → first status answered (target ≤ 3 s)",
            "of which opening the file",
            "restart without verifying checksums on open",
            "the same on an empty store",
        ],
    );
    t.row(vec![
        format!("{:.0} B", r.bytes_per_delivery),
        format!("{:.0} B", r.marginal_bytes),
        format!("{:.0} MiB", r.peak_mib),
        format!("{:.2} s", r.restart_secs),
        format!("{:.2} s", r.open_secs),
        format!("{:.2} s", r.unverified_secs),
        format!("{:.2} s", r.empty_restart_secs),
    ]);
    t
}
