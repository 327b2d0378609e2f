//! What the store does, one behaviour per test, through the public API.

mod support;

use std::sync::Arc;

use herald_core::{
    ApplyError, Change, DeliveryStatus, Engine, EngineConfig, EventKey, ExhaustedBy, OutcomeClass, Output, Timestamp,
    Transition,
};
use herald_store::{CommitError, ReadError, RedbStore, RedriveError, Rejection, Store};
use support::{accepted, at, event, event_sized, finished, list_all, started};

fn file_store() -> (tempfile::TempDir, RedbStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path().join("herald.redb")).unwrap();
    (dir, store)
}

fn counts(store: &dyn Store, port: &str) -> Vec<(DeliveryStatus, u64)> {
    store
        .count_by_status(port)
        .unwrap()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Takes a delivery through one attempt that ends in `class` → `next`.
fn attempt(store: &dyn Store, port: &str, key: EventKey, n: u32, t: u64, class: OutcomeClass, next: Transition) {
    store
        .commit(&[
            (port, started(key, n, at(t))),
            (port, finished(key, n, at(t + 10), class, next)),
        ])
        .unwrap();
}

#[test]
fn batch_reads_answer_every_key_in_order_across_ports_and_each_bad_key_alone() {
    let (_dir, store) = file_store();
    let (a, b, gone) = (event("evt-a"), event("evt-b"), event("evt-never-sent"));
    let applied = store
        .commit(&[("orders", accepted(&a, at(0))), ("billing", accepted(&b, at(1)))])
        .unwrap();

    let keys = [
        ("billing", b.key()),
        ("orders", gone.key()),
        ("", a.key()),
        ("orders", a.key()),
    ];
    let records = store.records(&keys);
    let events = store.events(&keys);

    assert_eq!(records.len(), 4);
    assert_eq!(records[0].as_ref().unwrap(), &Some(applied[1].record.clone()));
    assert_eq!(records[1].as_ref().unwrap(), &None);
    assert!(matches!(records[2], Err(ReadError::Port(_))), "{:?}", records[2]);
    assert_eq!(records[3].as_ref().unwrap(), &Some(applied[0].record.clone()));
    assert_eq!(events.len(), 4);
    assert_eq!(events[0].as_ref().unwrap(), &Some(b));
    assert_eq!(events[1].as_ref().unwrap(), &None);
    assert!(matches!(events[2], Err(ReadError::Port(_))), "{:?}", events[2]);
    assert_eq!(events[3].as_ref().unwrap(), &Some(a));
}

#[test]
fn an_accepted_event_is_stored_with_a_pending_record() {
    let (_dir, store) = file_store();
    let e = event("evt-1");
    let applied = store.commit(&[("orders", accepted(&e, at(0)))]).unwrap();
    assert_eq!(applied.len(), 1);
    assert!(!applied[0].existed);
    assert_eq!(applied[0].record.status, DeliveryStatus::Pending);
    assert_eq!(applied[0].record.next_attempt_at, Some(at(0)));

    assert_eq!(store.event("orders", e.key()).unwrap(), Some(e.clone()));
    assert_eq!(
        store.record("orders", e.key()).unwrap(),
        Some(applied[0].record.clone())
    );
    assert_eq!(counts(&store, "orders"), [(DeliveryStatus::Pending, 1)]);
    assert_eq!(store.ports().unwrap(), ["orders"]);
    assert_eq!(store.record("orders", event("evt-2").key()).unwrap(), None);
    assert_eq!(store.commit(&[]).unwrap(), [], "an empty batch commits nothing");
}

#[test]
fn a_batch_spans_ports_and_later_changes_see_earlier_ones() {
    let (_dir, store) = file_store();
    let (a, b) = (event("evt-a"), event("evt-b"));
    let applied = store
        .commit(&[
            ("orders", accepted(&a, at(0))),
            ("billing", accepted(&b, at(0))),
            ("orders", started(a.key(), 1, at(1))),
            (
                "orders",
                finished(a.key(), 1, at(2), OutcomeClass::Delivered, Transition::Delivered),
            ),
        ])
        .unwrap();
    assert_eq!(applied.len(), 4);
    assert_eq!(applied[2].record.in_flight.map(|f| f.attempt), Some(1));
    assert_eq!(applied[3].record.status, DeliveryStatus::Delivered);
    assert_eq!(applied[3].attempt.as_ref().map(|a| a.attempt), Some(1));

    assert_eq!(
        store.record("orders", a.key()).unwrap().map(|r| r.status),
        Some(DeliveryStatus::Delivered)
    );
    assert_eq!(counts(&store, "orders"), [(DeliveryStatus::Delivered, 1)]);
    assert_eq!(counts(&store, "billing"), [(DeliveryStatus::Pending, 1)]);
    assert_eq!(store.ports().unwrap(), ["billing", "orders"]);
}

#[test]
fn resending_the_same_event_changes_nothing_and_different_content_is_refused() {
    let (_dir, store) = file_store();
    let e = event_sized("evt-1", 0, 10);
    store.commit(&[("orders", accepted(&e, at(0)))]).unwrap();
    attempt(
        &store,
        "orders",
        e.key(),
        1,
        5,
        OutcomeClass::Delivered,
        Transition::Delivered,
    );

    let again = store.commit(&[("orders", accepted(&e, at(100)))]).unwrap();
    assert!(again[0].existed);
    assert_eq!(again[0].record.status, DeliveryStatus::Delivered);
    assert_eq!(again[0].record.accepted_at, at(0));

    let other = event_sized("evt-1", 1, 10);
    let err = store.commit(&[("orders", accepted(&other, at(100)))]).unwrap_err();
    assert!(
        matches!(&err, CommitError::Rejected { index: 0, reason: Rejection::Conflict { id }, .. } if id.as_str() == "evt-1"),
        "{err}"
    );
    assert!(err.to_string().contains("different content"), "{err}");
    assert_eq!(store.event("orders", e.key()).unwrap(), Some(e));
}

#[test]
fn a_resend_within_one_batch_is_answered_from_that_batch() {
    let (_dir, store) = file_store();
    let e = event("evt-1");
    let applied = store
        .commit(&[
            ("orders", accepted(&e, at(0))),
            ("orders", started(e.key(), 1, at(1))),
            ("orders", accepted(&e, at(2))),
        ])
        .unwrap();
    assert!(applied[2].existed);
    assert_eq!(applied[2].record.attempts, 1);
    assert_eq!(counts(&store, "orders"), [(DeliveryStatus::Pending, 1)]);
}

#[test]
fn a_refused_change_leaves_nothing_of_its_batch() {
    let (_dir, store) = file_store();
    let (a, b) = (event("evt-a"), event("evt-b"));
    store.commit(&[("orders", accepted(&a, at(0)))]).unwrap();
    let err = store
        .commit(&[
            ("orders", accepted(&b, at(1))),
            ("orders", started(a.key(), 1, at(1))),
            ("orders", started(a.key(), 3, at(2))),
        ])
        .unwrap_err();
    match &err {
        CommitError::Rejected {
            index: 2,
            port,
            reason: Rejection::Apply(ApplyError::AttemptOutOfOrder { got: 3, last: 1, .. }),
            ..
        } => assert_eq!(port, "orders"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("nothing was written"), "{err}");
    assert_eq!(store.record("orders", b.key()).unwrap(), None);
    assert_eq!(store.event("orders", b.key()).unwrap(), None);
    assert_eq!(store.record("orders", a.key()).unwrap().unwrap().attempts, 0);
    assert_eq!(counts(&store, "orders"), [(DeliveryStatus::Pending, 1)]);

    let unknown = store.commit(&[("orders", started(b.key(), 1, at(3)))]).unwrap_err();
    assert!(matches!(
        unknown,
        CommitError::Rejected {
            reason: Rejection::NotFound,
            ..
        }
    ));
}

#[test]
fn records_survive_closing_and_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.redb");
    let e = event("evt-1");
    {
        let store = RedbStore::open(&path).unwrap();
        store.commit(&[("orders", accepted(&e, at(0)))]).unwrap();
        attempt(
            &store,
            "orders",
            e.key(),
            1,
            5,
            OutcomeClass::Retryable,
            Transition::RetryAt(at(5000)),
        );
    }
    let store = RedbStore::open(&path).unwrap();
    let h = store.history("orders", e.key()).unwrap().unwrap();
    assert_eq!(h.record.status, DeliveryStatus::Retrying);
    assert_eq!(h.record.next_attempt_at, Some(at(5000)));
    assert_eq!(h.attempts.len(), 1);
    assert_eq!(store.event("orders", e.key()).unwrap(), Some(e));
}

#[test]
fn restore_streams_the_unfinished_deliveries_of_one_port() {
    let (_dir, store) = file_store();
    let [pending, retrying, in_flight, delivered, failed, other_port] =
        ["p", "r", "i", "d", "f", "o"].map(|id| event(&format!("evt-{id}")));
    for e in [&pending, &retrying, &in_flight, &delivered, &failed] {
        store.commit(&[("orders", accepted(e, at(0)))]).unwrap();
    }
    store.commit(&[("billing", accepted(&other_port, at(0)))]).unwrap();
    attempt(
        &store,
        "orders",
        retrying.key(),
        1,
        10,
        OutcomeClass::Retryable,
        Transition::RetryAt(at(60_000)),
    );
    store
        .commit(&[("orders", started(in_flight.key(), 1, at(20)))])
        .unwrap();
    attempt(
        &store,
        "orders",
        delivered.key(),
        1,
        30,
        OutcomeClass::Delivered,
        Transition::Delivered,
    );
    attempt(
        &store,
        "orders",
        failed.key(),
        1,
        40,
        OutcomeClass::Permanent,
        Transition::Failed,
    );

    let mut seen = Vec::new();
    let n = store.for_each_unfinished("orders", &mut |r| seen.push(r)).unwrap();
    assert_eq!(n, 3);
    seen.sort_by_key(|r| r.id.clone());
    let ids: Vec<&str> = seen.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["evt-i", "evt-p", "evt-r"]);
    assert_eq!(seen[0].in_flight.map(|f| f.attempt), Some(1), "the interrupted attempt");
    assert_eq!(seen[2].next_attempt_at, Some(at(60_000)));
    assert_eq!(seen[2].attempts, 1);
    assert_eq!(
        store
            .for_each_unfinished("nobody", &mut |_| panic!("no records"))
            .unwrap(),
        0
    );
}

