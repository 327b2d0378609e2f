//! The fuzz targets' logic: each is a plain function of arbitrary bytes that panics only
//! when a property fails. `fuzz/fuzz_targets/<name>.rs` hands libFuzzer's inputs to it
//! (`cargo fuzz run <name>`, nightly), and `tests/tests/fuzz_corpus.rs` replays the
//! checked-in corpus `fuzz/corpus/<name>/` through it as an ordinary test (stable, part of
//! `cargo test --workspace`).
//!
//! | target | input | properties |
//! |---|---|---|
//! | [`engine_sequence`] | an [`EngineConfig`] and up to 400 operations | every invariant of [`crate::model`] after every step; settles once faults stop; same inputs, same trace |
//! | [`store_decode`] | bytes of a stored record, event or attempt | decoding never panics; what decodes re-encodes canonically to an equal value; the engine restores a decodable record without panicking |
//! | [`retry_after`] | a `Retry-After` header value (text) | never panics; dates are whole seconds in 1970..=9999 and survive all three HTTP-date forms; delays are the saturated number |
//! | [`config_parse`] | retry policy numbers, event fields, RFC 3339 text, a webhook configuration | validation never panics; valid policies keep their bounds; built values round-trip; errors and `Debug` never contain secret or header-value text |
//! | [`webhook_sign`] | secrets, id, timestamp, a header, a body (lines) | signatures match an independent HMAC; every secret verifies; any changed byte of id, timestamp or body fails; `verify` accepts exactly the headers that hold a right signature |
//!
//! Structured inputs are read with a small reader: little-endian integers and strings with
//! a one-byte length. Past the end every read yields zero or an empty string, so every
//! byte string is a valid input. [`TARGETS`] lists each target with hand-made seeds
//! (`cargo run -p herald-tests --bin herald-fuzz-seeds` writes them to
//! `fuzz/corpus/<name>/seed-*`).

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use herald::transport::webhook::{WebhookConfig, WebhookSecret, sign, signature_header, verify};
use herald_core::{
    AttemptReport, Backoff, Classifier, Engine, EngineConfig, EventId, EventIdError, EventKey, ExhaustedBy,
    ExternalEvent, Jitter, NetworkError, NextStep, Observation, OutcomeClass, Output, RetryAfter, RetryPolicy,
    Timestamp,
};
use herald_store::fuzzing as store;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::fixtures::{T0, event};
use crate::model::{CheckedEngine, Violation};

/// One fuzz target: its name (the file in `fuzz/fuzz_targets/` and the corpus folder),
/// its function, and its hand-made seeds.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// `fuzz/fuzz_targets/<name>.rs`, `fuzz/corpus/<name>/`.
    pub name: &'static str,
    /// Runs one input; panics if a property fails.
    pub run: fn(&[u8]),
    /// Named seed inputs.
    pub seeds: fn() -> Vec<(&'static str, Vec<u8>)>,
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "engine_sequence",
        run: engine_sequence,
        seeds: engine_seeds,
    },
    Target {
        name: "store_decode",
        run: store_decode,
        seeds: store_seeds,
    },
    Target {
        name: "retry_after",
        run: retry_after,
        seeds: retry_after_seeds,
    },
    Target {
        name: "config_parse",
        run: config_parse,
        seeds: config_seeds,
    },
    Target {
        name: "webhook_sign",
        run: webhook_sign,
        seeds: webhook_seeds,
    },
];

// ---------------------------------------------------------------------------------------
// Input reading

/// Reads numbers and strings from fuzz input; past the end it yields zeros.
struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    fn le<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        let head = self.take(N);
        out[..head.len()].copy_from_slice(head);
        out
    }

    fn u8(&mut self) -> u8 {
        self.le::<1>()[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.le())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.le())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.le())
    }
    fn flag(&mut self) -> bool {
        self.u8() & 1 == 1
    }
    /// Bytes with a one-byte length.
    fn bytes(&mut self) -> &'a [u8] {
        let n = usize::from(self.u8());
        self.take(n)
    }
    /// Bytes with a two-byte length.
    fn long_bytes(&mut self) -> &'a [u8] {
        let n = usize::from(self.u16());
        self.take(n)
    }
    /// A string with a one-byte length (invalid UTF-8 is replaced).
    fn string(&mut self) -> String {
        String::from_utf8_lossy(self.bytes()).into_owned()
    }
}

/// Writes inputs the [`Reader`] reads: for hand-made seeds.
#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn str(mut self, s: &str) -> Self {
        let b = s.as_bytes();
        let n = u8::try_from(b.len()).expect("seed strings are short");
        self.0.push(n);
        self.0.extend_from_slice(b);
        self
    }
    fn long_bytes(mut self, b: &[u8]) -> Self {
        let n = u16::try_from(b.len()).expect("seed payloads are short");
        self.0.extend_from_slice(&n.to_le_bytes());
        self.0.extend_from_slice(b);
        self
    }
    fn done(self) -> Vec<u8> {
        self.0
    }
}

// ---------------------------------------------------------------------------------------
// engine_sequence

/// Most operations run per input.
const MAX_OPS: usize = 400;
/// Distinct event ids the operations use.
const IDS: u8 = 16;

#[derive(Debug, Clone)]
enum Op {
    Send { id: u8, variant: u8 },
    Report { pick: u8, obs: Obs },
    ReportEnded { pick: u8, obs: Obs },
    ReportBogus { pick: u8, how: u8 },
    Advance { ms: u32 },
    ClockBack { ms: u32 },
    NextTimeout,
    Tick,
    Redrive { id: u8 },
    Crash,
    Shutdown { grace_ms: u32 },
}

#[derive(Debug, Clone)]
enum Obs {
    Http {
        status: u16,
        retry_after: Option<RetryAfter>,
    },
    Network(NetworkError),
    TimedOut,
    Ack {
        duplicate: bool,
    },
    Refused {
        retryable: bool,
    },
}

/// Status codes most reports use (the rest are arbitrary numbers below 1024).
const COMMON_STATUS: [u16; 12] = [200, 201, 204, 302, 400, 404, 408, 410, 429, 500, 503, 504];
/// Codes an input may override. Never 200, never to `Delivered`: the model counts a
/// success only for a 2xx (or an ack) the classifier calls delivered.
const OVERRIDABLE: [u16; 8] = [201, 204, 302, 404, 410, 429, 500, 503];

/// Runs the real engine against the reference model ([`CheckedEngine`]) for a decoded
/// configuration and sequence of operations (sends, fresh, late and bogus reports, clock
/// moves both ways, timeouts, redrives, crashes, shutdowns); then lets it settle with
/// faults over. Panics on any [`Violation`] or if two runs of the same input differ.
///
/// Input: the configuration (see `engine_config`), then operations, one opcode byte each
/// followed by its operands, until the input ends.
pub fn engine_sequence(data: &[u8]) {
    let mut r = Reader::new(data);
    let config = engine_config(&mut r);
    if let Err(e) = config.validate() {
        panic!("the fuzz decoder built an invalid config: {e}\n{config:#?}");
    }
    let mut ops = Vec::new();
    while !r.is_empty() && ops.len() < MAX_OPS {
        ops.push(engine_op(&mut r));
    }
    let run = || {
        let mut m = CheckedEngine::new(config.clone(), T0);
        match run_sequence(&mut m, &ops) {
            Ok(()) => m.trace().to_owned(),
            Err(v) => panic!(
                "invariant violated: {v}\nconfig: {config:?}\nops: {ops:?}\ntrace:\n{}",
                m.trace()
            ),
        }
    };
    let first = run();
    let second = run();
    assert!(first == second, "same inputs, different trace:\n{first}\n---\n{second}");
}

fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// A valid, small configuration.
fn engine_config(r: &mut Reader<'_>) -> EngineConfig {
    let shape = r.u8();
    let exponential = shape & 1 == 1;
    let policy = if exponential {
        let base = 1 + u64::from(r.u16());
        let factor = 1.0 + f64::from(r.u8()) / 32.0;
        let cap = base + u64::from(r.u32() % 600_000);
        RetryPolicy::exponential(millis(base), factor, millis(cap))
    } else {
        let n = 1 + r.u8() % 4;
        RetryPolicy::fixed((0..n).map(|_| millis(u64::from(r.u32() % 120_000))).collect())
    };
    let jitter = match (shape >> 1) % 4 {
        0 => Jitter::None,
        1 => Jitter::Full,
        3 if exponential => Jitter::Decorrelated,
        _ => Jitter::Equal,
    };
    let max_attempts = 1 + u32::from(r.u8() % 12);
    let window = r.u32();
    let window = (shape & 0x08 != 0).then(|| millis(1 + u64::from(window % 1_200_000)));
    let timeout = millis(1 + u64::from(r.u32() % 60_000));
    let retry_after_cap = millis(u64::from(r.u32() % 600_000));
    let max_in_flight = 1 + u32::from(r.u8() % 4);
    let payload_limit = 1 + usize::from(r.u8()) * 4;
    let seed = r.u64();
    let mut classifier = Classifier::default();
    for _ in 0..(shape >> 4) % 4 {
        let status = OVERRIDABLE[usize::from(r.u8()) % OVERRIDABLE.len()];
        let class = if r.flag() {
            OutcomeClass::Permanent
        } else {
            OutcomeClass::Retryable
        };
        classifier = classifier.with_override(status, class).expect("a real status code");
    }
    EngineConfig {
        policy: policy
            .jitter(jitter)
            .max_attempts(max_attempts)
            .retry_window(window)
            .attempt_timeout(timeout)
            .retry_after_cap(retry_after_cap),
        classifier,
        max_in_flight,
        payload_limit,
        seed,
    }
}

fn engine_op(r: &mut Reader<'_>) -> Op {
    match r.u8() % 13 {
        0 | 1 => Op::Send {
            id: r.u8() % IDS,
            // Mostly the same content; now and then a conflicting re-send.
            variant: r.u8().saturating_sub(223) % 4,
        },
        2 | 3 => Op::Report {
            pick: r.u8(),
            obs: engine_obs(r),
        },
        4 => Op::ReportEnded {
            pick: r.u8(),
            obs: engine_obs(r),
        },
        5 => Op::ReportBogus {
            pick: r.u8(),
            how: r.u8(),
        },
        6 => Op::Advance { ms: clock_step(r) },
        7 => Op::ClockBack { ms: clock_step(r) },
        8 => Op::NextTimeout,
        9 => Op::Tick,
        10 => Op::Redrive { id: r.u8() % IDS },
        11 => Op::Crash,
        _ => Op::Shutdown {
            grace_ms: r.u32() % 120_000,
        },
    }
}

/// Up to about 24 days, spread over every scale from milliseconds up.
fn clock_step(r: &mut Reader<'_>) -> u32 {
    let v = u32::from(r.u16());
    v << (r.u8() % 16)
}

fn engine_obs(r: &mut Reader<'_>) -> Obs {
    let status = |v: u16| {
        if v & 0x8000 == 0 {
            COMMON_STATUS[usize::from(v) % COMMON_STATUS.len()]
        } else {
            v & 0x3ff
        }
    };
    match r.u8() % 8 {
        0..=2 => Obs::Http {
            status: status(r.u16()),
            retry_after: None,
        },
        3 => {
            let s = status(r.u16());
            let ra = match r.u8() % 4 {
                0 => RetryAfter::Delay(Duration::from_secs(r.u16().into())),
                1 => RetryAfter::At(T0.saturating_add(millis(r.u32().into()))),
                2 => RetryAfter::At(Timestamp::from_millis(r.u64())),
                _ => RetryAfter::Delay(Duration::from_secs(r.u64())),
            };
            Obs::Http {
                status: s,
                retry_after: Some(ra),
            }
        }
        4 => Obs::Network(
            [
                NetworkError::Connect,
                NetworkError::Dns,
                NetworkError::Tls,
                NetworkError::Reset,
                NetworkError::Other,
            ][usize::from(r.u8() % 5)],
        ),
        5 => Obs::TimedOut,
        6 => Obs::Ack { duplicate: r.flag() },
        _ => Obs::Refused { retryable: r.flag() },
    }
}

fn report_of(o: &Obs) -> AttemptReport {
    AttemptReport::new(match o {
        Obs::Http { status, retry_after } => Observation::Http {
            status: *status,
            retry_after: *retry_after,
        },
        Obs::Network(e) => Observation::Network(*e),
        Obs::TimedOut => Observation::TimedOut,
        Obs::Ack { duplicate } => Observation::Acknowledged { duplicate: *duplicate },
        Obs::Refused { retryable } => Observation::Refused {
            retryable: *retryable,
            reason: "fuzz".into(),
        },
    })
}

fn id_of(n: u8) -> String {
    format!("evt-{n}")
}

fn run_sequence(m: &mut CheckedEngine, ops: &[Op]) -> Result<(), Violation> {
    for op in ops {
        match op {
            Op::Send { id, variant } => {
                let _ = m.send(event(&id_of(*id), *variant))?;
            }
            Op::Report { pick, obs } => {
                let out = m.outstanding();
                if !out.is_empty() {
                    let (key, attempt) = out[usize::from(*pick) % out.len()];
                    m.report(key, attempt, report_of(obs))?;
                }
            }
            Op::ReportEnded { pick, obs } => {
                let ended = m.ended().to_vec();
                if !ended.is_empty() {
                    let (key, attempt) = ended[usize::from(*pick) % ended.len()];
                    m.report(key, attempt, report_of(obs))?;
                }
            }
            Op::ReportBogus { pick, how } => {
                let mut known = m.outstanding();
                known.extend_from_slice(m.ended());
                let (key, attempt) = if known.is_empty() {
                    (key_of(*pick % IDS), 1)
                } else {
                    known[usize::from(*pick) % known.len()]
                };
                let attempt = match how % 4 {
                    0 => 0,
                    1 => attempt.saturating_add(1),
                    2 => attempt.saturating_sub(1),
                    _ => u32::MAX,
                };
                let obs = Obs::Http {
                    status: 200,
                    retry_after: None,
                };
                m.report(key, attempt, report_of(&obs))?;
            }
            Op::Advance { ms } => {
                m.set_wall(m.wall().saturating_add(millis((*ms).into())));
                m.tick()?;
            }
            Op::ClockBack { ms } => {
                let back = m.wall().as_millis().saturating_sub((*ms).into());
                m.set_wall(Timestamp::from_millis(back));
                m.tick()?;
            }
            Op::NextTimeout => {
                m.advance_to_next_timeout()?;
            }
            Op::Tick => m.tick()?,
            Op::Redrive { id } => {
                let _ = m.redrive(key_of(*id))?;
            }
            Op::Crash => m.crash_and_restore()?,
            Op::Shutdown { grace_ms } => {
                let until = m.wall().saturating_add(millis((*grace_ms).into()));
                m.shutdown(until)?;
            }
        }
    }
    m.settle_after_faults()
}

