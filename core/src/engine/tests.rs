//! Engine scenarios, one behaviour each. The cross-cutting invariants are checked on
//! random input sequences by the reference-model test in `tests/` (herald-tests).

use std::time::Duration;

use super::*;
use crate::id::Fingerprint;
use crate::report::{NetworkError, Observation};
use crate::retry::{ExhaustedBy, Jitter, RetryPolicy};
use crate::retry_after::RetryAfter;

const T0: Timestamp = Timestamp::from_secs(1_700_000_000);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn at(offset_secs: u64) -> Timestamp {
    T0.saturating_add(secs(offset_secs))
}

/// 10 s, 20 s, 30 s without jitter, 4 attempts, 5 s timeout, 2 in flight.
fn config() -> EngineConfig {
    EngineConfig {
        policy: RetryPolicy::fixed(vec![secs(10), secs(20), secs(30)])
            .jitter(Jitter::None)
            .attempt_timeout(secs(5)),
        max_in_flight: 2,
        payload_limit: 100,
        ..EngineConfig::default()
    }
}

fn event(id: &str) -> ExternalEvent {
    ExternalEvent::builder("order.created")
        .id(id)
        .payload(b"{}".to_vec())
        .occurred_at(T0)
        .build()
        .unwrap()
}

fn http(status: u16) -> AttemptReport {
    AttemptReport::new(Observation::Http {
        status,
        retry_after: None,
    })
}

fn drain(e: &mut Engine) -> Vec<Output> {
    std::iter::from_fn(|| e.poll_output()).collect()
}

fn attempts(outputs: &[Output]) -> Vec<(EventKey, u32)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Attempt(a) => Some((a.key, a.attempt)),
            _ => None,
        })
        .collect()
}

fn finished(outputs: &[Output]) -> Vec<(u32, String, Transition)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Persist(Change::AttemptFinished {
                attempt, outcome, next, ..
            }) => Some((*attempt, outcome.code.clone(), *next)),
            _ => None,
        })
        .collect()
}

fn send(e: &mut Engine, id: &str, now: Timestamp) -> Vec<Output> {
    let ack = e
        .handle_input(
            Input::Send {
                event: event(id),
                prior: None,
            },
            now,
        )
        .unwrap();
    assert_eq!(ack, Ack::Accepted);
    drain(e)
}

fn report(e: &mut Engine, id: &str, attempt: u32, r: AttemptReport, now: Timestamp) -> Ack {
    let key = EventId::new(id).unwrap().key();
    e.handle_input(
        Input::Report {
            key,
            attempt,
            report: r,
        },
        now,
    )
    .unwrap()
}

#[test]
fn a_send_persists_acceptance_and_the_attempt_start_before_the_attempt() {
    let mut e = Engine::new(config(), T0).unwrap();
    let out = send(&mut e, "a", T0);
    let key = event("a").key();
    assert!(matches!(&out[0], Output::Persist(Change::Accepted { event, at }) if event.key() == key && *at == T0));
    assert_eq!(
        out[1],
        Output::Persist(Change::AttemptStarted {
            key,
            attempt: 1,
            at: T0,
            deadline: at(5)
        })
    );
    assert_eq!(
        out[2],
        Output::Attempt(Attempt {
            key,
            attempt: 1,
            deadline: at(5)
        })
    );
    assert_eq!(out.len(), 3);
}

#[test]
fn success_delivers_and_stops_tracking() {
    let mut e = Engine::new(config(), T0).unwrap();
    send(&mut e, "a", T0);
    assert_eq!(report(&mut e, "a", 1, http(204), at(1)), Ack::Recorded);
    assert_eq!(
        finished(&drain(&mut e)),
        [(1, "http_204".into(), Transition::Delivered)]
    );
    assert_eq!(e.tracked(&event("a").key()), None);
    assert_eq!(e.poll_timeout(), None, "the finished attempt's deadline wakes nobody");
}

#[test]
fn a_retryable_failure_waits_for_its_backoff_then_attempts_again() {
    let mut e = Engine::new(config(), T0).unwrap();
    send(&mut e, "a", T0);
    report(&mut e, "a", 1, http(503), at(1));
    assert_eq!(
        finished(&drain(&mut e)),
        [(1, "http_503".into(), Transition::RetryAt(at(11)))]
    );
    let t = e.tracked(&event("a").key()).unwrap();
    assert_eq!((t.status, t.at), (DeliveryStatus::Retrying, Some(at(11))));
    e.handle_timeout(Timestamp::from_millis(at(11).as_millis() - 1));
    assert!(attempts(&drain(&mut e)).is_empty(), "no attempt before next_attempt_at");
    e.handle_timeout(at(11));
    assert_eq!(attempts(&drain(&mut e)), [(event("a").key(), 2)]);
}

