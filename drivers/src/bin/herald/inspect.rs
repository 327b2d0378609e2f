//! `status`, `history`, `list`, `redrive`, `prune`: an operator's view of the store, read
//! and changed directly (with no `serve` running: the database file is locked by the
//! process that has it open).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use herald::core::{AttemptRecord, DeliveryRecord};
use herald::{DeliveryStatus, EventId, IntegrationResult};
use herald_store::{Cursor, OpenError, RedbStore, Store};
use serde::Serialize;

use crate::config::Config;

/// Opens the configured store for inspection; a missing file is an error, not a new
/// database.
pub(crate) fn open(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    if !config.store.exists() {
        bail!(
            "{}: no database here (nothing has been delivered with this configuration yet)",
            config.store.display()
        );
    }
    match RedbStore::open(&config.store) {
        Ok(s) => Ok(Arc::new(s)),
        Err(e @ OpenError::AlreadyOpen { .. }) => {
            Err(anyhow!(e).context("the database is in use (is `herald serve` or `deliver` running?)"))
        }
        Err(e) => Err(anyhow!(e)),
    }
}

fn ports(config: &Config, only: &[String]) -> anyhow::Result<Vec<String>> {
    let all = config.port_names();
    for p in only {
        if !all.contains(p) {
            bail!(
                "--port {p}: no such port in the configuration (ports: {})",
                all.join(", ")
            );
        }
    }
    Ok(if only.is_empty() { all } else { only.to_vec() })
}

fn event_id(id: &str) -> anyhow::Result<EventId> {
    EventId::new(id).with_context(|| format!("{id:?} is not a valid event id"))
}

#[derive(Serialize)]
struct PortResult<'a> {
    port: &'a str,
    #[serde(flatten)]
    result: IntegrationResult,
}

#[derive(Serialize)]
struct PortHistory<'a> {
    port: &'a str,
    #[serde(flatten)]
    result: IntegrationResult,
    attempts: Vec<AttemptRecord>,
}