#[test]
fn an_engine_restored_from_the_store_records_the_interrupted_attempt() {
    let (_dir, store) = file_store();
    let e = event("evt-1");
    store
        .commit(&[("orders", accepted(&e, at(0))), ("orders", started(e.key(), 1, at(1)))])
        .unwrap();

    let mut records = Vec::new();
    store.for_each_unfinished("orders", &mut |r| records.push(r)).unwrap();
    let mut engine = Engine::restore(EngineConfig::default(), records, at(1000)).unwrap();
    let mut batch = Vec::new();
    while let Some(out) = engine.poll_output() {
        if let Output::Persist(change) = out {
            batch.push(("orders", change));
        }
    }
    assert!(!batch.is_empty());
    store.commit(&batch).unwrap();

    let h = store.history("orders", e.key()).unwrap().unwrap();
    assert_eq!(h.attempts.len(), 1);
    assert_eq!(h.attempts[0].outcome.code, "interrupted");
    assert_eq!(h.record.in_flight, None);
    assert_eq!(h.record.attempts, 1);
}

#[test]
fn history_keeps_every_attempt_across_redrive_cycles() {
    let (_dir, store) = file_store();
    let e = event("evt-1");
    store.commit(&[("orders", accepted(&e, at(0)))]).unwrap();
    attempt(
        &store,
        "orders",
        e.key(),
        1,
        10,
        OutcomeClass::Retryable,
        Transition::RetryAt(at(100)),
    );
    attempt(
        &store,
        "orders",
        e.key(),
        2,
        100,
        OutcomeClass::Retryable,
        Transition::Exhausted(ExhaustedBy::MaxAttempts),
    );
    let redriven = store.redrive("orders", e.key(), at(500)).unwrap();
    assert_eq!(redriven.status, DeliveryStatus::Pending);
    assert_eq!(redriven.cycle, 1);
    attempt(
        &store,
        "orders",
        e.key(),
        3,
        600,
        OutcomeClass::Delivered,
        Transition::Delivered,
    );

    let h = store.history("orders", e.key()).unwrap().unwrap();
    let summary: Vec<(u32, u32, &str)> = h
        .attempts
        .iter()
        .map(|a| (a.attempt, a.cycle, a.outcome.code.as_str()))
        .collect();
    assert_eq!(summary, [(1, 0, "http_503"), (2, 0, "http_503"), (3, 1, "http_200")]);
    assert_eq!(h.record.status, DeliveryStatus::Delivered);
    assert_eq!(store.history("orders", event("evt-2").key()).unwrap(), None);
}

