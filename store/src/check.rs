//! The store's own consistency check (after redb's page check): the tables must agree
//! with each other. Used by `RedbStore::check_integrity`, by the crash and fault tests
//! after every reopen, and by operators who suspect damage.

use std::collections::BTreeMap;

use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata};

use crate::encoding::{decode_attempt, decode_event, decode_record};
use crate::error::{CheckError, KeyHex};
use crate::read::{as_slices, prefix_range};
use crate::tables::{
    ATTEMPTS, BY_STATUS, DELIVERIES, EVENTS, KeyBuf, StatusRow, event_key, index_key, split_port, split_status_suffix,
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

fn storage<E: Into<redb::Error>>(e: E) -> CheckError {
    CheckError::Storage { source: e.into() }
}

/// Checks every table against the others, in one read transaction. Undecodable records
/// are problems, not errors, so one check lists them all.
pub(crate) fn check_tables(txn: &ReadTransaction) -> Result<Report, CheckError> {
    let deliveries = txn.open_table(DELIVERIES).map_err(storage)?;
    let events = txn.open_table(EVENTS).map_err(storage)?;
    let attempts = txn.open_table(ATTEMPTS).map_err(storage)?;
    let by_status = txn.open_table(BY_STATUS).map_err(storage)?;
    let mut report = Report {
        deliveries: 0,
        attempts: 0,
        problems: Vec::new(),
    };
    // Deliveries counted per count row.
    let mut tally: BTreeMap<KeyBuf, u64> = BTreeMap::new();

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
        match events
            .get(pk.event(record.accepted_at, key).as_slice())
            .map_err(storage)?
        {
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
            .get(index_key(&pk, &record, key).as_slice())
            .map_err(storage)?
            .is_none()
        {
            report.problem(format!(
                "herald_by_status, {at}: no entry for a {} record",
                record.status
            ));
        }
        *tally.entry(pk.count_row(record.status)).or_default() += 1;
        let range = prefix_range(&pk.event(record.accepted_at, key));
        for a in attempts.range::<&[u8]>(as_slices(&range)).map_err(storage)? {
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

    let mut entries = 0u64;
    for row in by_status.iter().map_err(storage)? {
        let (k, v) = row.map_err(storage)?;
        let (k, stored) = (k.value(), v.value());
        match split_port(k).and_then(|(p, rest)| Some((p, split_status_suffix(rest)?))) {
            None => report.problem(format!("herald_by_status: malformed key {k:02x?}")),
            Some((_, StatusRow::Entry(..))) => entries += 1,
            Some((port, StatusRow::Count(status))) => {
                let counted = KeyBuf::from_slice(k).and_then(|k| tally.remove(&k)).unwrap_or(0);
                if stored != counted {
                    report.problem(format!(
                        "herald_by_status, port {port:?}: {status} count is {stored}, counted {counted}"
                    ));
                }
            }
        }
    }
    for (k, n) in tally {
        report.problem(format!(
            "herald_by_status: no count row {:02x?} for {n} deliveries",
            k.as_slice()
        ));
    }
    if entries != report.deliveries {
        report.problem(format!(
            "herald_by_status has {entries} entries for {} deliveries",
            report.deliveries
        ));
        dangling_entries(&by_status, &deliveries, &mut report)?;
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
    Ok(report)
}

/// Reports the status entries that do not match their record.
fn dangling_entries(
    by_status: &impl ReadableTable<&'static [u8], u64>,
    deliveries: &impl ReadableTable<&'static [u8], &'static [u8]>,
    report: &mut Report,
) -> Result<(), CheckError> {
    for row in by_status.iter().map_err(storage)? {
        let (k, _) = row.map_err(storage)?;
        let k = k.value();
        let Some((port, StatusRow::Entry(status, _, key))) =
            split_port(k).and_then(|(p, rest)| Some((p, split_status_suffix(rest)?)))
        else {
            continue;
        };
        let pk = KeyBuf::port(port);
        let found = deliveries
            .get(pk.delivery(key).as_slice())
            .map_err(storage)?
            .and_then(|v| decode_record(v.value()).ok());
        if found.is_none_or(|r| index_key(&pk, &r, key).as_slice() != k) {
            report.problem(format!(
                "herald_by_status, port {port:?}, key {}: a {status} entry without a matching record",
                KeyHex(key)
            ));
        }
    }
    Ok(())
}
