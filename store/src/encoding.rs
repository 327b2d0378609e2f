//! How records are stored: a one-byte record version, then the record in
//! [postcard](https://docs.rs/postcard).
//!
//! Why postcard: its wire format is specified and frozen for 1.x (a file written today
//! reads the same with any later 1.x), it is compact (varint integers; a record is about
//! 60 bytes plus its strings), fast, and it is a serde format, so the records are plain
//! derived structs. Self-describing formats (CBOR, JSON) would store every field name in
//! every record; bincode 2 and rkyv are less settled formats.
//!
//! Why the store's own structs rather than the core types' serde impls: the core types are
//! shaped for JSON (`skip_serializing_if`, renamed fields), which a format without field
//! names cannot read back, and a refactor of the core (a new field, a reordered enum) must
//! not silently change the file. Here every field and enum code is written down; a change
//! means a new record version, and the version byte lets old records still be read.
//! Decoding re-validates (event ids, event fields) and rejects trailing bytes, so a damaged
//! record is reported, never half-read.

use herald_core::{
    AttemptOutcome, AttemptRecord, DeliveryRecord, DeliveryStatus, EventId, ExhaustedBy, ExternalEvent, FailureDetail,
    Fingerprint, InFlight, OutcomeClass, ResponseExcerpt, RetryPolicy, Timestamp,
};
use serde::{Deserialize, Serialize};

/// The version byte in front of every record this build writes.
pub(crate) const RECORD_VERSION: u8 = 1;

/// Bytes as one length-prefixed byte string (serde's default for `&[u8]` is a sequence,
/// which postcard also stores compactly but serializes element by element).
#[derive(Clone, Copy)]
struct Bytes<'a>(&'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Bytes<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&'a [u8]>::deserialize(d).map(Bytes)
    }
}

#[derive(Serialize, Deserialize)]
struct EventV1<'a> {
    id: &'a str,
    event_type: &'a str,
    content_type: &'a str,
    #[serde(borrow)]
    payload: Bytes<'a>,
    occurred_at: u64,
    #[serde(borrow)]
    metadata: Vec<(&'a str, &'a str)>,
}

#[derive(Serialize, Deserialize)]
struct RecordV1<'a> {
    id: &'a str,
    fingerprint: u64,
    status: u8,
    accepted_at: u64,
    cycle: u32,
    cycle_started_at: u64,
    cycle_base: u32,
    attempts: u32,
    /// attempt, started at, deadline.
    in_flight: Option<(u32, u64, u64)>,
    next_attempt_at: Option<u64>,
    #[serde(borrow)]
    last_failure: Option<FailureV1<'a>>,
    exhausted_by: Option<u8>,
    delivered_at: Option<u64>,
    updated_at: u64,
}

#[derive(Serialize, Deserialize)]
struct FailureV1<'a> {
    attempt: u32,
    class: u8,
    code: &'a str,
    message: &'a str,
    at: u64,
}

#[derive(Serialize, Deserialize)]
struct AttemptV1<'a> {
    attempt: u32,
    cycle: u32,
    started_at: u64,
    finished_at: u64,
    class: u8,
    code: &'a str,
    message: &'a str,
    retry_after: Option<u64>,
    #[serde(borrow)]
    response: Option<ResponseV1<'a>>,
    duration_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct ResponseV1<'a> {
    status: u16,
    #[serde(borrow)]
    body: Bytes<'a>,
    truncated: bool,
}

fn class_code(c: OutcomeClass) -> u8 {
    match c {
        OutcomeClass::Delivered => 0,
        OutcomeClass::Retryable => 1,
        OutcomeClass::Permanent => 2,
    }
}

fn class_from(code: u8) -> Result<OutcomeClass, String> {
    match code {
        0 => Ok(OutcomeClass::Delivered),
        1 => Ok(OutcomeClass::Retryable),
        2 => Ok(OutcomeClass::Permanent),
        _ => Err(format!("unknown outcome class code {code}")),
    }
}

fn exhausted_code(e: ExhaustedBy) -> u8 {
    match e {
        ExhaustedBy::MaxAttempts => 0,
        ExhaustedBy::RetryWindow => 1,
    }
}