fn key_of(n: u8) -> EventKey {
    EventId::new(id_of(n)).expect("valid id").key()
}

fn engine_seeds() -> Vec<(&'static str, Vec<u8>)> {
    // Fixed schedule [1 s], no jitter, 3 attempts, 30 s timeout, 2 in flight.
    let fixed = || {
        Writer::default()
            .u8(0)
            .u8(0)
            .u32(1_000)
            .u8(2)
            .u32(0)
            .u32(29_999)
            .u32(60_000)
            .u8(1)
            .u8(255)
            .u64(7)
    };
    // Exponential 100 ms x2 cap 10 s, decorrelated jitter, a 5 min window, 4 in flight,
    // 503 overridden to permanent.
    let expo = || {
        Writer::default()
            .u8(0b0001_1111)
            .u16(99)
            .u8(32)
            .u32(9_900)
            .u8(5)
            .u32(299_999)
            .u32(4_999)
            .u32(60_000)
            .u8(3)
            .u8(255)
            .u64(42)
            .u8(7)
            .u8(1)
    };
    let send = |w: Writer, id: u8| w.u8(0).u8(id).u8(0);
    let http = |w: Writer, pick: u8, status: u16| w.u8(2).u8(pick).u8(0).u16(status_index(status));
    let next = |w: Writer| w.u8(8);
    let mut happy = fixed();
    for id in 0..4 {
        happy = send(happy, id);
    }
    for _ in 0..4 {
        happy = http(happy, 0, 200);
    }
    let mut retries = expo();
    for id in 0..3 {
        retries = send(retries, id);
    }
    for _ in 0..6 {
        retries = http(retries, 1, 500);
        retries = next(retries);
    }
    // A 429 with Retry-After 30 s, a late report, a crash, a redrive, a shutdown.
    let mut mixed = fixed();
    mixed = send(mixed, 1);
    mixed = send(mixed, 2);
    mixed = mixed.u8(2).u8(0).u8(3).u16(status_index(429)).u8(0).u16(30);
    mixed = http(mixed, 0, 404);
    mixed = mixed.u8(4).u8(0).u8(0).u16(status_index(200));
    mixed = mixed.u8(11);
    mixed = next(mixed);
    mixed = mixed.u8(10).u8(2);
    mixed = send(mixed.u8(0).u8(1).u8(255), 3);
    mixed = mixed.u8(12).u32(5_000).u8(6).u16(10_000).u8(0);
    // The clock steps back an hour, then jumps a day.
    let mut clock = fixed();
    clock = send(clock, 5);
    clock = clock.u8(7).u16(3_600).u8(10).u8(6).u16(21_093).u8(12);
    clock = http(clock, 0, 503);
    vec![
        ("empty", Vec::new()),
        ("happy", happy.done()),
        ("retries", retries.done()),
        ("mixed", mixed.done()),
        ("clock", clock.done()),
    ]
}

/// The `u16` an input uses to pick `status` from [`COMMON_STATUS`].
fn status_index(status: u16) -> u16 {
    COMMON_STATUS
        .iter()
        .position(|s| *s == status)
        .map_or(0x8000 | status, |i| i as u16)
}

// ---------------------------------------------------------------------------------------
// store_decode

/// Decodes the input as a stored delivery record, event and attempt record. Decoding
/// never panics; whatever decodes encodes back canonically (encode, decode, encode gives
/// the same bytes) to an equal value; and the engine restores a decodable record (however
/// odd) without panicking.
pub fn store_decode(data: &[u8]) {
    if let Ok(record) = store::decode_record(data) {
        let bytes = store::encode_record(&record);
        let again = store::decode_record(&bytes)
            .unwrap_or_else(|e| panic!("a decoded record does not decode after encoding: {e}\n{record:?}"));
        assert_eq!(again, record, "record round trip");
        assert_eq!(store::encode_record(&again), bytes, "record encoding is not canonical");
        assert!(record.cycle_base <= record.attempts, "decoded {record:?}");
        let _ = record.to_result(RetryPolicy::default().get_max_attempts());
        restore_decoded(&record);
    }
    if let Ok(event) = store::decode_event(data) {
        let bytes = store::encode_event(&event);
        let again = store::decode_event(&bytes)
            .unwrap_or_else(|e| panic!("a decoded event does not decode after encoding: {e}\n{event:?}"));
        assert_eq!(again, event, "event round trip");
        assert_eq!(again.key(), event.id().key());
        assert_eq!(again.fingerprint(), event.fingerprint());
        assert_eq!(store::encode_event(&again), bytes, "event encoding is not canonical");
    }
    if let Ok(attempt) = store::decode_attempt(data) {
        let bytes = store::encode_attempt(&attempt);
        let again = store::decode_attempt(&bytes)
            .unwrap_or_else(|e| panic!("a decoded attempt does not decode after encoding: {e}\n{attempt:?}"));
        assert_eq!(again, attempt, "attempt round trip");
        assert_eq!(
            store::encode_attempt(&again),
            bytes,
            "attempt encoding is not canonical"
        );
    }
}

/// A store may hold a record that decodes but that this engine never wrote (damage, a
/// bug in an older version): restoring it must not crash the process at start-up.
fn restore_decoded(record: &herald_core::DeliveryRecord) {
    for now in [T0, record.updated_at] {
        let Ok(mut engine) = Engine::restore(EngineConfig::default(), [record.clone()], now) else {
            panic!("the default config is valid");
        };
        let mut model = record.clone();
        while let Some(out) = engine.poll_output() {
            if let Output::Persist(change) = out {
                let _ = model.apply(&change);
            }
        }
        let _ = engine.poll_timeout();
        engine.handle_timeout(now.saturating_add(Duration::from_secs(86_400)));
        while engine.poll_output().is_some() {}
    }
}

