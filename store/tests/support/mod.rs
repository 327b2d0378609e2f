//! Events, changes and a reference model shared by the store's tests.
//!
//! Each test binary uses a part of this module.
#![allow(dead_code)]

pub(crate) mod backend_faults;

use std::collections::{BTreeMap, BTreeSet};

use herald_core::{
    AttemptOutcome, AttemptRecord, Change, DeliveryRecord, DeliveryStatus, EventKey, ExhaustedBy, ExternalEvent,
    OutcomeClass, Timestamp, Transition,
};
use herald_store::{Cursor, Store};

/// A fixed start time: 2023-11-14T22:13:20Z.
pub(crate) const T0: Timestamp = Timestamp::from_secs(1_700_000_000);

/// `T0` plus `ms` milliseconds.
pub(crate) fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(T0.as_millis() + ms)
}

/// An event with a caller-given id; `variant` changes its content (a conflicting re-send);
/// the payload is `len` bytes (at least a short JSON object).
pub(crate) fn event_sized(id: &str, variant: u8, len: usize) -> ExternalEvent {
    let mut payload = format!(r#"{{"id":"{id}","variant":{variant},"pad":""#).into_bytes();
    payload.resize(len.max(payload.len() + 2) - 2, b'x');
    payload.extend_from_slice(br#""}"#);
    ExternalEvent::builder("test.event")
        .id(id)
        .payload(payload)
        .occurred_at(T0)
        .metadata("tenant", "acme")
        .build()
        .expect("valid test event")
}

/// A small event.
pub(crate) fn event(id: &str) -> ExternalEvent {
    event_sized(id, 0, 0)
}

/// An outcome of a class.
pub(crate) fn outcome(class: OutcomeClass) -> AttemptOutcome {
    let (code, message) = match class {
        OutcomeClass::Delivered => ("http_200", "ok"),
        OutcomeClass::Retryable => ("http_503", "service unavailable"),
        OutcomeClass::Permanent => ("http_410", "gone"),
    };
    AttemptOutcome {
        class,
        code: code.to_owned(),
        message: message.to_owned(),
        retry_after: None,
        response: None,
        duration_ms: 12,
    }
}

/// `Accepted` at `t`.
pub(crate) fn accepted(e: &ExternalEvent, t: Timestamp) -> Change {
    Change::Accepted {
        event: e.clone(),
        at: t,
    }
}

/// `AttemptStarted` at `t` with a 30 s deadline.
pub(crate) fn started(key: EventKey, attempt: u32, t: Timestamp) -> Change {
    Change::AttemptStarted {
        key,
        attempt,
        at: t,
        deadline: Timestamp::from_millis(t.as_millis() + 30_000),
    }
}

/// `AttemptFinished` at `t` with an outcome of `class` leading to `next`.
pub(crate) fn finished(key: EventKey, attempt: u32, t: Timestamp, class: OutcomeClass, next: Transition) -> Change {
    Change::AttemptFinished {
        key,
        attempt,
        at: t,
        outcome: outcome(class),
        next,
    }
}

/// What a store should hold about one delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) event: ExternalEvent,
    pub(crate) record: DeliveryRecord,
    pub(crate) attempts: Vec<AttemptRecord>,
}

/// The reference model: what a store should hold, as plain maps, changed only by whole
/// batches (all or nothing), with the core's `DeliveryRecord::apply`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Model {
    pub(crate) entries: BTreeMap<(String, EventKey), Entry>,
}

impl Model {
    /// Applies a batch as the store must: in order, all or nothing. Returns whether it
    /// applied.
    pub(crate) fn apply(&mut self, batch: &[(&str, Change)]) -> bool {
        let mut next = self.entries.clone();
        for (port, change) in batch {
            let k = ((*port).to_owned(), change.key());
            match change {
                Change::Accepted { event, at } => match next.get(&k) {
                    Some(e) if e.record.id == *event.id() && e.record.fingerprint == event.fingerprint() => {}
                    Some(_) => return false,
                    None => {
                        next.insert(
                            k,
                            Entry {
                                event: event.clone(),
                                record: DeliveryRecord::accepted(event, *at),
                                attempts: Vec::new(),
                            },
                        );
                    }
                },
                _ => {
                    let Some(e) = next.get_mut(&k) else { return false };
                    match e.record.apply(change) {
                        Ok(Some(a)) => e.attempts.push(a),
                        Ok(None) => {}
                        Err(_) => return false,
                    }
                }
            }
        }
        self.entries = next;
        true
    }