fn exhausted_from(code: u8) -> Result<ExhaustedBy, String> {
    match code {
        0 => Ok(ExhaustedBy::MaxAttempts),
        1 => Ok(ExhaustedBy::RetryWindow),
        _ => Err(format!("unknown exhausted-by code {code}")),
    }
}

fn ts(t: Timestamp) -> u64 {
    t.as_millis()
}

fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

/// Appends the version byte and `wire` to `out` (cleared first).
fn encode_into<T: Serialize>(wire: &T, out: &mut Vec<u8>) {
    out.clear();
    out.push(RECORD_VERSION);
    // postcard fails only for sequences of unknown length and custom serializer errors;
    // these structs have neither.
    let buf = std::mem::take(out);
    *out = postcard::to_extend(wire, buf).expect("postcard encodes every store record");
}

/// Checks the version byte and decodes the rest, which must be consumed exactly.
fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, String> {
    let (&version, body) = bytes.split_first().ok_or("empty value")?;
    if version != RECORD_VERSION {
        return Err(format!(
            "record version {version}; this build reads version {RECORD_VERSION}"
        ));
    }
    let (value, rest) = postcard::take_from_bytes(body).map_err(|e| format!("postcard: {e}"))?;
    if !rest.is_empty() {
        return Err(format!("{} unexpected bytes after the record", rest.len()));
    }
    Ok(value)
}

/// Encodes an event.
pub(crate) fn encode_event(event: &ExternalEvent, out: &mut Vec<u8>) {
    let wire = EventV1 {
        id: event.id().as_str(),
        event_type: event.event_type(),
        content_type: event.content_type(),
        payload: Bytes(event.payload()),
        occurred_at: ts(event.occurred_at()),
        metadata: event.metadata().iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
    };
    encode_into(&wire, out);
}

/// Decodes an event; it goes through the event builder, so it is validated like a new one.
pub(crate) fn decode_event(bytes: &[u8]) -> Result<ExternalEvent, String> {
    let w: EventV1<'_> = decode(bytes)?;
    let mut b = ExternalEvent::builder(w.event_type)
        .id(w.id)
        .content_type(w.content_type)
        .payload(w.payload.0.to_vec())
        .occurred_at(at(w.occurred_at));
    for (k, v) in w.metadata {
        b = b.metadata(k, v);
    }
    b.build().map_err(|e| format!("invalid event: {e}"))
}

/// Encodes a delivery record.
pub(crate) fn encode_record(r: &DeliveryRecord, out: &mut Vec<u8>) {
    let wire = RecordV1 {
        id: r.id.as_str(),
        fingerprint: r.fingerprint.0,
        status: r.status.code(),
        accepted_at: ts(r.accepted_at),
        cycle: r.cycle,
        cycle_started_at: ts(r.cycle_started_at),
        cycle_base: r.cycle_base,
        attempts: r.attempts,
        in_flight: r.in_flight.map(|f| (f.attempt, ts(f.started_at), ts(f.deadline))),
        next_attempt_at: r.next_attempt_at.map(ts),
        last_failure: r.last_failure.as_ref().map(|f| FailureV1 {
            attempt: f.attempt,
            class: class_code(f.class),
            code: &f.code,
            message: &f.message,
            at: ts(f.at),
        }),
        exhausted_by: r.exhausted_by.map(exhausted_code),
        delivered_at: r.delivered_at.map(ts),
        updated_at: ts(r.updated_at),
    };
    encode_into(&wire, out);
}

