//! Fills the store that sections 3 and 4 read: through the public store API
//! (`RedbStore::commit`, 20,000 deliveries per durable commit), each delivery committed as
//! the driver would have committed it, accepted, attempt started, attempt finished:
//! `done-i` delivered (the status queries' data), `later-i` retrying in one hour (the
//! pending deliveries a restart resumes). The raw limit's file gets, under the same key
//! (port ‖ event key), the same record bytes as each delivered record.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use herald_core::{AttemptOutcome, Change, EventId, OutcomeClass, Timestamp, Transition};
use herald_store::{RedbStore, Store};
use redb::{Database, TableDefinition};

use crate::herald_setup::{PORT, event};

/// The raw table: port ‖ event key → encoded record.
pub(crate) const RAW: TableDefinition<'static, &[u8], &[u8]> = TableDefinition::new("raw_records");

/// Deliveries per commit.
const BATCH: usize = 20_000;

/// The filled files.
#[derive(Clone, Debug)]
pub(crate) struct Filled {
    pub(crate) herald: PathBuf,
    pub(crate) raw: PathBuf,
    /// Delivered deliveries (`done-0..n`) and retrying ones (`later-0..n`).
    pub(crate) n: usize,
    pub(crate) took: Duration,
}

/// The raw key of an event id, as the store keys its records.
pub(crate) fn raw_key(id: &str) -> Vec<u8> {
    let mut key = vec![PORT.len() as u8];
    key.extend_from_slice(PORT.as_bytes());
    key.extend_from_slice(&EventId::new(id).expect("bench id").key().0);
    key
}

fn outcome(class: OutcomeClass, code: &str) -> AttemptOutcome {
    AttemptOutcome {
        class,
        code: code.to_owned(),
        message: format!("bench fill: {code}"),
        retry_after: None,
        response: None,
        duration_ms: 1,
    }
}

/// Fills new files in `dir` with `n` delivered and `n` retrying deliveries.
pub(crate) fn fill(dir: &Path, n: usize) -> Result<Filled, String> {
    let herald = dir.join("status.redb");
    let raw = dir.join("status-raw.redb");
    let _ = std::fs::remove_file(&herald);
    let _ = std::fs::remove_file(&raw);
    let store = RedbStore::open(&herald).map_err(|e| e.to_string())?;
    let raw_db = Database::create(&raw).map_err(|e| e.to_string())?;
    let now = herald::now();
    let later = now.saturating_add(Duration::from_secs(3600));
    let body = [b'x'; 256];
    let start = Instant::now();
    for (prefix, next) in [("done", Transition::Delivered), ("later", Transition::RetryAt(later))] {
        let (class, code) = match next {
            Transition::Delivered => (OutcomeClass::Delivered, "http_204"),
            _ => (OutcomeClass::Retryable, "http_503"),
        };
        for first in (0..n).step_by(BATCH) {
            let events: Vec<_> = (first..(first + BATCH).min(n))
                .map(|i| event(prefix, i, &body))
                .collect();
            let mut batch = Vec::with_capacity(3 * events.len());
            for e in &events {
                let key = e.key();
                batch.push((
                    PORT,
                    Change::Accepted {
                        event: e.clone(),
                        at: now,
                    },
                ));
                batch.push((
                    PORT,
                    Change::AttemptStarted {
                        key,
                        attempt: 1,
                        at: now,
                        deadline: Timestamp::from_millis(now.as_millis() + 10_000),
                    },
                ));
                batch.push((
                    PORT,
                    Change::AttemptFinished {
                        key,
                        attempt: 1,
                        at: now,
                        outcome: outcome(class, code),
                        next,
                    },
                ));
            }
            let applied = store.commit(&batch).map_err(|e| e.to_string())?;
            if prefix == "done" {
                let txn = raw_db.begin_write().map_err(|e| e.to_string())?;
                {
                    let mut t = txn.open_table(RAW).map_err(|e| e.to_string())?;
                    for (e, a) in events.iter().zip(applied.chunks(3)) {
                        let bytes = herald_store::fuzzing::encode_record(&a[2].record);
                        t.insert(raw_key(e.id().as_str()).as_slice(), bytes.as_slice())
                            .map_err(|e| e.to_string())?;
                    }
                }
                txn.commit().map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(Filled {
        herald,
        raw,
        n,
        took: start.elapsed(),
    })
}