/// Found by the `engine_sequence` fuzzer: a retry with a zero delay (a `0` in a fixed
/// schedule, or full jitter drawing 0) was put on the timer heap and waited for the
/// driver's next wake-up although an attempt slot was free.
#[test]
fn fuzz_a_retry_due_at_once_starts_in_the_same_step() {
    let mut e = Engine::new(
        EngineConfig {
            policy: RetryPolicy::fixed(vec![Duration::ZERO])
                .jitter(Jitter::None)
                .attempt_timeout(secs(5)),
            ..config()
        },
        T0,
    )
    .unwrap();
    send(&mut e, "a", T0);
    report(&mut e, "a", 1, http(503), at(1));
    let out = drain(&mut e);
    assert_eq!(finished(&out), [(1, "http_503".into(), Transition::RetryAt(at(1)))]);
    assert_eq!(attempts(&out), [(event("a").key(), 2)], "{out:#?}");
    let t = e.tracked(&event("a").key()).unwrap();
    assert!(t.in_flight && t.attempt == 2, "{t:?}");
}

#[test]
fn a_permanent_failure_fails_after_exactly_one_attempt() {
    let mut e = Engine::new(config(), T0).unwrap();
    send(&mut e, "a", T0);
    report(&mut e, "a", 1, http(400), at(1));
    assert_eq!(finished(&drain(&mut e)), [(1, "http_400".into(), Transition::Failed)]);
    e.handle_timeout(at(1000));
    assert!(drain(&mut e).is_empty());
}

#[test]
fn always_failing_exhausts_after_exactly_max_attempts() {
    let mut e = Engine::new(config(), T0).unwrap();
    let mut out = send(&mut e, "a", T0);
    let mut made = 0;
    while let Some(&(_, attempt)) = attempts(&out).first() {
        made += 1;
        let now = e.now();
        report(
            &mut e,
            "a",
            attempt,
            AttemptReport::new(Observation::Network(NetworkError::Connect)),
            now,
        );
        out = drain(&mut e);
        if let Transition::RetryAt(t) = finished(&out)[0].2 {
            e.handle_timeout(t);
            out.extend(drain(&mut e));
        }
    }
    assert_eq!(made, 4);
    assert_eq!(finished(&out)[0].2, Transition::Exhausted(ExhaustedBy::MaxAttempts));
    assert_eq!(e.tracked_count(), 0);
}

#[test]
fn an_attempt_past_its_deadline_times_out_and_its_late_report_is_ignored() {
    let mut e = Engine::new(config(), T0).unwrap();
    send(&mut e, "a", T0);
    e.handle_timeout(at(5));
    assert_eq!(
        finished(&drain(&mut e)),
        [(1, "timeout".into(), Transition::RetryAt(at(15)))]
    );
    assert_eq!(report(&mut e, "a", 1, http(200), at(6)), Ack::Stale);
    assert!(drain(&mut e).is_empty());
}

#[test]
fn reports_for_old_attempts_or_unknown_keys_are_stale() {
    let mut e = Engine::new(config(), T0).unwrap();
    send(&mut e, "a", T0);
    report(&mut e, "a", 1, http(500), at(1));
    e.handle_timeout(at(11));
    drain(&mut e);
    assert_eq!(
        report(&mut e, "a", 1, http(200), at(12)),
        Ack::Stale,
        "attempt 2 is current"
    );
    assert_eq!(report(&mut e, "zzz", 1, http(200), at(12)), Ack::Stale);
    assert!(drain(&mut e).is_empty());
    assert_eq!(report(&mut e, "a", 2, http(200), at(12)), Ack::Recorded);
}

#[test]
fn the_same_event_again_is_a_duplicate_and_different_content_a_conflict() {
    let mut e = Engine::new(config(), T0).unwrap();
    send(&mut e, "a", T0);
    let again = e.handle_input(
        Input::Send {
            event: event("a"),
            prior: None,
        },
        T0,
    );
    assert_eq!(
        again,
        Ok(Ack::Duplicate {
            status: DeliveryStatus::Pending
        })
    );
    assert!(drain(&mut e).is_empty(), "no second delivery");
    let changed = ExternalEvent::builder("order.created")
        .id("a")
        .payload(b"[]".to_vec())
        .occurred_at(T0)
        .build()
        .unwrap();
    let conflict = e.handle_input(
        Input::Send {
            event: changed,
            prior: None,
        },
        T0,
    );
    assert_eq!(
        conflict,
        Err(InputError::Conflict {
            id: EventId::new("a").unwrap()
        })
    );
}