/// Decodes a delivery record.
pub(crate) fn decode_record(bytes: &[u8]) -> Result<DeliveryRecord, String> {
    let w: RecordV1<'_> = decode(bytes)?;
    Ok(DeliveryRecord {
        id: EventId::new(w.id).map_err(|e| format!("invalid event id: {e}"))?,
        fingerprint: Fingerprint(w.fingerprint),
        status: DeliveryStatus::from_code(w.status).ok_or_else(|| format!("unknown status code {}", w.status))?,
        accepted_at: at(w.accepted_at),
        cycle: w.cycle,
        cycle_started_at: at(w.cycle_started_at),
        cycle_base: w.cycle_base,
        attempts: w.attempts,
        in_flight: w.in_flight.map(|(attempt, started_at, deadline)| InFlight {
            attempt,
            started_at: at(started_at),
            deadline: at(deadline),
        }),
        next_attempt_at: w.next_attempt_at.map(at),
        last_failure: w
            .last_failure
            .map(|f| {
                Ok::<_, String>(FailureDetail {
                    attempt: f.attempt,
                    class: class_from(f.class)?,
                    code: f.code.to_owned(),
                    message: f.message.to_owned(),
                    at: at(f.at),
                })
            })
            .transpose()?,
        exhausted_by: w.exhausted_by.map(exhausted_from).transpose()?,
        delivered_at: w.delivered_at.map(at),
        updated_at: at(w.updated_at),
    })
    .and_then(|r| {
        if r.cycle_base > r.attempts {
            Err(format!(
                "cycle base {} is above the attempt count {}",
                r.cycle_base, r.attempts
            ))
        } else if r.attempts > u32::MAX - RetryPolicy::MAX_ATTEMPTS_LIMIT {
            // Attempt numbers only grow: the engine could not number the next cycle's
            // attempts (and would overflow restoring it).
            Err(format!(
                "attempt count {} leaves no room for another cycle of attempts",
                r.attempts
            ))
        } else {
            Ok(r)
        }
    })
}

/// Encodes an attempt record.
pub(crate) fn encode_attempt(a: &AttemptRecord, out: &mut Vec<u8>) {
    let o = &a.outcome;
    let wire = AttemptV1 {
        attempt: a.attempt,
        cycle: a.cycle,
        started_at: ts(a.started_at),
        finished_at: ts(a.finished_at),
        class: class_code(o.class),
        code: &o.code,
        message: &o.message,
        retry_after: o.retry_after.map(ts),
        response: o.response.as_ref().map(|r| ResponseV1 {
            status: r.status,
            body: Bytes(&r.body),
            truncated: r.truncated,
        }),
        duration_ms: o.duration_ms,
    };
    encode_into(&wire, out);
}