#[test]
fn redrive_refuses_active_and_unknown_deliveries() {
    let (_dir, store) = file_store();
    let e = event("evt-1");
    store.commit(&[("orders", accepted(&e, at(0)))]).unwrap();
    let active = store.redrive("orders", e.key(), at(1)).unwrap_err();
    assert!(
        matches!(
            &active,
            RedriveError::NotTerminal {
                status: DeliveryStatus::Pending,
                ..
            }
        ),
        "{active}"
    );
    assert!(active.to_string().contains("evt-1 is pending"), "{active}");
    let unknown = store.redrive("orders", event("evt-2").key(), at(1)).unwrap_err();
    assert!(matches!(unknown, RedriveError::NotFound { .. }), "{unknown}");
    assert!(unknown.to_string().contains("\"orders\""), "{unknown}");
}

#[test]
fn listing_pages_through_a_status_oldest_first() {
    let (_dir, store) = file_store();
    let events: Vec<_> = (0..7).map(|i| event(&format!("evt-{i}"))).collect();
    for (i, e) in events.iter().enumerate() {
        store.commit(&[("orders", accepted(e, at(100 - i as u64)))]).unwrap();
    }
    attempt(
        &store,
        "orders",
        events[3].key(),
        1,
        200,
        OutcomeClass::Delivered,
        Transition::Delivered,
    );

    let page = store.list("orders", Some(DeliveryStatus::Pending), None, 4).unwrap();
    let ids: Vec<&str> = page.items.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["evt-6", "evt-5", "evt-4", "evt-2"], "oldest acceptance first");
    let cursor = page.next.expect("more pages");
    let rest = store
        .list("orders", Some(DeliveryStatus::Pending), Some(&cursor), 4)
        .unwrap();
    let ids: Vec<&str> = rest.items.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["evt-1", "evt-0"]);
    assert_eq!(rest.next, None);

    // The cursor's text form works as well, and listing every status puts pending first.
    let parsed = cursor.to_string().parse().unwrap();
    assert_eq!(
        store
            .list("orders", Some(DeliveryStatus::Pending), Some(&parsed), 4)
            .unwrap(),
        rest
    );
    let all: Vec<DeliveryStatus> = list_all(&store, "orders", None, 2).iter().map(|r| r.status).collect();
    assert_eq!(all.len(), 7);
    assert_eq!(all.last(), Some(&DeliveryStatus::Delivered));
    assert!(store.list("orders", None, None, 0).unwrap().items.is_empty());
}