fn store_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use herald_core::{
        AttemptOutcome, AttemptRecord, Change, DeliveryRecord, FailureDetail, InFlight, ResponseExcerpt, Transition,
    };
    let e = ExternalEvent::builder("order.created")
        .payload(br#"{"order":42}"#.to_vec())
        .occurred_at(T0)
        .metadata("tenant", "acme")
        .metadata("empty", "")
        .build()
        .expect("valid");
    let plain = event("evt-1", 0);
    let accepted = DeliveryRecord::accepted(&e, T0);
    let mut retrying = accepted.clone();
    retrying.attempts = 3;
    retrying.status = herald_core::DeliveryStatus::Retrying;
    retrying.next_attempt_at = Some(T0.saturating_add(Duration::from_secs(300)));
    retrying.last_failure = Some(FailureDetail {
        attempt: 3,
        class: OutcomeClass::Retryable,
        code: "http_503".into(),
        message: "Service Unavailable".into(),
        at: T0,
    });
    let mut in_flight = retrying.clone();
    in_flight.attempts = 4;
    in_flight.next_attempt_at = None;
    in_flight.in_flight = Some(InFlight {
        attempt: 4,
        started_at: T0,
        deadline: T0.saturating_add(Duration::from_secs(30)),
    });
    let mut delivered = in_flight.clone();
    delivered
        .apply(&Change::AttemptFinished {
            key: delivered.key(),
            attempt: 4,
            at: T0,
            outcome: AttemptOutcome {
                class: OutcomeClass::Delivered,
                code: "http_200".into(),
                message: "OK".into(),
                retry_after: None,
                response: None,
                duration_ms: 12,
            },
            next: Transition::Delivered,
        })
        .expect("in flight");
    let mut redriven = delivered.clone();
    redriven
        .apply(&Change::Redriven {
            key: redriven.key(),
            at: T0,
        })
        .expect("terminal");
    let attempt = AttemptRecord {
        attempt: 2,
        cycle: 1,
        started_at: T0,
        finished_at: T0.saturating_add(Duration::from_millis(250)),
        outcome: AttemptOutcome {
            class: OutcomeClass::Retryable,
            code: "http_429".into(),
            message: "Too Many Requests".into(),
            retry_after: Some(T0.saturating_add(Duration::from_secs(60))),
            response: Some(ResponseExcerpt::new(429, b"slow down\xff")),
            duration_ms: 250,
        },
    };
    let timeout = AttemptRecord {
        attempt: 1,
        cycle: 0,
        started_at: T0,
        finished_at: T0,
        outcome: AttemptOutcome::timed_out(Duration::from_secs(30)),
    };
    vec![
        ("empty", Vec::new()),
        ("version-only", vec![1]),
        ("event", store::encode_event(&e)),
        ("event-plain", store::encode_event(&plain)),
        ("record-accepted", store::encode_record(&accepted)),
        ("record-retrying", store::encode_record(&retrying)),
        ("record-in-flight", store::encode_record(&in_flight)),
        ("record-delivered", store::encode_record(&delivered)),
        ("record-redriven", store::encode_record(&redriven)),
        ("attempt-429", store::encode_attempt(&attempt)),
        ("attempt-timeout", store::encode_attempt(&timeout)),
    ]
}

// ---------------------------------------------------------------------------------------
// retry_after

const LAST_HTTP_DATE: u64 = 253_402_300_799; // 9999-12-31T23:59:59Z
const SHORT_DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Parses the input (as text) as a `Retry-After` value. Never panics; a delay is the
/// saturated decimal number of a digits-only value; a date is whole seconds between 1970
/// and 9999 and parses to the same instant in all three HTTP-date forms; errors quote at
/// most 64 characters; `delay_from` and classification never panic and never go back in
/// time.
pub fn retry_after(data: &[u8]) {
    let value = String::from_utf8_lossy(data);
    let parsed = RetryAfter::parse(&value);
    let trimmed = value.trim_matches([' ', '\t']);
    match parsed {
        Ok(RetryAfter::Delay(d)) => {
            assert!(
                !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()),
                "{value:?} parsed as a delay"
            );
            let want = trimmed.parse::<u64>().unwrap_or(u64::MAX);
            assert_eq!(d, Duration::from_secs(want), "{value:?}");
        }
        Ok(RetryAfter::At(t)) => {
            assert_eq!(t.as_millis() % 1000, 0, "{value:?} parsed to a fraction of a second");
            assert!(t.as_secs() <= LAST_HTTP_DATE, "{value:?} parsed after 9999: {t:?}");
            for form in http_date_forms(t) {
                assert_eq!(RetryAfter::parse(&form), Ok(RetryAfter::At(t)), "{value:?} -> {form:?}");
            }
        }
        Err(ref e) => {
            assert!(e.to_string().starts_with("invalid Retry-After"), "{e}");
            assert!(!e.why.is_empty());
            assert_eq!(e.value, value.chars().take(64).collect::<String>());
        }
    }
    if let Ok(v) = parsed {
        let again = RetryAfter::parse(&format!(" \t{trimmed}\t "));
        assert_eq!(again, Ok(v), "surrounding whitespace changed {value:?}");
        let classifier = Classifier::default();
        for now in [
            Timestamp::EPOCH,
            T0,
            Timestamp::from_secs(LAST_HTTP_DATE),
            Timestamp::MAX,
        ] {
            let d = v.delay_from(now);
            match v {
                RetryAfter::Delay(want) => assert_eq!(d, want),
                RetryAfter::At(t) => assert_eq!(d, t.saturating_since(now)),
            }
            let report = AttemptReport::new(Observation::Http {
                status: 503,
                retry_after: Some(v),
            });
            let outcome = classifier.classify(report, now);
            let at = outcome.retry_after.expect("a 503 keeps its Retry-After");
            assert!(at >= now, "Retry-After resolved into the past: {at:?} < {now:?}");
            // The policy may only push the next attempt later, and by at most its cap.
            let policy = RetryPolicy::default().retry_after_cap(Duration::from_secs(3600));
            let key = EventKey([0; 16]);
            if let NextStep::RetryAt(next) = policy.next_after_failure(0, key, 1, now, now, Some(at)) {
                let plain = now.saturating_add(policy.delay(0, key, 1));
                assert!(next >= plain);
                assert!(next <= plain.max(now.saturating_add(Duration::from_secs(3600))));
            }
        }
    }
}

/// `t` as IMF-fixdate, and as RFC 850 and asctime where those can express it.
fn http_date_forms(t: Timestamp) -> Vec<String> {
    let rfc = t.to_rfc3339(); // YYYY-MM-DDTHH:MM:SS.mmmZ
    let (year, month, day) = (&rfc[0..4], &rfc[5..7], &rfc[8..10]);
    let time = &rfc[11..19];
    let weekday = usize::try_from((t.as_secs() / 86_400 + 3) % 7).expect("small");
    let mon = MONTHS[month.parse::<usize>().expect("month") - 1];
    let mut forms = vec![format!("{}, {day} {mon} {year} {time} GMT", SHORT_DAYS[weekday])];
    let y: u32 = year.parse().expect("year");
    if (1970..2070).contains(&y) {
        forms.push(format!("{}, {day}-{mon}-{} {time} GMT", LONG_DAYS[weekday], &year[2..]));
    }
    let d: u32 = day.parse().expect("day");
    forms.push(format!("{} {mon} {d:>2} {time} {year}", SHORT_DAYS[weekday]));
    forms
}