/// Decodes an attempt record.
pub(crate) fn decode_attempt(bytes: &[u8]) -> Result<AttemptRecord, String> {
    let w: AttemptV1<'_> = decode(bytes)?;
    Ok(AttemptRecord {
        attempt: w.attempt,
        cycle: w.cycle,
        started_at: at(w.started_at),
        finished_at: at(w.finished_at),
        outcome: AttemptOutcome {
            class: class_from(w.class)?,
            code: w.code.to_owned(),
            message: w.message.to_owned(),
            retry_after: w.retry_after.map(at),
            response: w.response.map(|r| ResponseExcerpt {
                status: r.status,
                body: r.body.0.to_vec(),
                truncated: r.truncated,
            }),
            duration_ms: w.duration_ms,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> ExternalEvent {
        ExternalEvent::builder("order.created")
            .payload(br#"{"order":42}"#.to_vec())
            .occurred_at(Timestamp::from_millis(1_700_000_000_000))
            .metadata("tenant", "acme")
            .metadata("empty", "")
            .build()
            .unwrap()
    }

    fn finished_record() -> DeliveryRecord {
        let mut r = DeliveryRecord::accepted(&event(), Timestamp::from_millis(5));
        r.attempts = 3;
        r.cycle = 1;
        r.cycle_base = 2;
        r.in_flight = Some(InFlight {
            attempt: 3,
            started_at: Timestamp::from_millis(6),
            deadline: Timestamp::from_millis(7),
        });
        r.last_failure = Some(FailureDetail {
            attempt: 2,
            class: OutcomeClass::Retryable,
            code: "http_503".into(),
            message: "unavailable".into(),
            at: Timestamp::from_millis(8),
        });
        r.exhausted_by = Some(ExhaustedBy::RetryWindow);
        r.delivered_at = Some(Timestamp::from_millis(9));
        r
    }

    #[test]
    fn records_round_trip() {
        let mut buf = Vec::new();
        let e = event();
        encode_event(&e, &mut buf);
        assert_eq!(decode_event(&buf).unwrap(), e);

        let r = finished_record();
        encode_record(&r, &mut buf);
        assert_eq!(buf[0], RECORD_VERSION);
        assert_eq!(decode_record(&buf).unwrap(), r);

        let a = AttemptRecord {
            attempt: 4,
            cycle: 1,
            started_at: Timestamp::from_millis(10),
            finished_at: Timestamp::from_millis(11),
            outcome: AttemptOutcome {
                class: OutcomeClass::Permanent,
                code: "http_410".into(),
                message: "gone".into(),
                retry_after: Some(Timestamp::from_millis(12)),
                response: Some(ResponseExcerpt::new(410, b"\xffbye")),
                duration_ms: 13,
            },
        };
        encode_attempt(&a, &mut buf);
        assert_eq!(decode_attempt(&buf).unwrap(), a);
    }

    #[test]
    fn a_record_is_pinned_byte_for_byte() {
        // The file format: if this changes, bump RECORD_VERSION and keep a decoder for 1.
        let mut buf = Vec::new();
        let r = DeliveryRecord::accepted(&event(), Timestamp::from_millis(300));
        encode_record(&r, &mut buf);
        let id_len = r.id.as_str().len();
        assert_eq!(buf[..2], [1, u8::try_from(id_len).unwrap()]);
        assert_eq!(&buf[2..2 + id_len], r.id.as_str().as_bytes());
        let rest = &buf[2 + id_len..];
        // fingerprint (varint, up to 10 bytes), then status 0, accepted_at 300 = ac 02, ...
        let fp = postcard::to_allocvec(&r.fingerprint.0).unwrap();
        assert_eq!(&rest[..fp.len()], fp.as_slice());
        assert_eq!(
            &rest[fp.len()..],
            &[
                0, 0xac, 0x02, 0, 0xac, 0x02, 0, 0, 0, 1, 0xac, 0x02, 0, 0, 0, 0xac, 0x02
            ]
        );
    }

    #[test]
    fn damaged_records_are_refused_with_a_reason() {
        let mut buf = Vec::new();
        encode_record(&finished_record(), &mut buf);
        assert!(decode_record(&[]).unwrap_err().contains("empty"));
        let mut newer = buf.clone();
        newer[0] = 2;
        assert!(decode_record(&newer).unwrap_err().contains("record version 2"));
        assert!(decode_record(&buf[..buf.len() - 1]).unwrap_err().contains("postcard"));
        let mut longer = buf.clone();
        longer.push(0);
        assert!(decode_record(&longer).unwrap_err().contains("1 unexpected bytes"));
        let mut bad_id = buf.clone();
        bad_id[2] = b'.';
        assert!(decode_record(&bad_id).unwrap_err().contains("invalid event id"));
        // Every truncation and every single-byte change is an error or a valid record,
        // never a panic.
        for i in 0..buf.len() {
            let _ = decode_record(&buf[..i]);
            for b in [0u8, 0x7f, 0x80, 0xff] {
                let mut m = buf.clone();
                m[i] = b;
                let _ = decode_record(&m);
            }
        }
    }

    /// Found with the `store_decode` fuzz target's property (the engine restores any
    /// decodable record without panicking) on a hand-made input: a damaged record with an
    /// attempt count near `u32::MAX` decoded, and restoring it overflowed the next attempt
    /// number.
    #[test]
    fn fuzz_an_attempt_count_without_room_for_a_cycle_is_refused() {
        let mut buf = Vec::new();
        let mut r = DeliveryRecord::accepted(&event(), Timestamp::from_millis(5));
        r.attempts = u32::MAX;
        r.cycle_base = u32::MAX;
        encode_record(&r, &mut buf);
        assert!(decode_record(&buf).unwrap_err().contains("no room"));
        r.attempts = u32::MAX - RetryPolicy::MAX_ATTEMPTS_LIMIT;
        r.cycle_base = r.attempts;
        encode_record(&r, &mut buf);
        assert_eq!(decode_record(&buf).unwrap(), r);
    }

    #[test]
    fn a_damaged_event_fails_validation_on_decode() {
        let mut buf = Vec::new();
        encode_event(&event(), &mut buf);
        let decoded = decode_event(&buf).unwrap();
        assert_eq!(decoded.fingerprint(), event().fingerprint());
        let mut bad_type = buf.clone();
        let pos = bad_type.windows(5).position(|w| w == b"order").unwrap();
        bad_type[pos] = 0x01;
        assert!(decode_event(&bad_type).unwrap_err().contains("invalid event"));
    }
}