    /// Deletes terminal deliveries last changed before `older_than`; returns how many.
    pub(crate) fn prune(&mut self, older_than: Timestamp) -> u64 {
        let before = self.entries.len();
        self.entries
            .retain(|_, e| !(e.record.status.is_terminal() && e.record.updated_at < older_than));
        (before - self.entries.len()) as u64
    }

    pub(crate) fn ports(&self) -> Vec<String> {
        let set: BTreeSet<String> = self.entries.keys().map(|(p, _)| p.clone()).collect();
        set.into_iter().collect()
    }

    pub(crate) fn record(&self, port: &str, key: EventKey) -> Option<&DeliveryRecord> {
        self.entries.get(&(port.to_owned(), key)).map(|e| &e.record)
    }

    /// A port's records in list order: status, then cycle start (active) or end time
    /// (terminal), then key.
    pub(crate) fn listed(&self, port: &str, status: Option<DeliveryStatus>) -> Vec<DeliveryRecord> {
        let mut v: Vec<DeliveryRecord> = self
            .entries
            .iter()
            .filter(|((p, _), e)| p == port && status.is_none_or(|s| e.record.status == s))
            .map(|(_, e)| e.record.clone())
            .collect();
        v.sort_by_key(|r| {
            let since = if r.status.is_terminal() {
                r.updated_at
            } else {
                r.cycle_started_at
            };
            (r.status, since, r.key())
        });
        v
    }
}

/// Asserts that `store` holds exactly what `model` says, through every read of the API.
pub(crate) fn assert_matches(store: &dyn Store, model: &Model) {
    let ports = model.ports();
    assert_eq!(store.ports().unwrap(), ports, "ports");
    for ((port, key), e) in &model.entries {
        assert_eq!(
            store.record(port, *key).unwrap().as_ref(),
            Some(&e.record),
            "record {port} {key:?}"
        );
        assert_eq!(
            store.event(port, *key).unwrap().as_ref(),
            Some(&e.event),
            "event {port} {key:?}"
        );
        let h = store.history(port, *key).unwrap().expect("history");
        assert_eq!(h.record, e.record);
        assert_eq!(h.attempts, e.attempts, "attempts of {port} {key:?}");
    }
    for port in &ports {
        let mut counts: BTreeMap<DeliveryStatus, u64> = DeliveryStatus::ALL.into_iter().map(|s| (s, 0)).collect();
        for r in model.listed(port, None) {
            *counts.get_mut(&r.status).unwrap() += 1;
        }
        assert_eq!(store.count_by_status(port).unwrap(), counts, "counts of {port}");
        assert_eq!(
            list_all(store, port, None, 3),
            model.listed(port, None),
            "list of {port}"
        );
        for status in DeliveryStatus::ALL {
            assert_eq!(
                list_all(store, port, Some(status), 2),
                model.listed(port, Some(status)),
                "list of {port}, {status}"
            );
        }
        let mut unfinished = Vec::new();
        let n = store.for_each_unfinished(port, &mut |r| unfinished.push(r)).unwrap();
        assert_eq!(n as usize, unfinished.len());
        let mut expected: Vec<DeliveryRecord> = model
            .listed(port, None)
            .into_iter()
            .filter(|r| !r.status.is_terminal())
            .collect();
        let by_key = |v: &mut Vec<DeliveryRecord>| v.sort_by_key(|r| r.key());
        by_key(&mut unfinished);
        by_key(&mut expected);
        assert_eq!(unfinished, expected, "unfinished of {port}");
    }
}

/// Every page of a listing, `limit` records at a time.
pub(crate) fn list_all(
    store: &dyn Store,
    port: &str,
    status: Option<DeliveryStatus>,
    limit: usize,
) -> Vec<DeliveryRecord> {
    let mut out = Vec::new();
    let mut after: Option<Cursor> = None;
    loop {
        let page = store.list(port, status, after.as_ref(), limit).unwrap();
        assert!(page.items.len() <= limit);
        out.extend(page.items);
        match page.next {
            Some(c) => after = Some(c),
            None => return out,
        }
    }
}