#[test]
fn one_file_keeps_ports_apart() {
    let (_dir, store) = file_store();
    let e = event("evt-1");
    store
        .commit(&[("a", accepted(&e, at(0))), ("ab", accepted(&e, at(0)))])
        .unwrap();
    attempt(
        &store,
        "a",
        e.key(),
        1,
        10,
        OutcomeClass::Delivered,
        Transition::Delivered,
    );

    assert_eq!(
        store.record("a", e.key()).unwrap().unwrap().status,
        DeliveryStatus::Delivered
    );
    assert_eq!(
        store.record("ab", e.key()).unwrap().unwrap().status,
        DeliveryStatus::Pending
    );
    assert_eq!(list_all(&store, "a", None, 10).len(), 1);
    assert_eq!(list_all(&store, "ab", None, 10).len(), 1);
    assert_eq!(store.history("ab", e.key()).unwrap().unwrap().attempts, []);
    assert_eq!(store.record("b", e.key()).unwrap(), None);
}

#[test]
fn prune_deletes_old_terminal_deliveries_with_their_events_and_attempts() {
    let (_dir, store) = file_store();
    let [old_done, old_failed, recent_done, active] = ["a", "b", "c", "d"].map(|id| event(&format!("evt-{id}")));
    for e in [&old_done, &old_failed, &recent_done, &active] {
        store.commit(&[("orders", accepted(e, at(0)))]).unwrap();
    }
    attempt(
        &store,
        "orders",
        old_done.key(),
        1,
        10,
        OutcomeClass::Delivered,
        Transition::Delivered,
    );
    attempt(
        &store,
        "orders",
        old_failed.key(),
        1,
        20,
        OutcomeClass::Permanent,
        Transition::Failed,
    );
    attempt(
        &store,
        "orders",
        recent_done.key(),
        1,
        5000,
        OutcomeClass::Delivered,
        Transition::Delivered,
    );
    store.commit(&[("billing", accepted(&old_done, at(0)))]).unwrap();
    attempt(
        &store,
        "billing",
        old_done.key(),
        1,
        10,
        OutcomeClass::Delivered,
        Transition::Delivered,
    );

    assert_eq!(store.prune(at(1000)).unwrap(), 3);
    for e in [&old_done, &old_failed] {
        assert_eq!(store.record("orders", e.key()).unwrap(), None);
        assert_eq!(store.event("orders", e.key()).unwrap(), None);
        assert_eq!(store.history("orders", e.key()).unwrap(), None);
    }
    assert!(store.record("orders", recent_done.key()).unwrap().is_some());
    assert!(store.record("orders", active.key()).unwrap().is_some());
    assert_eq!(
        counts(&store, "orders"),
        [(DeliveryStatus::Pending, 1), (DeliveryStatus::Delivered, 1)]
    );
    assert_eq!(store.ports().unwrap(), ["orders"], "a port with nothing left is gone");
    assert_eq!(store.prune(at(1000)).unwrap(), 0);
}

