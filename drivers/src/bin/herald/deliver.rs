//! `deliver` and `serve`: run Herald with the configured ports.
//!
//! `deliver` reads events as JSON lines, sends each to every selected port, waits until
//! every delivery is final (unless `--no-wait`) and summarises. An invalid line is
//! reported with its number; the others still go out. Ctrl-C shuts down gracefully; the
//! next run on the same database resumes what is unfinished.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use herald::{DeliveryStatus, EventId, ExternalEvent, Herald, Port, Timestamp};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;

use crate::config::Config;

/// How long in-flight attempts may finish after Ctrl-C.
const GRACE: Duration = Duration::from_secs(5);

/// One input line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    #[serde(rename = "type")]
    event_type: String,
    payload: Option<serde_json::Value>,
    payload_base64: Option<String>,
    id: Option<String>,
    content_type: Option<String>,
    occurred_at: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

fn parse_line(text: &str) -> Result<ExternalEvent, String> {
    let line: Line = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let payload = match (line.payload, line.payload_base64) {
        (Some(_), Some(_)) => return Err("give payload or payload_base64, not both".into()),
        (Some(v), None) => serde_json::to_vec(&v).map_err(|e| e.to_string())?,
        (None, Some(b)) => base64::engine::general_purpose::STANDARD
            .decode(b.trim())
            .map_err(|e| format!("payload_base64: {e}"))?,
        (None, None) => Vec::new(),
    };
    let occurred_at = match line.occurred_at {
        Some(t) => Timestamp::parse_rfc3339(&t).map_err(|e| format!("occurred_at: {e}"))?,
        None => herald::now(),
    };
    let mut b = ExternalEvent::builder(line.event_type)
        .payload(payload)
        .occurred_at(occurred_at);
    if let Some(id) = line.id {
        b = b.id(id);
    }
    if let Some(ct) = line.content_type {
        b = b.content_type(ct);
    }
    for (k, v) in line.metadata {
        b = b.metadata(k, v);
    }
    b.build().map_err(|e| e.to_string())
}

async fn start(config: &Config, only: &[String]) -> anyhow::Result<(Herald, Vec<Port>)> {
    let names = config.port_names();
    for p in only {
        anyhow::ensure!(
            names.contains(p),
            "--port {p}: no such port in the configuration ({})",
            names.join(", ")
        );
    }
    let mut builder = Herald::builder().store_path(&config.store);
    for (_, port, _) in &config.ports {
        builder = builder.port(port.clone());
    }
    let herald = builder.start_tokio().await?;
    let ports = herald
        .ports()
        .into_iter()
        .filter(|p| only.is_empty() || only.iter().any(|o| o == p.name()))
        .collect();
    Ok((herald, ports))
}

/// `herald deliver`.
pub(crate) async fn deliver(
    config: Config,
    input: Option<std::path::PathBuf>,
    only: Vec<String>,
    no_wait: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let reader: Box<dyn BufRead + Send> = match input.as_deref() {
        None => Box::new(std::io::BufReader::new(std::io::stdin())),
        Some(p) if p.as_os_str() == "-" => Box::new(std::io::BufReader::new(std::io::stdin())),
        Some(p) => Box::new(std::io::BufReader::new(
            std::fs::File::open(p).with_context(|| format!("{}: cannot open", p.display()))?,
        )),
    };
    let (herald, ports) = start(&config, &only).await?;
    let mut invalid = 0u64;
    let mut refused = 0u64;
    let mut ids: Vec<EventId> = Vec::new();
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos} sent {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    for (n, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("reading line {}", n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let event = match parse_line(&line) {
            Ok(e) => e,
            Err(why) => {
                bar.suspend(|| eprintln!("line {}: {why}", n + 1));
                invalid += 1;
                continue;
            }
        };
        for port in &ports {
            if let Err(e) = port.send(event.clone()).await {
                bar.suspend(|| eprintln!("line {}: {}: {e}", n + 1, port.name()));
                refused += 1;
            }
        }
        ids.push(event.id().clone());
        bar.inc(1);
    }
    bar.finish_and_clear();
    let mut by_status: BTreeMap<(String, DeliveryStatus), u64> = BTreeMap::new();
    let mut interrupted = false;
    if !no_wait {
        let total = (ids.len() * ports.len()) as u64;
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} final").unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let wait_all = async {
            for port in &ports {
                for id in &ids {
                    if let Ok(r) = port.wait_for_terminal(id).await {
                        *by_status.entry((port.name().to_owned(), r.status)).or_default() += 1;
                    }
                    bar.inc(1);
                }
            }
        };
        tokio::select! {
            () = wait_all => {}
            _ = tokio::signal::ctrl_c() => interrupted = true,
        }
        bar.finish_and_clear();
    } else {
        for port in &ports {
            for id in &ids {
                if let Ok(Some(r)) = port.status(id).await {
                    *by_status.entry((port.name().to_owned(), r.status)).or_default() += 1;
                }
            }
        }
    }
    herald.shutdown(GRACE).await;
    let not_delivered: u64 = by_status
        .iter()
        .filter(|((_, s), _)| *s != DeliveryStatus::Delivered)
        .map(|(_, n)| n)
        .sum();
    if json {
        let summary = serde_json::json!({
            "events": ids.len(),
            "invalid_lines": invalid,
            "refused_sends": refused,
            "interrupted": interrupted,
            "by_port": by_status.iter().fold(BTreeMap::<String, BTreeMap<String, u64>>::new(), |mut m, ((p, s), n)| {
                m.entry(p.clone()).or_default().insert(s.to_string(), *n);
                m
            }),
        });
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "{} events read, {invalid} invalid lines, {refused} sends refused",
            ids.len()
        );
        for ((port, status), n) in &by_status {
            println!("{port:<12} {:<10} {n}", status.as_str());
        }
        if interrupted {
            println!("interrupted: unfinished deliveries resume on the next `deliver` or `serve`");
        }
    }
    let all_ok = invalid == 0 && refused == 0 && not_delivered == 0 && !interrupted;
    Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `herald serve`: deliver what is pending until interrupted.
pub(crate) async fn serve(config: Config) -> anyhow::Result<ExitCode> {
    let (herald, ports) = start(&config, &[]).await?;
    eprintln!(
        "herald serving {} port(s) from {}; Ctrl-C to stop",
        ports.len(),
        config.store.display()
    );
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    eprintln!("stopping: in-flight attempts have {} s", GRACE.as_secs());
    herald.shutdown(GRACE).await;
    Ok(ExitCode::SUCCESS)
}