#[test]
fn a_resend_of_a_finished_delivery_is_answered_from_the_stored_record() {
    let mut e = Engine::new(config(), T0).unwrap();
    let mut prior = DeliveryRecord::accepted(&event("a"), T0);
    prior.status = DeliveryStatus::Delivered;
    let ack = e.handle_input(
        Input::Send {
            event: event("a"),
            prior: Some(prior.clone()),
        },
        at(1),
    );
    assert_eq!(
        ack,
        Ok(Ack::Duplicate {
            status: DeliveryStatus::Delivered
        })
    );
    assert!(drain(&mut e).is_empty());
    prior.fingerprint = Fingerprint(prior.fingerprint.0 ^ 1);
    let ack = e.handle_input(
        Input::Send {
            event: event("a"),
            prior: Some(prior),
        },
        at(1),
    );
    assert!(matches!(ack, Err(InputError::Conflict { .. })));
}

#[test]
fn an_oversized_payload_is_refused_with_limit_and_size_and_nothing_is_attempted() {
    let mut e = Engine::new(config(), T0).unwrap();
    let big = ExternalEvent::builder("t")
        .id("big")
        .payload(vec![0; 101])
        .occurred_at(T0)
        .build()
        .unwrap();
    let err = e
        .handle_input(
            Input::Send {
                event: big,
                prior: None,
            },
            T0,
        )
        .unwrap_err();
    assert_eq!(err, InputError::PayloadTooLarge { size: 101, limit: 100 });
    assert_eq!(err.to_string(), "payload is 101 bytes; this port's limit is 100 bytes");
    assert!(drain(&mut e).is_empty());
}

#[test]
fn no_more_than_max_in_flight_attempts_run_at_once() {
    let mut e = Engine::new(config(), T0).unwrap();
    let started: Vec<_> = ["a", "b", "c", "d"]
        .iter()
        .flat_map(|id| attempts(&send(&mut e, id, T0)))
        .collect();
    assert_eq!(started.len(), 2);
    assert_eq!(
        e.tracked(&event("c").key()).unwrap().at,
        None,
        "waiting for a free slot"
    );
    report(&mut e, "a", 1, http(200), at(1));
    assert_eq!(attempts(&drain(&mut e)), [(event("c").key(), 1)]);
    assert_eq!(e.in_flight(), 2);
}

#[test]
fn a_clock_that_steps_back_is_clamped() {
    let mut e = Engine::new(config(), T0).unwrap();
    send(&mut e, "a", at(100));
    report(&mut e, "a", 1, http(503), at(100));
    drain(&mut e);
    e.handle_timeout(at(50));
    assert_eq!(e.now(), at(100));
    assert!(drain(&mut e).is_empty());
    send(&mut e, "b", at(1));
    assert_eq!(
        e.tracked(&event("b").key()).unwrap().at,
        Some(at(105)),
        "deadline from the clamped now"
    );
}

#[test]
fn retry_after_pushes_the_next_attempt_later_up_to_its_cap() {
    let cfg = EngineConfig {
        policy: config().policy.retry_after_cap(secs(60)),
        ..config()
    };
    let mut e = Engine::new(cfg, T0).unwrap();
    send(&mut e, "a", T0);
    let r = AttemptReport::new(Observation::Http {
        status: 429,
        retry_after: Some(RetryAfter::Delay(secs(40))),
    });
    report(&mut e, "a", 1, r, T0);
    assert_eq!(finished(&drain(&mut e))[0].2, Transition::RetryAt(at(40)));
    e.handle_timeout(at(40));
    drain(&mut e);
    let r = AttemptReport::new(Observation::Http {
        status: 503,
        retry_after: Some(RetryAfter::Delay(secs(9999))),
    });
    report(&mut e, "a", 2, r, at(40));
    assert_eq!(finished(&drain(&mut e))[0].2, Transition::RetryAt(at(100)));
}

#[test]
fn the_retry_window_ends_a_cycle_early() {
    let cfg = EngineConfig {
        policy: config().policy.retry_window(Some(secs(25))),
        ..config()
    };
    let mut e = Engine::new(cfg, T0).unwrap();
    send(&mut e, "a", T0);
    report(&mut e, "a", 1, http(500), T0);
    assert_eq!(finished(&drain(&mut e))[0].2, Transition::RetryAt(at(10)));
    e.handle_timeout(at(10));
    drain(&mut e);
    report(&mut e, "a", 2, http(500), at(10));
    assert_eq!(
        finished(&drain(&mut e))[0].2,
        Transition::Exhausted(ExhaustedBy::RetryWindow)
    );
}

fn in_flight_record(id: &str, attempt: u32) -> DeliveryRecord {
    let mut r = DeliveryRecord::accepted(&event(id), T0);
    r.attempts = attempt;
    r.next_attempt_at = None;
    r.in_flight = Some(crate::record::InFlight {
        attempt,
        started_at: T0,
        deadline: at(5),
    });
    r
}

