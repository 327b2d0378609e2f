//! The checks at the end of a run, once every delivery had its chance to end: what the
//! store holds against what the application sent, what the transports answered and what
//! the receiver saw.

use std::collections::{BTreeMap, BTreeSet};

use herald::core::{DeliveryRecord, OutcomeClass};
use herald::{DeliveryStatus, EventId};
use herald_store::{Cursor, RedbStore, Store};

use super::plan::Plan;
use super::world::{SendOutcome, WorldState, app_event, content_hash};

/// Outcomes after which the application cannot know whether the receiver got the event.
const AMBIGUOUS: [&str; 3] = ["timeout", "interrupted", "connection_reset"];

fn list_all(store: &RedbStore, port: &str) -> Result<Vec<DeliveryRecord>, String> {
    let mut out = Vec::new();
    let mut after: Option<Cursor> = None;
    loop {
        let page = store.list(port, None, after.as_ref(), 256).map_err(|e| e.to_string())?;
        out.extend(page.items);
        match page.next {
            Some(c) => after = Some(c),
            None => return Ok(out),
        }
    }
}

fn number_of(id: &str) -> Option<u32> {
    id.strip_prefix("evt-")?.parse().ok()
}

/// Checks invariants 1–8 on the final state; records violations in `w`.
pub(super) fn final_checks(plan: &Plan, store: &RedbStore, w: &mut WorldState) {
    let mut problems: Vec<String> = Vec::new();
    let mut deliveries = 0;
    let mut duplicates = 0;
    let (mut timeouts, mut interrupted) = (0, 0);
    let store_hi = plan.store_latency_ms.1;
    for (pi, p) in plan.ports.iter().enumerate() {
        let records = match list_all(store, &p.name) {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("the store cannot list port {}: {e}", p.name));
                continue;
            }
        };
        let mut stored = BTreeSet::new();
        for r in records {
            deliveries += 1;
            let id = r.id.as_str().to_owned();
            stored.insert(id.clone());
            let ctx = format!("{id} on {}", p.name);
            // Invariant 8: every delivery ended.
            if !r.status.is_terminal() {
                problems.push(format!(
                    "invariant 8 (liveness): {ctx} is still {} after the faults stopped",
                    r.status
                ));
            }
            let Some(n) = number_of(&id) else {
                problems.push(format!("{ctx}: the store holds an id the application never used"));
                continue;
            };
            let variants: BTreeSet<u8> = w
                .sends
                .iter()
                .filter(|s| s.port == pi && s.id == n)
                .map(|s| s.variant)
                .collect();
            if variants.is_empty() {
                problems.push(format!("{ctx}: stored but never sent"));
            }
            if variants.contains(&9) {
                problems.push(format!("{ctx}: an event over the payload limit was stored"));
            }
            // Invariant 6: the stored bytes are those of a send.
            let stored_hash = match store.event(&p.name, r.key()) {
                Ok(Some(e)) => {
                    let h = content_hash(&e);
                    if !variants
                        .iter()
                        .any(|v| content_hash(&app_event(n, *v, plan.payload_limit)) == h)
                    {
                        problems.push(format!(
                            "invariant 6 (same id, same bytes): {ctx}: the stored event is none of the contents sent"
                        ));
                    }
                    Some(h)
                }
                Ok(None) => {
                    problems.push(format!("{ctx}: the record has no event"));
                    None
                }
                Err(e) => {
                    problems.push(format!("{ctx}: the event cannot be read: {e}"));
                    None
                }
            };
            let history = match store.history(&p.name, r.key()) {
                Ok(Some(h)) => h.attempts,
                other => {
                    problems.push(format!("{ctx}: no history: {other:?}"));
                    continue;
                }
            };
            // Invariant 3: attempt numbers 1, 2, ... each once, cycles in order.
            let numbers: Vec<u32> = history.iter().map(|a| a.attempt).collect();
            if numbers != (1..=r.attempts).collect::<Vec<_>>() {
                problems.push(format!(
                    "invariant 3 (attempt numbers only grow): {ctx}: history has attempts {numbers:?}, the record {}",
                    r.attempts
                ));
            }
            if history.windows(2).any(|a| a[1].cycle < a[0].cycle) {
                problems.push(format!("invariant 3: {ctx}: cycles out of order in the history"));
            }
            // Invariant 7: at most max_attempts per cycle.
            let mut per_cycle: BTreeMap<u32, u32> = BTreeMap::new();
            for a in &history {
                *per_cycle.entry(a.cycle).or_default() += 1;
            }
            if let Some((c, k)) = per_cycle.iter().find(|(_, k)| **k > p.policy.get_max_attempts()) {
                problems.push(format!(
                    "invariant 7 (at most max_attempts): {ctx}: {k} attempts in cycle {c}; max_attempts is {}",
                    p.policy.get_max_attempts()
                ));
            }
            if r.status == DeliveryStatus::Delivered
                && history
                    .last()
                    .is_none_or(|a| a.outcome.class != OutcomeClass::Delivered)
            {
                problems.push(format!(
                    "invariant 4: {ctx} is delivered but its last attempt did not succeed"
                ));
            }
            let by_attempt: BTreeMap<u32, &herald::core::AttemptRecord> =
                history.iter().map(|a| (a.attempt, a)).collect();
            for a in &history {
                let code = a.outcome.code.as_str();
                timeouts += u64::from(code == "timeout");
                interrupted += u64::from(code == "interrupted");
                let call = w.calls.get(&(pi, id.clone(), a.attempt));
                // Invariant 4: delivered only after a success of this very attempt.
                if a.outcome.class == OutcomeClass::Delivered {
                    let took = w
                        .arrivals
                        .iter()
                        .any(|x| x.port == pi && x.id == id && x.attempt == a.attempt && x.accepted);
                    if !call.is_some_and(|c| c.success) || !took {
                        problems.push(format!(
                            "invariant 4 (delivered only after a success for the current attempt): {ctx} attempt {} is recorded delivered; transport answered {:?}, receiver took it: {took}",
                            a.attempt,
                            call.and_then(|c| c.answered.clone())
                        ));
                    }
                }
                // Every recorded outcome is what the transport answered for that attempt,
                // or a timeout / interruption the driver saw instead.
                let consistent = match (code, call) {
                    ("timeout" | "interrupted", _) => true,
                    ("io_error" | "event_missing", None) => true,
                    (_, Some(c)) => c.answered.as_deref() == Some(code),
                    (_, None) => false,
                };
                if !consistent {
                    problems.push(format!(
                        "invariant 4: {ctx} attempt {} is recorded as {code}, but the transport answered {:?}",
                        a.attempt,
                        call.map(|c| c.answered.clone())
                    ));
                }
                // Invariant 7: an attempt ends by its timeout (the record may lag by the
                // store's latency of a round or two).
                let limit = a
                    .started_at
                    .saturating_add(p.policy.get_attempt_timeout())
                    .saturating_add(std::time::Duration::from_millis(8 * store_hi + 2));
                if code != "interrupted" && a.finished_at > limit {
                    problems.push(format!(
                        "invariant 7 (every attempt ends by its timeout): {ctx} attempt {} ran from {:?} to {:?} ({})",
                        a.attempt, a.started_at, a.finished_at, code
                    ));
                }
            }
            // What the receiver saw of this event.
            let arrivals: Vec<_> = w.arrivals.iter().filter(|x| x.port == pi && x.id == id).collect();
            let mut taken: BTreeMap<u32, u32> = BTreeMap::new();
            for x in &arrivals {
                if stored_hash.is_some_and(|h| h != x.content) {
                    problems.push(format!(
                        "invariant 6 (same id, same bytes): {ctx} attempt {} carried other bytes than the stored event",
                        x.attempt
                    ));
                }
                let Some(a) = by_attempt.get(&x.attempt) else {
                    problems.push(format!(
                        "invariant 2: {ctx} attempt {} reached the receiver but is not in the history",
                        x.attempt
                    ));
                    continue;
                };
                if x.accepted {
                    *taken.entry(a.cycle).or_default() += 1;
                    // Invariant 5: a receiver takes an event again only after an attempt
                    // whose outcome Herald could not know.
                    if a.outcome.class != OutcomeClass::Delivered && !AMBIGUOUS.contains(&a.outcome.code.as_str()) {
                        problems.push(format!(
                            "invariant 5 (duplicates only after ambiguity): {ctx} attempt {} was taken by the receiver but recorded as {}",
                            x.attempt, a.outcome.code
                        ));
                    }
                }
            }
            let dups: u32 = taken.values().map(|k| k.saturating_sub(1)).sum();
            duplicates += u64::from(dups);
            if plan.fault_free {
                if dups > 0 {
                    problems.push(format!(
                        "invariant 5: {ctx}: {dups} duplicates at the receiver in a run without faults"
                    ));
                }
                if let Some(a) = history.iter().find(|a| a.outcome.class != OutcomeClass::Delivered) {
                    problems.push(format!(
                        "{ctx}: attempt {} ended {} in a run without faults",
                        a.attempt, a.outcome.code
                    ));
                }
            }
        }
        // Nothing reached the receiver that was never durably accepted.
        let unknown: BTreeSet<&str> = w
            .arrivals
            .iter()
            .filter(|x| x.port == pi && !stored.contains(&x.id))
            .map(|x| x.id.as_str())
            .collect();
        if let Some(id) = unknown.first() {
            problems.push(format!(
                "invariant 2: {id} reached the receiver on {} but is not in the store",
                p.name
            ));
        }
        // Invariant 1: every acknowledged send is stored, with the content acknowledged,
        // and ended with a history.
        for s in w.sends.iter().filter(|s| s.port == pi) {
            let Some(SendOutcome::Acked(_)) = s.outcome else {
                continue;
            };
            let event = app_event(s.id, s.variant, plan.payload_limit);
            let ctx = format!("{} on {}", event.id(), p.name);
            match store.history(&p.name, EventId::new(event.id().as_str()).expect("valid").key()) {
                Ok(Some(h)) => {
                    if h.record.fingerprint != event.fingerprint() {
                        problems.push(format!(
                            "invariant 1: {ctx}: acknowledged with content v{}, stored with other content",
                            s.variant
                        ));
                    }
                    if !h.record.status.is_terminal() || h.attempts.is_empty() {
                        problems.push(format!(
                            "invariant 1: {ctx} was acknowledged but is {} with {} attempts",
                            h.record.status,
                            h.attempts.len()
                        ));
                    }
                }
                other => problems.push(format!(
                    "invariant 1 (an acknowledged send is never lost): {ctx} was acknowledged at {} ms but is not stored: {other:?}",
                    s.at
                )),
            }
        }
    }
    let unanswered = w.sends.iter().find(|s| {
        !matches!(
            s.outcome,
            Some(SendOutcome::Acked(_) | SendOutcome::Conflict | SendOutcome::TooLarge | SendOutcome::ShuttingDown)
        )
    });
    if let Some(s) = unanswered.filter(|_| plan.fault_free) {
        problems.push(format!(
            "a send in a run without faults was not answered for good: {s:?}"
        ));
    }
    w.deliveries = deliveries;
    w.duplicates = duplicates;
    w.timeouts = timeouts;
    w.interrupted = interrupted;
    for p in problems {
        w.violation(p);
    }
}
