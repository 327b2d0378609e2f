//! The store's own consistency check (after redb's page check): the tables must agree
//! with each other. Used by `RedbStore::check_integrity`, by the crash and fault tests
//! after every reopen, and by operators who suspect damage.

use std::collections::BTreeMap;
use std::ops::Bound;

use herald_core::DeliveryStatus;
use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata};

use crate::encoding::{decode_attempt, decode_event, decode_record};
use crate::error::{KeyHex, ReadError, storage};
use crate::tables::{
    ATTEMPTS, BY_STATUS, COUNTS, DELIVERIES, EVENTS, KeyBuf, event_key, index_key, split_port, split_status_suffix,
};

/// Problems beyond this many are counted, not described.
const MAX_PROBLEMS: usize = 100;

/// What the check found.
pub(crate) struct Report {
    pub(crate) deliveries: u64,
    pub(crate) attempts: u64,
    pub(crate) problems: Vec<String>,
}

impl Report {
    fn problem(&mut self, p: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        } else if self.problems.len() == MAX_PROBLEMS {
            self.problems.push("... and more".to_owned());
        }
    }
}

/// Checks every table against the others, in one read transaction. Undecodable records
/// are problems, not errors, so one check lists them all.
pub(crate) fn check_tables(txn: &ReadTransaction) -> Result<Report, ReadError> {
    let deliveries = txn.open_table(DELIVERIES).map_err(storage)?;
    let events = txn.open_table(EVENTS).map_err(storage)?;
    let attempts = txn.open_table(ATTEMPTS).map_err(storage)?;
    let by_status = txn.open_table(BY_STATUS).map_err(storage)?;
    let counts = txn.open_table(COUNTS).map_err(storage)?;
    let mut report = Report {
        deliveries: 0,
        attempts: 0,
        problems: Vec::new(),
    };
    let mut tally: BTreeMap<Vec<u8>, u64> = BTreeMap::new();

    for entry in deliveries.iter().map_err(storage)? {
        let (k, v) = entry.map_err(storage)?;
        let (k, v) = (k.value(), v.value());
        report.deliveries += 1;
        let Some((port, key)) = split_port(k).and_then(|(p, rest)| Some((p, event_key(rest)?))) else {
            report.problem(format!("herald_deliveries: malformed key {k:02x?}"));
            continue;
        };
        let at = format!("port {port:?}, key {}", KeyHex(key));
        let record = match decode_record(v) {
            Ok(r) => r,
            Err(e) => {
                report.problem(format!("herald_deliveries, {at}: {e}"));
                continue;
            }
        };
        if record.key() != key {
            report.problem(format!("herald_deliveries, {at}: holds the record of id {}", record.id));
        }
        let pk = KeyBuf::port(port);
        match events.get(k).map_err(storage)? {
            None => report.problem(format!("herald_events, {at}: missing")),
            Some(e) => match decode_event(e.value()) {
                Err(e) => report.problem(format!("herald_events, {at}: {e}")),
                Ok(e) if e.id() != &record.id || e.fingerprint() != record.fingerprint => {
                    report.problem(format!(
                        "herald_events, {at}: event {} does not match its record",
                        e.id()
                    ));
                }
                Ok(_) => {}
            },
        }
        if by_status
            .get(index_key(&pk, &record).as_slice())
            .map_err(storage)?
            .is_none()
        {
            report.problem(format!(
                "herald_by_status, {at}: no entry for a {} record",
                record.status
            ));
        }
        *tally.entry(pk.status(record.status).as_slice().to_vec()).or_default() += 1;
        let (first, last) = (pk.attempt(key, 0), pk.attempt(key, u32::MAX));
        let bounds = (Bound::Included(first.as_slice()), Bound::Included(last.as_slice()));
        for a in attempts.range::<&[u8]>(bounds).map_err(storage)? {
            let (ak, av) = a.map_err(storage)?;
            report.attempts += 1;
            let number = ak.value().last_chunk::<4>().map(|b| u32::from_be_bytes(*b));
            match decode_attempt(av.value()) {
                Err(e) => report.problem(format!("herald_attempts, {at}: {e}")),
                Ok(a) if Some(a.attempt) != number || a.attempt > record.attempts => report.problem(format!(
                    "herald_attempts, {at}: attempt {} stored as {number:?}; the record has {} attempts",
                    a.attempt, record.attempts
                )),
                Ok(_) => {}
            }
        }
    }

    let index_len = by_status.len().map_err(storage)?;
    if index_len != report.deliveries {
        report.problem(format!(
            "herald_by_status has {index_len} entries for {} deliveries",
            report.deliveries
        ));
        for entry in by_status.iter().map_err(storage)? {
            let (k, _) = entry.map_err(storage)?;
            let k = k.value();
            let parsed = split_port(k).and_then(|(p, rest)| Some((p, split_status_suffix(rest)?)));
            let Some((port, (status, _, key))) = parsed else {
                report.problem(format!("herald_by_status: malformed key {k:02x?}"));
                continue;
            };
            let pk = KeyBuf::port(port);
            let found = deliveries
                .get(pk.delivery(key).as_slice())
                .map_err(storage)?
                .and_then(|v| decode_record(v.value()).ok());
            if found.is_none_or(|r| index_key(&pk, &r).as_slice() != k) {
                report.problem(format!(
                    "herald_by_status, port {port:?}, key {}: a {status} entry without a matching record",
                    KeyHex(key)
                ));
            }
        }
    }
    let events_len = events.len().map_err(storage)?;
    if events_len != report.deliveries {
        report.problem(format!(
            "herald_events has {events_len} events for {} deliveries",
            report.deliveries
        ));
    }
    let attempts_len = attempts.len().map_err(storage)?;
    if attempts_len != report.attempts {
        report.problem(format!(
            "herald_attempts has {attempts_len} records, {} of them of existing deliveries",
            report.attempts
        ));
    }

    for entry in counts.iter().map_err(storage)? {
        let (k, v) = entry.map_err(storage)?;
        let (k, stored) = (k.value(), v.value());
        let counted = tally.remove(k).unwrap_or(0);
        if stored != counted {
            let what = split_port(k)
                .and_then(|(p, rest)| Some((p, DeliveryStatus::from_code(*rest.first()?)?)))
                .map_or_else(|| format!("{k:02x?}"), |(p, s)| format!("port {p:?}, {s}"));
            report.problem(format!("herald_counts, {what}: stored {stored}, counted {counted}"));
        }
    }
    for (k, n) in tally {
        report.problem(format!("herald_counts: no count for {k:02x?}, counted {n}"));
    }
    Ok(report)
}