fn retry_after_seeds() -> Vec<(&'static str, Vec<u8>)> {
    [
        ("empty", ""),
        ("zero", "0"),
        ("delay", "120"),
        ("spaces", " \t 30 \t"),
        ("huge", "99999999999999999999999999"),
        ("u64-max", "18446744073709551615"),
        ("fraction", "1.5"),
        ("negative", "-1"),
        ("plus", "+5"),
        ("imf", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ("rfc850", "Sunday, 06-Nov-94 08:49:37 GMT"),
        ("asctime", "Sun Nov  6 08:49:37 1994"),
        ("epoch", "Thu, 01 Jan 1970 00:00:00 GMT"),
        ("before-epoch", "Wed, 31 Dec 1969 23:59:59 GMT"),
        ("last", "Fri, 31 Dec 9999 23:59:59 GMT"),
        ("leap-day", "Tue, 29 Feb 2000 12:00:00 GMT"),
        ("not-leap", "Thu, 29 Feb 2100 12:00:00 GMT"),
        ("leap-second", "Sat, 31 Dec 2016 23:59:60 GMT"),
        ("rfc850-2069", "Sunday, 06-Nov-69 08:49:37 GMT"),
        ("asctime-2digit-day", "Thu Dec 31 23:59:59 2099"),
        ("utc", "Sun, 06 Nov 1994 08:49:37 UTC"),
        ("bad-time", "Sun, 06 Nov 1994 25:61:61 GMT"),
        ("unicode", "Sun, 06 Növ 1994 08:49:37 GMT"),
        ("word", "soon"),
    ]
    .into_iter()
    .map(|(n, s)| (n, s.as_bytes().to_vec()))
    .collect()
}

// ---------------------------------------------------------------------------------------
// config_parse

/// Builds and validates configuration from arbitrary values: a retry policy (any
/// durations, factors, counts), an engine configuration, classifier overrides, event ids,
/// events, RFC 3339 timestamps and a webhook configuration. Validation never panics;
/// valid policies keep their bounds; built values round-trip (JSON, the store's codec,
/// RFC 3339); webhook errors and `Debug` do not depend on secret or header-value text.
///
/// Input: six sections, each with a two-byte length (so a change in one leaves the others
/// in place): policy and engine numbers, classifier overrides, an event id (text), event
/// fields, an RFC 3339 timestamp (text with a one-byte length, then a raw timestamp), a
/// webhook configuration.
pub fn config_parse(data: &[u8]) {
    let mut r = Reader::new(data);
    policy_and_engine(&mut Reader::new(r.long_bytes()));
    classifier(&mut Reader::new(r.long_bytes()));
    event_id(&String::from_utf8_lossy(r.long_bytes()));
    external_event(&mut Reader::new(r.long_bytes()));
    rfc3339(&mut Reader::new(r.long_bytes()));
    webhook_config(&mut Reader::new(r.long_bytes()));
}

fn any_duration(r: &mut Reader<'_>) -> Duration {
    let v = r.u64();
    match r.u8() % 4 {
        0 => millis(v % 1_000_000),
        1 => millis(v),
        2 => Duration::new(v, r.u32() % 1_000_000_000),
        _ => Duration::ZERO,
    }
}

fn any_factor(r: &mut Reader<'_>) -> f64 {
    match r.u8() % 4 {
        0 => 1.0 + f64::from(r.u16()) / 1000.0,
        1 => f64::from_bits(r.u64()),
        2 => 1.0,
        _ => -f64::from(r.u8()),
    }
}

fn policy_and_engine(r: &mut Reader<'_>) {
    let shape = r.u8();
    let policy = if shape & 1 == 0 {
        let n = r.u8() % 9;
        RetryPolicy::fixed((0..n).map(|_| any_duration(r)).collect())
    } else {
        let base = any_duration(r);
        let factor = any_factor(r);
        let cap = any_duration(r);
        RetryPolicy::exponential(base, factor, cap)
    };
    let jitter = [Jitter::None, Jitter::Full, Jitter::Equal, Jitter::Decorrelated][usize::from((shape >> 1) % 4)];
    let max_attempts = match r.u8() % 3 {
        0 => u32::from(r.u8()),
        1 => r.u32(),
        _ => RetryPolicy::MAX_ATTEMPTS_LIMIT,
    };
    let window = any_duration(r);
    let policy = policy
        .jitter(jitter)
        .max_attempts(max_attempts)
        .retry_window((shape & 0x08 != 0).then_some(window))
        .attempt_timeout(any_duration(r))
        .retry_after_cap(any_duration(r));
    let seed = r.u64();
    let key = EventKey(r.le());
    let policy_ok = match policy.validate() {
        Ok(()) => {
            check_policy(&policy, seed, key, r);
            true
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            false
        }
    };
    let config = EngineConfig {
        policy,
        classifier: Classifier::default(),
        max_in_flight: r.u32() >> (r.u8() % 32),
        payload_limit: r.u32() as usize,
        seed,
    };
    match config.validate() {
        Ok(()) => {
            assert!(policy_ok, "an engine config with an invalid policy validated");
            let engine = Engine::new(config, T0).expect("a valid config builds an engine");
            assert_eq!(engine.poll_timeout(), None);
        }
        Err(e) => assert!(Engine::new(config, T0).is_err(), "{e}"),
    }
}

/// Largest millisecond count an `f64` holds exactly: beyond it, exponential delays are
/// within rounding of their bounds (a base of 285,000 years), which is not checked.
const EXACT_F64_MS: u64 = 1 << 53;

fn ms_of(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn check_policy(p: &RetryPolicy, seed: u64, key: EventKey, r: &mut Reader<'_>) {
    let max = p.get_max_attempts();
    let mut ns = vec![1, 2, max / 2, max.saturating_sub(1), max, 1 + u32::from(r.u16()) % max];
    ns.retain(|n| *n >= 1);
    for &n in &ns {
        let base_delay = p.base_delay(n);
        let v = ms_of(base_delay);
        match p.backoff() {
            Backoff::Fixed(s) => {
                let i = (n as usize).min(s.len()) - 1;
                assert_eq!(base_delay, s[i], "fixed schedule entry {n}");
            }
            Backoff::Exponential { base, cap, .. } => {
                let (lo, hi) = (ms_of(*base), ms_of(*cap));
                if hi < EXACT_F64_MS {
                    assert!(
                        lo <= v && v <= hi,
                        "base delay {v} ms outside [{lo}, {hi}] for n={n}: {p:?}"
                    );
                    if n > 1 {
                        assert!(ms_of(p.base_delay(n - 1)) <= v, "base delay shrank at n={n}: {p:?}");
                    }
                }
            }
        }
        let d = ms_of(p.delay(seed, key, n));
        assert_eq!(p.delay(seed, key, n), p.delay(seed, key, n), "jitter is not a function");
        match p.get_jitter() {
            Jitter::None => assert_eq!(d, v),
            Jitter::Full => assert!(d <= v, "{d} > {v}"),
            Jitter::Equal => assert!(v / 2 <= d && d <= v, "{d} outside [{}, {v}]", v / 2),
            Jitter::Decorrelated => {
                let Backoff::Exponential { base, cap, .. } = p.backoff() else {
                    panic!("validate lets decorrelated jitter through only with exponential backoff");
                };
                assert!(ms_of(*base) <= d && d <= ms_of(*cap), "decorrelated {d} ms: {p:?}");
            }
        }
    }
    // What follows a failure, from arbitrary times.
    let attempts = match r.u8() % 3 {
        0 => r.u32(),
        _ => u32::from(r.u16()) % (max + 2),
    };
    let at = |r: &mut Reader<'_>| match r.u8() % 3 {
        0 => T0.saturating_add(millis(r.u32().into())),
        1 => Timestamp::from_millis(r.u64()),
        _ => T0,
    };
    let cycle_start = at(r);
    let now = at(r);
    let asked = r.flag().then(|| at(r));
    let next = p.next_after_failure(seed, key, attempts, cycle_start, now, asked);
    if attempts >= max {
        assert_eq!(next, NextStep::Exhausted(ExhaustedBy::MaxAttempts));
        return;
    }
    let plain = now.saturating_add(p.delay(seed, key, attempts));
    let ceiling = plain.max(now.saturating_add(retry_after_cap(p)));
    let wanted = asked.map_or(plain, |a| plain.max(a.min(ceiling)));
    match next {
        NextStep::RetryAt(t) => {
            assert!(t >= plain, "retry at {t:?} before the policy's delay {plain:?}");
            assert!(t <= ceiling, "retry at {t:?} beyond the Retry-After cap {ceiling:?}");
            assert_eq!(t, wanted, "Retry-After {asked:?} not honoured");
            if let Some(w) = p.get_retry_window() {
                assert!(t <= cycle_start.saturating_add(w), "retry outside the window");
            }
        }
        NextStep::Exhausted(ExhaustedBy::RetryWindow) => {
            let w = p.get_retry_window().expect("exhausted by a window that is not set");
            assert!(wanted > cycle_start.saturating_add(w), "exhausted inside the window");
        }
        NextStep::Exhausted(ExhaustedBy::MaxAttempts) => panic!("exhausted after {attempts} of {max} attempts"),
    }
}

/// The policy's `retry_after_cap`, read from its JSON form (there is no getter).
fn retry_after_cap(p: &RetryPolicy) -> Duration {
    let json = serde_json::to_value(p).expect("a policy serializes");
    serde_json::from_value(json["retry_after_cap"].clone()).expect("a duration")
}

fn classifier(r: &mut Reader<'_>) {
    let mut c = Classifier::default();
    for _ in 0..r.u8() % 4 {
        let status = r.u16();
        let class = [
            OutcomeClass::Delivered,
            OutcomeClass::Retryable,
            OutcomeClass::Permanent,
        ][usize::from(r.u8() % 3)];
        match c.clone().with_override(status, class) {
            Ok(next) => {
                assert!((100..=599).contains(&status), "override of {status} accepted");
                assert_eq!(next.http_class(status), class);
                for other in [200, 404, 503] {
                    if other != status {
                        assert_eq!(next.http_class(other), c.http_class(other));
                    }
                }
                c = next;
            }
            Err(e) => assert!(!(100..=599).contains(&status), "{e}"),
        }
    }
}

fn event_id(s: &str) {
    let valid_char = |c: char| c.is_ascii_graphic() && c != '.';
    match EventId::new(s) {
        Ok(id) => {
            assert_eq!(id.as_str(), s);
            assert!(
                (1..=EventId::MAX_LEN).contains(&s.len()) && s.chars().all(valid_char),
                "{s:?}"
            );
            assert_eq!(s.parse::<EventId>().as_ref(), Ok(&id));
            assert_eq!(id.key(), EventId::new(s).expect("valid").key());
            let json = serde_json::to_string(&id).expect("an id serializes");
            assert_eq!(serde_json::from_str::<EventId>(&json).expect("and deserializes"), id);
        }
        Err(EventIdError::Empty) => assert!(s.is_empty()),
        Err(EventIdError::TooLong { len, max }) => {
            assert!(len == s.len() && len > max && s.chars().all(valid_char));
        }
        Err(EventIdError::InvalidChar { index, found }) => {
            assert!(s[index..].starts_with(found) && !valid_char(found));
            assert!(s[..index].chars().all(valid_char));
        }
    }
}

fn external_event(r: &mut Reader<'_>) {
    let event_type = r.string();
    let mut b = ExternalEvent::builder(event_type);
    let fields = r.u8();
    if fields & 1 != 0 {
        b = b.id(r.string());
    }
    if fields & 2 != 0 {
        b = b.content_type(r.string());
    }
    if fields & 4 != 0 {
        b = b.payload(r.long_bytes());
    }
    if fields & 8 != 0 {
        let at = if fields & 16 != 0 {
            Timestamp::from_millis(r.u64())
        } else {
            T0.saturating_add(millis(r.u32().into()))
        };
        b = b.occurred_at(at);
    }
    let entries = if fields & 32 != 0 { 60 + r.u8() % 8 } else { r.u8() % 4 };
    let mut metadata = BTreeMap::new();
    for i in 0..entries {
        let (k, v) = if fields & 32 != 0 && i > 0 {
            (format!("k{i}"), String::new())
        } else {
            (r.string(), r.string())
        };
        metadata.insert(k.clone(), v.clone());
        b = b.metadata(k, v);
    }
    let built = b.clone().build();
    match built {
        Ok(e) => {
            assert_eq!(b.clone().build().as_ref(), Ok(&e), "building is not deterministic");
            assert_eq!(e.metadata(), &metadata);
            assert_eq!(e.key(), e.id().key());
            let other = b.clone().id("another-id").build().expect("only the id changed");
            assert_eq!(
                other.fingerprint(),
                e.fingerprint(),
                "the fingerprint depends on the id"
            );
            let json = serde_json::to_string(&e).expect("an event serializes");
            let back: ExternalEvent = serde_json::from_str(&json)
                .unwrap_or_else(|err| panic!("an event's JSON does not read back: {err}\n{json}"));
            assert_eq!(back, e, "JSON round trip");
            let bytes = store::encode_event(&e);
            assert_eq!(store::decode_event(&bytes).as_ref(), Ok(&e), "store round trip");
            let dbg = format!("{e:?}");
            assert!(dbg.contains(&format!("payload_len: {}", e.payload().len())), "{dbg}");
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

fn rfc3339(r: &mut Reader<'_>) {
    let s = r.string();
    match Timestamp::parse_rfc3339(&s) {
        Ok(t) => {
            let text = t.to_rfc3339();
            assert_eq!(
                Timestamp::parse_rfc3339(&text),
                Ok(t),
                "{s:?} parsed to {t:?}, which does not read back"
            );
        }
        Err(e) => {
            assert_eq!(e.input, s.chars().take(64).collect::<String>());
            assert!(!e.why.is_empty());
        }
    }
    let raw = Timestamp::from_millis(r.u64());
    let text = raw.to_rfc3339();
    if raw.as_millis() <= LAST_HTTP_DATE * 1000 + 999 {
        assert_eq!(Timestamp::parse_rfc3339(&text), Ok(raw), "{text}");
    }
}

/// Replaces every base64 character of `s` after its first `keep` characters with another
/// base64 character that has the same four low bits: validity, decoded length and the
/// kind of every error stay the same, only the text changes.
fn mask(s: &str, keep: usize) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    s.chars()
        .enumerate()
        .map(|(i, c)| match ALPHABET.iter().position(|&a| char::from(a) == c) {
            Some(p) if i >= keep => char::from(ALPHABET[p ^ 16]),
            _ => c,
        })
        .collect()
}

fn webhook_config(r: &mut Reader<'_>) {
    let url = match r.u8() % 3 {
        0 => r.string(),
        1 => format!("https://{}/hook", r.string()),
        _ => "https://hooks.example.com/in?token=abc".to_owned(),
    };
    let secrets: Vec<String> = (0..r.u8() % 4)
        .map(|_| {
            if r.flag() {
                format!("whsec_{}", r.string())
            } else {
                r.string()
            }
        })
        .collect();
    let cloudevents = r.flag().then(|| r.string());
    let headers: Vec<(String, String)> = (0..r.u8() % 4).map(|_| (r.string(), r.string())).collect();
    let allow_private = r.flag();
    let user_agent = r.flag().then(|| r.string());
    let build = |secrets: &[String], headers: &[(String, String)]| {
        let mut b = WebhookConfig::builder(&url).allow_private_network(allow_private);
        for s in secrets {
            b = b.secret(s.clone());
        }
        for (name, value) in headers {
            b = b.header(name.clone(), value.clone());
        }
        if let Some(source) = &cloudevents {
            b = b.cloudevents(source.clone());
        }
        if let Some(ua) = &user_agent {
            b = b.user_agent(ua.clone());
        }
        let debug = format!("{b:?}");
        (b.build(), debug)
    };
    let (built, builder_debug) = build(&secrets, &headers);
    let masked_secrets: Vec<String> = secrets.iter().map(|s| mask(s, WebhookSecret::PREFIX.len())).collect();
    let masked_headers: Vec<(String, String)> = headers.iter().map(|(n, v)| (n.clone(), mask(v, 0))).collect();
    let (masked, masked_builder_debug) = build(&masked_secrets, &masked_headers);
    assert_eq!(
        builder_debug, masked_builder_debug,
        "the builder's Debug shows a secret"
    );
    match (&built, &masked) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.secret_count(), secrets.len());
            assert_eq!(a.allows_private_network(), allow_private);
            assert_eq!(
                format!("{a:?}"),
                format!("{b:?}"),
                "Debug shows a secret or a header value"
            );
        }
        (Err(a), Err(b)) => assert_eq!(
            a.to_string(),
            b.to_string(),
            "an error shows a secret or a header value"
        ),
        _ => panic!("changing the text of secrets or header values changed validity: {built:?} vs {masked:?}"),
    }
}

