//! Engine micro-benchmarks: the cost of one accept → attempt → outcome cycle, of
//! `poll_timeout` and `handle_timeout` with 1e6 deliveries scheduled, and the memory the
//! engine holds per scheduled delivery.
//!
//! `cargo bench -p herald-core` (set `HERALD_BENCH_N` to change the 1e6).

use std::time::Duration;

use divan::Bencher;
use herald_core::{
    AttemptReport, DeliveryRecord, Engine, EngineConfig, EventId, ExternalEvent, Input, Observation, Output, Timestamp,
};

const T0: Timestamp = Timestamp::from_secs(1_700_000_000);

fn scheduled_count() -> usize {
    std::env::var("HERALD_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn event(i: u64) -> ExternalEvent {
    ExternalEvent::builder("bench.event")
        .id(format!("evt_{i:012}"))
        .payload(vec![b'x'; 256])
        .occurred_at(T0)
        .build()
        .unwrap()
}

/// An engine with `n` deliveries due within the next hour (as after a restart).
fn engine_with_scheduled(n: usize) -> Engine {
    let mut engine = Engine::new(EngineConfig::default(), T0).unwrap();
    let template = DeliveryRecord::accepted(&event(0), T0);
    for i in 0..n as u64 {
        let mut r = template.clone();
        r.id = EventId::new(format!("evt_{i:012}")).unwrap();
        r.next_attempt_at = Some(T0.saturating_add(Duration::from_millis(3_600_000 * i / n as u64 + 1)));
        engine.restore_record(&r);
    }
    engine
}

fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn main() {
    let n = scheduled_count();
    let before = resident_bytes();
    let engine = engine_with_scheduled(n);
    let after = resident_bytes();
    println!("engine memory with {n} scheduled deliveries:");
    println!(
        "  by capacity: {:.1} bytes per delivery ({} bytes)",
        engine.heap_bytes() as f64 / n as f64,
        engine.heap_bytes()
    );
    if let (Some(b), Some(a)) = (before, after) {
        println!(
            "  process RSS growth: {:.1} bytes per delivery",
            a.saturating_sub(b) as f64 / n as f64
        );
    }
    drop(engine);
    divan::main();
}

/// One full cycle on a warm engine: send, drain (accept + start), report 200, drain.
#[divan::bench(sample_count = 200, sample_size = 500)]
fn accept_attempt_deliver_cycle(bencher: Bencher<'_, '_>) {
    let mut engine = Engine::new(EngineConfig::default(), T0).unwrap();
    let mut i = 0u64;
    bencher
        .with_inputs(|| {
            i += 1;
            event(i)
        })
        .bench_local_values(|ev| {
            let key = ev.key();
            engine.handle_input(Input::Send { event: ev, prior: None }, T0).unwrap();
            let mut attempt = 0;
            while let Some(o) = engine.poll_output() {
                if let Output::Attempt(a) = o {
                    attempt = a.attempt;
                }
            }
            let report = AttemptReport::new(Observation::Http {
                status: 200,
                retry_after: None,
            });
            engine.handle_input(Input::Report { key, attempt, report }, T0).unwrap();
            while let Some(o) = engine.poll_output() {
                divan::black_box(o);
            }
        });
}

#[divan::bench]
fn poll_timeout_with_1e6_scheduled(bencher: Bencher<'_, '_>) {
    let engine = engine_with_scheduled(scheduled_count());
    bencher.bench_local(|| divan::black_box(&engine).poll_timeout());
}

/// `handle_timeout` when nothing is due yet: the cost of a spurious wake-up.
#[divan::bench]
fn handle_timeout_nothing_due_with_1e6_scheduled(bencher: Bencher<'_, '_>) {
    let mut engine = engine_with_scheduled(scheduled_count());
    bencher.bench_local(|| engine.handle_timeout(T0));
}
