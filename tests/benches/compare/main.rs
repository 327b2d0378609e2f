//! Herald's benchmark harness (issue 8): every Herald figure next to its limit and its
//! peers, measured in the same run, interleaved, medians over rounds, reported as ratios.
//!
//! Item 6 of the issue, the engine's own cycle cost, is `cargo bench -p herald-core`
//! (`core/benches/engine.rs`); BENCHMARKS.md quotes it beside these.
//!
//! `cargo bench -p herald-tests --bench compare` runs the full comparison (5 rounds,
//! 1e6 stored deliveries; it writes `docs/benchmarks/results.md` and
//! `docs/benchmarks/throughput.svg`, which BENCHMARKS.md quotes);
//! `HERALD_BENCH_QUICK=1` runs a small version in under two minutes (CI runs it: it must
//! complete and print its tables; its figures are not checked; it writes its results
//! under `target/tmp/herald-bench-quick/`). `HERALD_BENCH_OUT=DIR`
//! writes the results there instead. For before/after runs of one change:
//! `HERALD_BENCH_ONLY=accept,e2e` (sections), `HERALD_BENCH_ROUNDS=2` (full sizes, fewer
//! rounds), `HERALD_BENCH_SYSTEMS=raw,tokio` (end-to-end systems).
//!
//! | file | measures |
//! |---|---|
//! | `machine.rs` | cores, file system, fdatasync latency at the start |
//! | `accept.rs` | 1: durable accept with 1, 64, 1024 senders vs raw redb and the peers |
//! | `e2e.rs` | 2: end-to-end delivery vs raw reqwest→hyper and the peers |
//! | `store_fill.rs` | the store sections 3 and 4 read (filled through `RedbStore::commit`) |
//! | `status.rs` | 3: status query latency, idle and under load, vs raw redb get |
//! | `memory.rs` | 4: RSS per pending delivery and restart time, in a child process |
//! | `peers/` | the limits (`raw.rs`) and the peers (`naive.rs`, `apalis.rs`) |
//! | `herald_setup.rs`, `senders.rs`, `sink.rs`, `stats.rs` | what the sections share |
//! | `report.rs`, `chart.rs` | the markdown tables and the SVG chart |

mod accept;
mod chart;
mod e2e;
mod herald_setup;
mod machine;
mod memory;
mod peers;
mod report;
mod senders;
mod sink;
mod stats;
mod status;
mod store_fill;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use machine::Machine;
use report::Table;

/// How big a run is.
struct Mode {
    name: &'static str,
    rounds: usize,
    accept: [accept::Sizes; 3],
    e2e: e2e::Sizes,
    /// Delivered and retrying deliveries stored for sections 3 and 4.
    stored: usize,
    queries: usize,
}

const QUICK: Mode = Mode {
    name: "quick",
    rounds: 1,
    accept: [
        accept::Sizes {
            senders: 1,
            herald: 300,
            slow: 300,
        },
        accept::Sizes {
            senders: 64,
            herald: 4_000,
            slow: 1_000,
        },
        accept::Sizes {
            senders: 1024,
            herald: 16_384,
            slow: 2_048,
        },
    ],
    e2e: e2e::Sizes {
        fast: 2_000,
        naive: 1_000,
        apalis: 300,
    },
    stored: 50_000,
    queries: 10_000,
};

const FULL: Mode = Mode {
    name: "full",
    rounds: 5,
    accept: [
        accept::Sizes {
            senders: 1,
            herald: 2_000,
            slow: 1_000,
        },
        accept::Sizes {
            senders: 64,
            herald: 20_000,
            slow: 4_000,
        },
        accept::Sizes {
            senders: 1024,
            herald: 65_536,
            slow: 8_192,
        },
    ],
    e2e: e2e::Sizes {
        fast: 20_000,
        naive: 5_000,
        apalis: 2_000,
    },
    stored: 1_000_000,
    queries: 100_000,
};

