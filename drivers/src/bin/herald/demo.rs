//! `herald demo`: a few thousand signed webhooks to a local receiver that fails on
//! purpose; a progress bar while they settle; a table of what happened.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use herald::core::Jitter;
use herald::transport::webhook::{WebhookConfig, WebhookSecret};
use herald::{DeliveryStatus, ExternalEvent, Herald, PortConfig, RetryPolicy};
use indicatif::{ProgressBar, ProgressStyle};

use crate::demo_receiver::DemoReceiver;

/// The Standard Webhooks documentation's example secret: fine for a local demo.
const DEMO_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

#[derive(clap::Args, Debug)]
pub(crate) struct DemoArgs {
    /// How many events to send.
    #[arg(long, default_value_t = 3000)]
    events: u64,
    /// Where to write the database (default: a new folder under the system's temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// No progress bar (for logs and tests).
    #[arg(long)]
    quiet: bool,
}

pub(crate) async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.events > 0, "--events must be at least 1");
    let dir = match args.dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("herald-demo-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let db = dir.join("herald-demo.redb");

    let receiver = DemoReceiver::start(WebhookSecret::parse(DEMO_SECRET)?).await?;
    let url = format!("http://{}/webhook", receiver.addr);
    let webhook = WebhookConfig::builder(&url)
        .secret(DEMO_SECRET)
        .allow_private_network(true)
        .build()?;
    let policy = RetryPolicy::fixed(vec![
        Duration::from_millis(200),
        Duration::from_millis(500),
        Duration::from_secs(1),
    ])
    .jitter(Jitter::Equal)
    .max_attempts(5)
    .attempt_timeout(Duration::from_secs(1));

    let settled = Arc::new(AtomicU64::new(0));
    let ended_at: Arc<Mutex<BTreeMap<String, Instant>>> = Arc::default();
    let (count, ends) = (settled.clone(), ended_at.clone());
    let port = PortConfig::webhook("demo", webhook)?
        .policy(policy)
        .max_in_flight(64)
        .on_status_change(move |change| {
            if change.result.status.is_terminal() {
                count.fetch_add(1, Ordering::Relaxed);
                let mut ends = ends.lock().unwrap_or_else(|e| e.into_inner());
                ends.insert(change.result.event_id.to_string(), Instant::now());
            }
        });
    let herald = Herald::builder().store_path(&db).port(port).start_tokio().await?;
    let port = herald.port("demo").context("the demo port")?;

    println!("Herald demo: {} events → {url}", args.events);
    println!("The receiver verifies every signature and fails on purpose: 503s, 429s with Retry-After,");
    println!("500s, attempts that time out, and 1 % permanent 400s. Retries: 200 ms, 500 ms, 1 s (5 attempts).\n");

    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(args.events)
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} settled {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let sent_at: Arc<Mutex<BTreeMap<String, Instant>>> = Arc::default();
    let mut senders = Vec::new();
    for s in 0..64u64 {
        let (port, sent_at) = (port.clone(), sent_at.clone());
        let n = args.events;
        senders.push(tokio::spawn(async move {
            for i in (s..n).step_by(64) {
                let event = ExternalEvent::builder("demo.order.created")
                    .id(format!("demo-{i}"))
                    .payload(format!(r#"{{"order":{i},"total_cents":{}}}"#, 1000 + i % 9000).into_bytes())
                    .occurred_at(herald::now())
                    .build()?;
                let id = event.id().to_string();
                port.send(event).await?;
                sent_at
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id, Instant::now());
            }
            anyhow::Ok(())
        }));
    }
    for s in senders {
        s.await??;
    }
    let accepted_in = started.elapsed();
    while settled.load(Ordering::Relaxed) < args.events {
        bar.set_position(settled.load(Ordering::Relaxed));
        tokio::time::sleep(Duration::from_millis(50)).await;
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "the demo did not settle within 2 minutes"
        );
    }
    bar.set_position(args.events);
    bar.finish_with_message("done");
    let total = started.elapsed();

    // Read the outcome back from the store, as an operator would.
    let mut by_status: BTreeMap<DeliveryStatus, (u64, u64)> = BTreeMap::new();
    let mut codes: BTreeMap<String, u64> = BTreeMap::new();
    let mut latencies = Vec::new();
    {
        let sent = sent_at.lock().unwrap_or_else(|e| e.into_inner());
        let ends = ended_at.lock().unwrap_or_else(|e| e.into_inner());
        for (id, at) in sent.iter() {
            if let Some(end) = ends.get(id) {
                latencies.push(end.saturating_duration_since(*at));
            }
        }
    }
    latencies.sort();
    for i in 0..args.events {
        let id = herald::EventId::new(format!("demo-{i}"))?;
        let history = port.history(&id).await?.context("a sent event is in the store")?;
        let entry = by_status.entry(history.result.status).or_default();
        entry.0 += 1;
        entry.1 += history.attempts.len() as u64;
        for a in &history.attempts {
            *codes.entry(a.outcome.code.clone()).or_default() += 1;
        }
    }
    herald.shutdown(Duration::from_secs(2)).await;

    let pct = |p: f64| {
        latencies
            .get(((latencies.len().max(1) - 1) as f64 * p) as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    println!(
        "\n{:<12} {:>8} {:>10} {:>16}",
        "status", "events", "attempts", "attempts/event"
    );
    for (status, (events, attempts)) in &by_status {
        println!(
            "{:<12} {:>8} {:>10} {:>16.2}",
            status.as_str(),
            events,
            attempts,
            *attempts as f64 / *events as f64
        );
    }
    println!(
        "\nattempt outcomes: {}",
        codes
            .iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "accepted {} events in {:.2} s ({:.0}/s, each durable before send returned)",
        args.events,
        accepted_in.as_secs_f64(),
        args.events as f64 / accepted_in.as_secs_f64()
    );
    println!(
        "accept → final status: p50 {:.0} ms, p99 {:.0} ms; all settled in {:.2} s",
        pct(0.5),
        pct(0.99),
        total.as_secs_f64()
    );
    println!("signatures rejected by the receiver: {}", receiver.bad_signatures());
    println!("\ndatabase: {}", db.display());
    Ok(ExitCode::SUCCESS)
}
