//! The engine against its reference model: random sequences of sends, reports (fresh,
//! late and duplicated), redrives, clock moves (forwards and back), crashes and shutdowns
//! under random policies. Every step checks invariants 2–7 of DESIGN.md §4 (see
//! `herald_tests::model`); every sequence is run twice to check invariant 10.

use std::time::Duration;

use herald_core::{
    AttemptReport, Classifier, EngineConfig, EventId, Jitter, NetworkError, Observation, RetryAfter, RetryPolicy,
};
use herald_tests::fixtures::{T0, event};
use herald_tests::model::{CheckedEngine, Violation};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Send { id: u8, variant: u8 },
    Report { pick: u8, obs: Obs },
    ReportEnded { pick: u8 },
    Advance { ms: u32 },
    ClockBack { ms: u32 },
    NextTimeout,
    Redrive { id: u8 },
    Crash,
    Shutdown { grace_ms: u32 },
}

#[derive(Debug, Clone, Copy)]
enum Obs {
    Http(u16),
    HttpRetryAfter(u16, u32),
    Network,
    TimedOut,
    Ack,
    Refused(bool),
}

fn obs() -> impl Strategy<Value = Obs> {
    prop_oneof![
        3 => prop::sample::select(vec![200u16, 204, 400, 404, 410, 429, 500, 503]).prop_map(Obs::Http),
        1 => (prop::sample::select(vec![429u16, 503]), 0u32..120).prop_map(|(s, r)| Obs::HttpRetryAfter(s, r)),
        1 => Just(Obs::Network),
        1 => Just(Obs::TimedOut),
        1 => Just(Obs::Ack),
        1 => any::<bool>().prop_map(Obs::Refused),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..12, prop::bool::weighted(0.1).prop_map(u8::from)).prop_map(|(id, variant)| Op::Send { id, variant }),
        6 => (any::<u8>(), obs()).prop_map(|(pick, obs)| Op::Report { pick, obs }),
        1 => any::<u8>().prop_map(|pick| Op::ReportEnded { pick }),
        3 => (0u32..120_000).prop_map(|ms| Op::Advance { ms }),
        1 => (0u32..60_000).prop_map(|ms| Op::ClockBack { ms }),
        3 => Just(Op::NextTimeout),
        1 => (0u8..12).prop_map(|id| Op::Redrive { id }),
        1 => Just(Op::Crash),
        1 => (0u32..20_000).prop_map(|grace_ms| Op::Shutdown { grace_ms }),
    ]
}

fn config() -> impl Strategy<Value = EngineConfig> {
    let fixed = prop::collection::vec(0u64..60_000, 1..4)
        .prop_map(|v| RetryPolicy::fixed(v.into_iter().map(Duration::from_millis).collect()));
    let expo = (1u64..5_000, 1u32..4, 5_000u64..100_000).prop_map(|(base, factor, cap)| {
        RetryPolicy::exponential(
            Duration::from_millis(base),
            f64::from(factor),
            Duration::from_millis(cap),
        )
    });
    (
        prop_oneof![fixed, expo],
        prop::sample::select(vec![Jitter::None, Jitter::Full, Jitter::Equal]),
        1u32..6,
        prop::option::weighted(0.3, 10_000u64..300_000),
        1_000u64..30_000,
        1u32..4,
        any::<u64>(),
    )
        .prop_map(
            |(policy, jitter, max_attempts, window, timeout, max_in_flight, seed)| EngineConfig {
                policy: policy
                    .jitter(jitter)
                    .max_attempts(max_attempts)
                    .retry_window(window.map(Duration::from_millis))
                    .attempt_timeout(Duration::from_millis(timeout))
                    .retry_after_cap(Duration::from_secs(60)),
                classifier: Classifier::default(),
                max_in_flight,
                payload_limit: 1 << 16,
                seed,
            },
        )
}

fn id(n: u8) -> String {
    format!("evt-{n}")
}

fn report_of(o: Obs) -> AttemptReport {
    AttemptReport::new(match o {
        Obs::Http(status) => Observation::Http {
            status,
            retry_after: None,
        },
        Obs::HttpRetryAfter(status, secs) => Observation::Http {
            status,
            retry_after: Some(RetryAfter::Delay(Duration::from_secs(secs.into()))),
        },
        Obs::Network => Observation::Network(NetworkError::Reset),
        Obs::TimedOut => Observation::TimedOut,
        Obs::Ack => Observation::Acknowledged { duplicate: false },
        Obs::Refused(retryable) => Observation::Refused {
            retryable,
            reason: "test".into(),
        },
    })
}

/// Runs one sequence; returns the trace.
fn run(config: &EngineConfig, ops: &[Op]) -> Result<String, Violation> {
    let mut m = CheckedEngine::new(config.clone(), T0);
    let mut shut_down = false;
    for op in ops {
        match op {
            Op::Send { id: n, variant } => {
                let _ = m.send(event(&id(*n), *variant))?;
            }
            Op::Report { pick, obs } => {
                let out = m.outstanding();
                if !out.is_empty() {
                    let (key, attempt) = out[usize::from(*pick) % out.len()];
                    m.report(key, attempt, report_of(*obs))?;
                }
            }
            Op::ReportEnded { pick } => {
                let ended = m.ended().to_vec();
                if !ended.is_empty() {
                    let (key, attempt) = ended[usize::from(*pick) % ended.len()];
                    m.report(key, attempt, report_of(Obs::Http(200)))?;
                }
            }
            Op::Advance { ms } => {
                m.set_wall(m.wall().saturating_add(Duration::from_millis((*ms).into())));
                m.tick()?;
            }
            Op::ClockBack { ms } => {
                let back = m.wall().as_millis().saturating_sub((*ms).into());
                m.set_wall(herald_core::Timestamp::from_millis(back));
                m.tick()?;
            }
            Op::NextTimeout => {
                m.advance_to_next_timeout()?;
            }
            Op::Redrive { id: n } => {
                let _ = m.redrive(EventId::new(id(*n)).unwrap().key())?;
            }
            Op::Crash => {
                m.crash_and_restore()?;
                shut_down = false;
            }
            Op::Shutdown { grace_ms } => {
                if !shut_down {
                    let until = m.wall().saturating_add(Duration::from_millis((*grace_ms).into()));
                    m.shutdown(until)?;
                    shut_down = true;
                }
            }
        }
    }
    m.settle_after_faults()?;
    Ok(m.trace().to_owned())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn engine_holds_every_invariant_and_is_deterministic(config in config(), ops in prop::collection::vec(op(), 1..120)) {
        let first = run(&config, &ops).map_err(|v| TestCaseError::fail(v.0))?;
        let second = run(&config, &ops).map_err(|v| TestCaseError::fail(v.0))?;
        prop_assert_eq!(first, second, "same inputs, different trace");
    }
}