fn shell(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// Prints a table as soon as it is measured, and keeps it for the results file.
fn emit(tables: &mut Vec<Table>, new: impl IntoIterator<Item = Table>) {
    for t in new {
        println!("{}", t.markdown());
        tables.push(t);
    }
}

fn run() -> Result<(), String> {
    let quick = std::env::var("HERALD_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let mut mode = if quick { QUICK } else { FULL };
    // For before/after runs of one section: HERALD_BENCH_ROUNDS=2 with the full sizes.
    if let Some(rounds) = std::env::var("HERALD_BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()) {
        mode.rounds = rounds;
    }
    let mode = &mode;
    let wall = Instant::now();
    let dir = tempfile::Builder::new()
        .prefix("herald-bench-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .map_err(|e| e.to_string())?;
    let machine = Machine::probe(dir.path())?;
    let header = vec![
        format!("# Herald benchmark comparison ({} mode)", mode.name),
        format!(
            "run {} at commit {}; {} round(s) per cell, systems interleaved within each round, medians",
            shell("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            shell("git", &["rev-parse", "--short", "HEAD"]),
            mode.rounds
        ),
        format!("machine: {}", machine.describe()),
    ];
    for h in &header {
        println!("{h}");
    }
    println!();
    let mut tables = Vec::new();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    // For working on one section: HERALD_BENCH_ONLY=accept,e2e,memory,status.
    let only = std::env::var("HERALD_BENCH_ONLY").unwrap_or_default();
    let wanted = |s: &str| only.is_empty() || only.split(',').any(|o| o.trim() == s);
    let (accept_rows, e2e_rows) = rt.block_on(async {
        let sink = sink::Sink::start().await;
        let mut accept_rows = Vec::new();
        if wanted("accept") {
            accept_rows = accept::run(dir.path(), &mode.accept, mode.rounds).await?;
            emit(&mut tables, accept::tables(&accept_rows));
        }
        let mut e2e_rows = Vec::new();
        if wanted("e2e") {
            e2e_rows = e2e::run(dir.path(), &sink, mode.e2e, mode.rounds).await?;
            emit(&mut tables, e2e::tables(&e2e_rows));
        }
        if wanted("memory") || wanted("status") {
            let filled = tokio::task::block_in_place(|| store_fill::fill(dir.path(), mode.stored))?;
            println!(
                "(store filled through RedbStore::commit: {} delivered + {} retrying deliveries in {:.1} s)\n",
                filled.n,
                filled.n,
                filled.took.as_secs_f64()
            );
            if wanted("memory") {
                let memory =
                    tokio::task::block_in_place(|| memory::run(dir.path(), &filled.herald, filled.n, mode.rounds))?;
                emit(&mut tables, [memory::table(&memory)]);
            }
            if wanted("status") {
                let status_rows = status::run(&filled, &sink, mode.queries, mode.rounds).await?;
                emit(&mut tables, [status::table(&status_rows, filled.n)]);
            }
        }
        Ok::<_, String>((accept_rows, e2e_rows))
    })?;

    let out = match std::env::var_os("HERALD_BENCH_OUT") {
        Some(d) => PathBuf::from(d),
        None if quick => PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("herald-bench-quick"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/benchmarks"),
    };
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    if !accept_rows.is_empty() && !e2e_rows.is_empty() {
        chart::draw(&out.join("throughput.svg"), &accept_rows, &e2e_rows)?;
    }
    report::write(&out.join("results.md"), &header, &tables)?;
    println!(
        "wrote {} and {}",
        out.join("results.md").display(),
        out.join("throughput.svg").display()
    );
    println!("wall time {:.1} s", wall.elapsed().as_secs_f64());
    Ok(())
}

fn main() -> ExitCode {
    if let Ok(store) = std::env::var(memory::CHILD_ENV) {
        return match memory::child(&store) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("memory child failed: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            ExitCode::FAILURE
        }
    }
}