/// What a generated operation asks for; turned into a valid change (or, for `Chaos`, an
/// invalid one) against the state the model and the earlier changes of the batch lead
/// to. `pick` chooses among the deliveries the operation can apply to, so that most
/// generated changes do something.
#[derive(Clone, Debug)]
pub(crate) enum Intent {
    Accept {
        port: u8,
        id: u8,
        variant: u8,
    },
    Start {
        pick: u16,
    },
    Finish {
        pick: u16,
        how: u8,
    },
    Redrive {
        pick: u16,
    },
    /// A change that cannot apply: an attempt out of order, or an unknown delivery.
    Chaos {
        pick: u16,
    },
}

pub(crate) const PORTS: [&str; 3] = ["orders", "billing", "a-much-longer-port-name"];

pub(crate) fn id_of(id: u8) -> String {
    format!("evt-{id}")
}

/// The `pick`-th (modulo) delivery of `model` whose record satisfies `ok`.
fn pick_where(
    model: &Model,
    pick: u16,
    ok: impl Fn(&DeliveryRecord) -> bool,
) -> Option<(&'static str, DeliveryRecord)> {
    let eligible: Vec<(&String, &DeliveryRecord)> = model
        .entries
        .iter()
        .filter(|(_, e)| ok(&e.record))
        .map(|((p, _), e)| (p, &e.record))
        .collect();
    if eligible.is_empty() {
        return None;
    }
    let (port, record) = eligible[usize::from(pick) % eligible.len()];
    let port = PORTS.into_iter().find(|p| p == port).expect("a known port");
    Some((port, record.clone()))
}

/// Turns intents into changes, tracking the state the earlier changes of the batch lead
/// to (in a scratch model).
pub(crate) fn changes_for(model: &Model, intents: &[Intent], now: Timestamp) -> Vec<(&'static str, Change)> {
    let mut scratch = model.clone();
    let mut out: Vec<(&'static str, Change)> = Vec::new();
    for intent in intents {
        let change = match intent {
            Intent::Accept { port, id, variant } => {
                let port = PORTS[usize::from(*port) % PORTS.len()];
                let e = event_sized(&id_of(*id), *variant, 40 + usize::from(*id) * 97);
                Some((port, accepted(&e, now)))
            }
            Intent::Start { pick } => pick_where(&scratch, *pick, |r| !r.status.is_terminal() && r.in_flight.is_none())
                .map(|(port, r)| (port, started(r.key(), r.attempts + 1, now))),
            Intent::Finish { pick, how } => pick_where(&scratch, *pick, |r| r.in_flight.is_some()).map(|(port, r)| {
                let retry = Timestamp::from_millis(now.as_millis() + 5_000);
                let (class, next) = match how % 5 {
                    0 => (OutcomeClass::Delivered, Transition::Delivered),
                    1 => (OutcomeClass::Permanent, Transition::Failed),
                    2 => (OutcomeClass::Retryable, Transition::Exhausted(ExhaustedBy::MaxAttempts)),
                    _ => (OutcomeClass::Retryable, Transition::RetryAt(retry)),
                };
                (port, finished(r.key(), r.attempts, now, class, next))
            }),
            Intent::Redrive { pick } => pick_where(&scratch, *pick, |r| r.status.is_terminal())
                .map(|(port, r)| (port, Change::Redriven { key: r.key(), at: now })),
            Intent::Chaos { pick } => Some(match pick_where(&scratch, *pick, |_| true) {
                Some((port, r)) => (port, started(r.key(), r.attempts + 7, now)),
                None => (
                    PORTS[0],
                    Change::Redriven {
                        key: herald_core::EventId::new("evt-unknown").unwrap().key(),
                        at: now,
                    },
                ),
            }),
        };
        if let Some((port, change)) = change {
            scratch.apply(&[(port, change.clone())]);
            out.push((port, change));
        }
    }
    out
}