#[test]
fn port_names_must_fit_the_key_layout() {
    let (_dir, store) = file_store();
    let long = "p".repeat(herald_store::MAX_PORT_LEN + 1);
    let err = store
        .commit(&[(long.as_str(), accepted(&event("evt-1"), at(0)))])
        .unwrap_err();
    assert!(err.to_string().contains("256 bytes; the limit is 255"), "{err}");
    assert!(matches!(
        store.record("", event("evt-1").key()),
        Err(ReadError::Port(_))
    ));
}

#[test]
fn the_store_is_shared_across_threads_as_a_trait_object() {
    let store: Arc<dyn Store> = Arc::new(RedbStore::in_memory().unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..10 {
                    let e = event(&format!("evt-{t}-{i}"));
                    store.commit(&[("orders", accepted(&e, at(i)))]).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(store.count_by_status("orders").unwrap()[&DeliveryStatus::Pending], 40);
}

#[test]
fn an_integrity_check_passes_on_a_busy_store() {
    let (_dir, mut store) = file_store();
    for i in 0..20u64 {
        let e = event(&format!("evt-{i}"));
        store.commit(&[("orders", accepted(&e, at(i)))]).unwrap();
        if i % 2 == 0 {
            attempt(
                &store,
                "orders",
                e.key(),
                1,
                100 + i,
                OutcomeClass::Delivered,
                Transition::Delivered,
            );
        }
    }
    assert_eq!(store.prune(at(115)).unwrap(), 3);
    let report = store.check_integrity().unwrap();
    assert_eq!(report.deliveries, 17);
    assert_eq!(report.attempts, 7);
    assert!(!report.repaired);
}

#[test]
fn a_change_to_a_terminal_delivery_is_refused() {
    let (_dir, store) = file_store();
    let e = event("evt-1");
    store.commit(&[("orders", accepted(&e, at(0)))]).unwrap();
    attempt(
        &store,
        "orders",
        e.key(),
        1,
        10,
        OutcomeClass::Delivered,
        Transition::Delivered,
    );
    let err = store
        .commit(&[(
            "orders",
            Change::AttemptStarted {
                key: e.key(),
                attempt: 2,
                at: at(20),
                deadline: Timestamp::MAX,
            },
        )])
        .unwrap_err();
    assert!(err.to_string().contains("is delivered and cannot change"), "{err}");
}

#[test]
fn a_large_prune_runs_in_several_bounded_transactions() {
    let store = RedbStore::in_memory().unwrap();
    // More than one prune transaction's worth (10 000), all delivered long ago.
    let n = 10_050u64;
    let events: Vec<_> = (0..n).map(|i| event(&format!("evt-{i}"))).collect();
    for chunk in events.chunks(2_000) {
        let mut batch = Vec::new();
        for e in chunk {
            batch.push(("orders", accepted(e, at(0))));
            batch.push(("orders", started(e.key(), 1, at(1))));
            batch.push((
                "orders",
                finished(e.key(), 1, at(2), OutcomeClass::Delivered, Transition::Delivered),
            ));
        }
        store.commit(&batch).unwrap();
    }
    let keep = event("evt-keep");
    store.commit(&[("orders", accepted(&keep, at(3)))]).unwrap();

    assert_eq!(store.prune(at(100)).unwrap(), n);
    assert_eq!(counts(&store, "orders"), [(DeliveryStatus::Pending, 1)]);
    assert_eq!(store.record("orders", events[0].key()).unwrap(), None);
    assert_eq!(store.history("orders", events[n as usize - 1].key()).unwrap(), None);
    assert!(store.event("orders", keep.key()).unwrap().is_some());
}