fn config_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let input = |sections: [&[u8]; 6]| sections.iter().fold(Writer::default(), |w, s| w.long_bytes(s)).done();
    // Fixed [5 s, 300 s], equal jitter, 3 attempts, no window, 30 s timeout, 1 h
    // Retry-After cap; a failure of attempt 2 at T0 + 1 s asking for T0 + 60 s; 64 in
    // flight, 1 MiB payloads.
    let fixed = Writer::default()
        .u8(0b0000_0100)
        .u8(2)
        .u64(5_000)
        .u8(0)
        .u64(300_000)
        .u8(0)
        .u8(0)
        .u8(3)
        .u64(0)
        .u8(3)
        .u64(30_000)
        .u8(0)
        .u64(3_600_000)
        .u8(1)
        .u64(9)
        .u64(1)
        .u64(2)
        .u16(5)
        .u8(1)
        .u16(2)
        .u8(2)
        .u8(0)
        .u32(1_000)
        .u8(1)
        .u8(0)
        .u32(60_000)
        .u32(64)
        .u8(0)
        .u32(1 << 20)
        .done();
    // Exponential 1 s x2 cap 10 min, decorrelated jitter, 1000 attempts in a day's
    // window; attempt 4e9 fails.
    let exponential = Writer::default()
        .u8(0b0000_1111)
        .u64(1_000)
        .u8(1)
        .u8(0)
        .u16(1_000)
        .u64(600_000)
        .u8(1)
        .u8(2)
        .u64(86_400_000)
        .u8(1)
        .u64(30_000)
        .u8(0)
        .u64(60_000)
        .u8(0)
        .u64(3)
        .u64(0)
        .u64(0)
        .u16(999)
        .u8(0)
        .u32(4_000_000_000)
        .u32(8)
        .u8(0)
        .u32(4096)
        .done();
    let nan = Writer::default()
        .u8(1)
        .u64(1_000)
        .u8(1)
        .u8(1)
        .u64(f64::NAN.to_bits())
        .u64(u64::MAX)
        .u8(2)
        .u32(999_999_999)
        .done();
    // The largest durations and times everywhere.
    let huge = Writer::default()
        .u8(0b0000_0010)
        .u8(1)
        .u64(u64::MAX)
        .u8(2)
        .u32(999_999_999)
        .u8(1)
        .u32(1_000)
        .u64(0)
        .u8(3)
        .u64(u64::MAX)
        .u8(1)
        .u64(u64::MAX)
        .u8(2)
        .u32(0)
        .u64(u64::MAX)
        .u64(u64::MAX)
        .u64(u64::MAX)
        .u16(0)
        .u8(1)
        .u16(500)
        .u8(1)
        .u64(u64::MAX - 5)
        .u8(1)
        .u64(u64::MAX - 1)
        .u8(1)
        .u8(1)
        .u64(u64::MAX)
        .done();
    let overrides = Writer::default()
        .u8(3)
        .u16(404)
        .u8(1)
        .u16(99)
        .u8(0)
        .u16(201)
        .u8(2)
        .done();
    let event = Writer::default()
        .str("invoice.paid")
        .u8(0b0000_1111)
        .str("inv_1")
        .str("application/json")
        .long_bytes(br#"{"amount":100}"#)
        .u32(5_000)
        .u8(2)
        .str("tenant")
        .str("acme")
        .str("empty")
        .str("")
        .done();
    let far_event = Writer::default().str("t").u8(0b0001_1000).u64(u64::MAX).u8(0).done();
    let many_metadata = Writer::default()
        .str("t")
        .u8(0b0010_1000)
        .u32(0)
        .u8(4)
        .str("k0")
        .str("v")
        .done();
    let derived = Writer::default()
        .str("order.created")
        .u8(0b0000_1110)
        .str("text/plain; charset=utf-8")
        .long_bytes(b"")
        .u32(0)
        .u8(1)
        .str("bad key")
        .str("v")
        .done();
    let rfc = Writer::default()
        .str("2024-02-29T23:59:59.999+01:00")
        .u64(1_700_000_000_123)
        .done();
    let far_rfc = Writer::default()
        .str("9999-12-31T23:59:59.999-23:59")
        .u64(u64::MAX)
        .done();
    let leap_rfc = Writer::default().str("2016-12-31t23:59:60.5z").u64(0).done();
    let webhook_bad = Writer::default()
        .u8(2)
        .u8(2)
        .u8(1)
        .str("C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
        .u8(0)
        .str("sk_live_abcdefghijklmnop")
        .u8(1)
        .str("/herald/orders")
        .u8(2)
        .str("authorization")
        .str("Bearer t0kenVALUE")
        .str("x-bad")
        .str("line\nbreak")
        .u8(0)
        .u8(0)
        .done();
    let webhook_ok = Writer::default()
        .u8(2)
        .u8(1)
        .u8(1)
        .str("C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
        .u8(1)
        .str("/herald/orders")
        .u8(1)
        .str("authorization")
        .str("Bearer t0ken")
        .u8(0)
        .u8(1)
        .str("herald-test/1")
        .done();
    let credentials = Writer::default()
        .u8(0)
        .str("http://user:hunter2@169.254.169.254/latest")
        .done();
    let private = Writer::default()
        .u8(1)
        .str("127.0.0.1:8080")
        .u8(0)
        .u8(0)
        .u8(0)
        .u8(1)
        .done();
    vec![
        ("empty", Vec::new()),
        (
            "fixed",
            input([&fixed, &overrides, b"evt_2024-01-01", &event, &rfc, &webhook_ok]),
        ),
        (
            "exponential",
            input([&exponential, &[], b"a.b", &derived, &leap_rfc, &webhook_bad]),
        ),
        (
            "nan",
            input([&nan, &[], &[b'a'; 129], &many_metadata, &far_rfc, &credentials]),
        ),
        (
            "huge",
            input([&huge, &[], "\u{e9}".as_bytes(), &far_event, &[], &private]),
        ),
    ]
}

// ---------------------------------------------------------------------------------------
// webhook_sign

const VECTOR_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const VECTOR_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
const VECTOR_TS: u64 = 1_649_367_553;
const VECTOR_BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
const VECTOR_SIGNATURE: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

/// Signs and verifies. Input, as lines: secrets (space-separated; a token that is not a
/// valid `whsec_` secret is used as raw key bytes), the id, the timestamp (decimal, or
/// any text: its bytes make a number), a header to verify, then the body (the rest, any
/// bytes).
///
/// Properties: `sign` equals an independent HMAC-SHA256 over `{id}.{timestamp}.{body}`
/// (and the Standard Webhooks test vector); the header of every secret verifies with each
/// secret alone; changing any byte of the id, the timestamp or the body, or using a key
/// not in the header, fails; `verify` accepts an arbitrary header exactly when one of its
/// space-separated parts is a right signature.
pub fn webhook_sign(data: &[u8]) {
    let mut parts = data.splitn(5, |b| *b == b'\n');
    let mut next = || parts.next().unwrap_or_default();
    let (secret_line, id, ts, header, body) = (next(), next(), next(), next(), next());
    let secret_line = String::from_utf8_lossy(secret_line);
    let id = String::from_utf8_lossy(id);
    let ts_text = String::from_utf8_lossy(ts);
    let ts: u64 = ts_text
        .parse()
        .unwrap_or_else(|_| ts.iter().fold(0u64, |acc, b| acc.rotate_left(8) ^ u64::from(*b)));
    let header = String::from_utf8_lossy(header);

    let mut secrets = Vec::new();
    for token in secret_line.split(' ').take(4) {
        secrets.push(match WebhookSecret::parse(token) {
            Ok(s) => {
                let b64 = token.strip_prefix(WebhookSecret::PREFIX).expect("parsed");
                let key = STANDARD_NO_PAD.decode(b64.trim_end_matches('='));
                assert_eq!(key.ok().as_deref(), Some(s.key()), "{token:?}");
                s
            }
            Err(e) => {
                // The error does not depend on the secret's text.
                let masked = WebhookSecret::parse(&mask(token, WebhookSecret::PREFIX.len()));
                assert_eq!(masked.map_err(|e| e.to_string()), Err(e.to_string()), "{token:?}");
                raw_secret(token.as_bytes())
            }
        });
    }

    // Every signature matches an independent HMAC.
    for s in &secrets {
        let sig = sign(s.key(), &id, ts, body);
        assert_eq!(sig, reference_signature(s.key(), &id, ts, body));
        if secret_line == VECTOR_SECRET && id == VECTOR_ID && ts == VECTOR_TS && body == VECTOR_BODY {
            assert_eq!(sig, VECTOR_SIGNATURE, "the Standard Webhooks test vector");
        }
    }
    let full = signature_header(&secrets, &id, ts, body);
    let expected: Vec<String> = secrets.iter().map(|s| sign(s.key(), &id, ts, body)).collect();
    assert_eq!(full, expected.join(" "));
    for s in &secrets {
        let one = std::slice::from_ref(s);
        assert!(verify(&full, one, &id, ts, body), "a rotated secret does not verify");
        assert!(!verify(&full, one, &id, ts ^ 1, body), "a changed timestamp verifies");
        assert!(
            !verify(&full, one, &id, ts.wrapping_add(1_000), body),
            "a replayed timestamp verifies"
        );
        let mut changed = id.to_string();
        if let Some(c) = changed.pop() {
            changed.push(if c == 'x' { 'y' } else { 'x' });
        } else {
            changed.push('x');
        }
        assert!(!verify(&full, one, &changed, ts, body), "a changed id verifies");
        let mut b = body.to_vec();
        let positions = [0, b.len() / 2, b.len().saturating_sub(1)];
        for i in positions {
            if let Some(x) = b.get_mut(i) {
                *x ^= 0x01;
                assert!(!verify(&full, one, &id, ts, &b), "body byte {i} changed and verifies");
                b[i] ^= 0x01;
            }
        }
        b.push(b'\n');
        assert!(!verify(&full, one, &id, ts, &b), "an extended body verifies");
        // A key that is not in the header.
        let mut other = s.key().to_vec();
        other[0] ^= 0x80;
        assert!(
            !verify(&full, &[raw_secret(&other)], &id, ts, body),
            "a wrong key verifies"
        );
    }
    assert!(!verify(&full, &[], &id, ts, body), "no secret verifies");
    // An arbitrary header verifies exactly when it holds a right signature.
    let holds = header.split(' ').any(|p| expected.iter().any(|e| e == p));
    assert_eq!(verify(&header, &secrets, &id, ts, body), holds, "header {header:?}");
    let with_garbage = format!("{header} {full}");
    assert!(secrets.is_empty() || verify(&with_garbage, &secrets, &id, ts, body));
}

/// A secret whose key is `bytes` (repeated up to the minimum length; a fixed key if empty).
fn raw_secret(bytes: &[u8]) -> WebhookSecret {
    let mut key = if bytes.is_empty() {
        b"herald-fuzz".to_vec()
    } else {
        bytes.to_vec()
    };
    while key.len() < WebhookSecret::MIN_KEY_LEN {
        key.extend_from_within(..key.len().min(WebhookSecret::MIN_KEY_LEN - key.len()));
    }
    let text = format!("{}{}", WebhookSecret::PREFIX, STANDARD.encode(&key));
    let secret = WebhookSecret::parse(&text).expect("whsec_ + base64 of 24 bytes or more");
    assert_eq!(secret.key(), key.as_slice());
    secret
}

fn reference_signature(key: &[u8], id: &str, ts: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    let mut msg = format!("{id}.{ts}.").into_bytes();
    msg.extend_from_slice(body);
    mac.update(&msg);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

fn webhook_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let body = std::str::from_utf8(VECTOR_BODY).expect("utf-8");
    let lines = |parts: &[&str]| parts.join("\n").into_bytes();
    vec![
        ("empty", Vec::new()),
        (
            "test-vector",
            lines(&[VECTOR_SECRET, VECTOR_ID, "1649367553", VECTOR_SIGNATURE, body]),
        ),
        (
            "rotation",
            lines(&[
                &format!("{VECTOR_SECRET} whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
                VECTOR_ID,
                "1649367553",
                &format!("v1a,abc v1,AAAA {VECTOR_SIGNATURE}"),
                body,
            ]),
        ),
        (
            "unpadded",
            lines(&["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwAA", "evt_1", "0", "v1,", ""]),
        ),
        (
            "raw-keys",
            lines(&[
                "short not*base64 whsec_c2hvcnQ=",
                "a.b",
                "18446744073709551615",
                "v2,x",
                "\0\u{ff}body",
            ]),
        ),
        ("binary-body", {
            let mut v = lines(&[VECTOR_SECRET, "msg_1", "not a number", ""]);
            v.extend_from_slice(b"\n\x00\x01\xfe\xff\n\n");
            v
        }),
    ]
}