/// `herald status ID`.
pub(crate) fn status(config: &Config, id: &str, only: &[String], json: bool) -> anyhow::Result<ExitCode> {
    let store = open(config)?;
    let id = event_id(id)?;
    let mut found = Vec::new();
    for port in ports(config, only)? {
        if let Some(r) = store.record(&port, id.key())? {
            found.push((port.clone(), r.to_result(config.max_attempts(&port))));
        }
    }
    if found.is_empty() {
        eprintln!("no delivery of event {id} on {}", ports(config, only)?.join(", "));
        return Ok(ExitCode::from(1));
    }
    if json {
        let out: Vec<PortResult<'_>> = found
            .iter()
            .map(|(p, r)| PortResult {
                port: p,
                result: r.clone(),
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for (i, (port, r)) in found.iter().enumerate() {
            if i > 0 {
                println!();
            }
            print!("{}", render_result(port, r));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `herald history ID`.
pub(crate) fn history(config: &Config, id: &str, only: &[String], json: bool) -> anyhow::Result<ExitCode> {
    let store = open(config)?;
    let id = event_id(id)?;
    let mut found = Vec::new();
    for port in ports(config, only)? {
        if let Some(h) = store.history(&port, id.key())? {
            found.push((port.clone(), h.record.to_result(config.max_attempts(&port)), h.attempts));
        }
    }
    if found.is_empty() {
        eprintln!("no delivery of event {id} on {}", ports(config, only)?.join(", "));
        return Ok(ExitCode::from(1));
    }
    if json {
        let out: Vec<PortHistory<'_>> = found
            .iter()
            .map(|(p, r, a)| PortHistory {
                port: p,
                result: r.clone(),
                attempts: a.clone(),
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for (i, (port, r, attempts)) in found.iter().enumerate() {
            if i > 0 {
                println!();
            }
            print!("{}", render_result(port, r));
            print!("{}", render_attempts(attempts));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `herald list`.
pub(crate) fn list(
    config: &Config,
    status: Option<DeliveryStatus>,
    only: &[String],
    limit: usize,
    after: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let store = open(config)?;
    let after: Option<Cursor> = after.map(str::parse).transpose().context("--after")?;
    let mut rows: Vec<(String, DeliveryRecord)> = Vec::new();
    let mut next = None;
    for port in ports(config, only)? {
        let page = store.list(&port, status, after.as_ref(), limit.saturating_sub(rows.len()))?;
        next = page.next.or(next);
        rows.extend(page.items.into_iter().map(|r| (port.clone(), r)));
        if rows.len() >= limit {
            break;
        }
    }
    if json {
        #[derive(Serialize)]
        struct Listing<'a> {
            items: Vec<PortResult<'a>>,
            next: Option<String>,
        }
        let items = rows
            .iter()
            .map(|(p, r)| PortResult {
                port: p,
                result: r.to_result(config.max_attempts(p)),
            })
            .collect();
        let out = Listing {
            items,
            next: next.map(|c| c.to_string()),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "{:<12} {:<40} {:<10} {:>8}  updated",
            "port", "event", "status", "attempts"
        );
        for (port, r) in &rows {
            println!(
                "{:<12} {:<40} {:<10} {:>8}  {}",
                port,
                r.id.as_str(),
                r.status.as_str(),
                r.attempts_in_cycle(),
                r.updated_at
            );
        }
        if let Some(c) = next {
            println!("(more: --after {c})");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `herald redrive`.
pub(crate) fn redrive(
    config: &Config,
    id: Option<&str>,
    status: Option<DeliveryStatus>,
    only: &[String],
) -> anyhow::Result<ExitCode> {
    let store = open(config)?;
    let now = herald::now();
    let mut done = 0u64;
    for port in ports(config, only)? {
        let keys: Vec<(EventId, herald::core::EventKey)> = match (id, status) {
            (Some(id), None) => {
                let id = event_id(id)?;
                let key = id.key();
                vec![(id, key)]
            }
            (None, Some(s)) => {
                let mut keys = Vec::new();
                let mut after = None;
                loop {
                    let page = store.list(&port, Some(s), after.as_ref(), 1000)?;
                    keys.extend(page.items.iter().map(|r| (r.id.clone(), r.key())));
                    match page.next {
                        Some(c) => after = Some(c),
                        None => break,
                    }
                }
                keys
            }
            _ => bail!("give an event id or --status failed|exhausted, not both"),
        };
        for (id, key) in keys {
            match store.redrive(&port, key, now) {
                Ok(_) => {
                    println!("{port}: {id} redriven (it is sent again on the next `serve` or `deliver`)");
                    done += 1;
                }
                Err(herald_store::RedriveError::NotFound { .. }) if only.is_empty() => {}
                Err(e) => eprintln!("{port}: {id}: {e}"),
            }
        }
    }
    if done == 0 {
        eprintln!("nothing was redriven");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// `herald prune`.
pub(crate) fn prune(config: &Config, older_than: Duration) -> anyhow::Result<ExitCode> {
    let store = open(config)?;
    let cutoff = herald::Timestamp::from_millis(
        herald::now()
            .as_millis()
            .saturating_sub(u64::try_from(older_than.as_millis()).unwrap_or(u64::MAX)),
    );
    let n = store.prune(cutoff)?;
    println!("pruned {n} finished deliveries last changed before {cutoff}");
    Ok(ExitCode::SUCCESS)
}

fn or_dash<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// The human form of a result.
pub(crate) fn render_result(port: &str, r: &IntegrationResult) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<11}{v}\n"));
    line("event", r.event_id.to_string());
    line("port", port.to_owned());
    line("status", r.status.to_string());
    line(
        "attempts",
        format!(
            "{} made, {} remaining (cycle {})",
            r.attempts_made, r.attempts_remaining, r.cycle
        ),
    );
    line("next", or_dash(r.next_attempt_at));
    line("accepted", r.accepted_at.to_string());
    line("delivered", or_dash(r.delivered_at));
    line(
        "last error",
        r.last_failure.as_ref().map_or_else(
            || "-".to_owned(),
            |f| format!("attempt {} at {}: {} ({})", f.attempt, f.at, f.message, f.code),
        ),
    );
    line("updated", r.updated_at.to_string());
    out
}

/// The human form of an attempt history.
pub(crate) fn render_attempts(attempts: &[AttemptRecord]) -> String {
    let mut out = format!(
        "\n{:>3} {:>5}  {:<24} {:>8}  outcome\n",
        "#", "cycle", "started", "took"
    );
    for a in attempts {
        out.push_str(&format!(
            "{:>3} {:>5}  {:<24} {:>5} ms  {:?} {}: {}\n",
            a.attempt,
            a.cycle,
            a.started_at.to_string(),
            a.outcome.duration_ms,
            a.outcome.class,
            a.outcome.code,
            a.outcome.message
        ));
    }
    out
}