#[test]
fn restore_records_an_interrupted_attempt_and_continues() {
    let e = &mut Engine::restore(config(), [in_flight_record("a", 1)], at(2)).unwrap();
    let out = drain(e);
    assert_eq!(finished(&out), [(1, "interrupted".into(), Transition::RetryAt(at(12)))]);
    e.handle_timeout(at(12));
    assert_eq!(
        attempts(&drain(e)),
        [(event("a").key(), 2)],
        "attempt numbers only grow"
    );
}

#[test]
fn an_interrupted_attempt_counts_toward_max_attempts() {
    let e = &mut Engine::restore(config(), [in_flight_record("a", 4)], at(2)).unwrap();
    assert_eq!(
        finished(&drain(e)),
        [(4, "interrupted".into(), Transition::Exhausted(ExhaustedBy::MaxAttempts))]
    );
    assert_eq!(e.tracked_count(), 0);
}

#[test]
fn restore_resumes_scheduled_deliveries_at_their_time_and_skips_terminal_ones() {
    let mut due_later = DeliveryRecord::accepted(&event("a"), T0);
    due_later.next_attempt_at = Some(at(30));
    let mut done = DeliveryRecord::accepted(&event("b"), T0);
    done.status = DeliveryStatus::Delivered;
    let e = &mut Engine::restore(config(), [due_later, done], at(1)).unwrap();
    assert!(drain(e).is_empty());
    assert_eq!(e.tracked_count(), 1);
    assert_eq!(e.poll_timeout(), Some(at(30)));
    e.handle_timeout(at(30));
    assert_eq!(attempts(&drain(e)), [(event("a").key(), 1)]);
}

#[test]
fn shutdown_refuses_sends_starts_nothing_and_interrupts_what_outlives_the_grace() {
    let mut e = Engine::new(config(), T0).unwrap();
    send(&mut e, "a", T0);
    send(&mut e, "b", T0);
    send(&mut e, "c", T0); // waits for a slot
    assert_eq!(
        e.handle_input(Input::Shutdown { grace_until: at(3) }, at(1)),
        Ok(Ack::ShuttingDown)
    );
    let refused = e.handle_input(
        Input::Send {
            event: event("d"),
            prior: None,
        },
        at(1),
    );
    assert_eq!(refused, Err(InputError::ShuttingDown));
    report(&mut e, "a", 1, http(200), at(2));
    let out = drain(&mut e);
    assert!(attempts(&out).is_empty(), "c is not started during shutdown");
    assert!(!e.is_shut_down());
    assert_eq!(e.poll_timeout(), Some(at(3)));
    e.handle_timeout(at(3));
    let out = drain(&mut e);
    assert_eq!(finished(&out), [(1, "interrupted".into(), Transition::RetryAt(at(13)))]);
    assert!(e.is_shut_down());
}

#[test]
fn redrive_starts_a_new_cycle_with_growing_attempt_numbers() {
    let mut e = Engine::new(config(), T0).unwrap();
    let mut r = DeliveryRecord::accepted(&event("a"), T0);
    r.status = DeliveryStatus::Exhausted;
    r.attempts = 4;
    assert_eq!(
        e.handle_input(Input::Redrive { record: r.clone() }, at(100)),
        Ok(Ack::Redriven)
    );
    let out = drain(&mut e);
    assert_eq!(
        out[0],
        Output::Persist(Change::Redriven {
            key: r.key(),
            at: at(100)
        })
    );
    assert_eq!(attempts(&out), [(r.key(), 5)]);
    let again = e.handle_input(Input::Redrive { record: r }, at(100));
    assert!(matches!(
        again,
        Err(InputError::NotTerminal {
            status: DeliveryStatus::Pending,
            ..
        })
    ));
}

#[test]
fn identical_seeds_give_identical_traces() {
    let run = |seed: u64| {
        let cfg = EngineConfig {
            policy: RetryPolicy::exponential(secs(1), 2.0, secs(60)).jitter(Jitter::Full),
            seed,
            ..config()
        };
        let mut e = Engine::new(cfg, T0).unwrap();
        let mut trace = Vec::new();
        for id in ["a", "b", "c"] {
            send(&mut e, id, T0);
        }
        let mut now = T0;
        for _ in 0..20 {
            now = e.poll_timeout().unwrap_or(now).max(now);
            e.handle_timeout(now);
            for o in drain(&mut e) {
                if let Output::Attempt(a) = &o {
                    let _ = e.handle_input(
                        Input::Report {
                            key: a.key,
                            attempt: a.attempt,
                            report: http(503),
                        },
                        now,
                    );
                }
                trace.push(format!("{o:?}"));
            }
        }
        trace
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
}
