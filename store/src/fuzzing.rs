//! The record codecs, exposed for the fuzz targets and their corpus replays (not a
//! stable API): decoding arbitrary bytes must return an error, never panic, and whatever
//! decodes must encode back to bytes that decode to the same value.

use herald_core::{AttemptRecord, DeliveryRecord, ExternalEvent};

use crate::encoding;

/// Decodes a stored event.
pub fn decode_event(bytes: &[u8]) -> Result<ExternalEvent, String> {
    encoding::decode_event(bytes)
}

/// Encodes an event as the store does.
pub fn encode_event(event: &ExternalEvent) -> Vec<u8> {
    let mut out = Vec::new();
    encoding::encode_event(event, &mut out);
    out
}

/// Decodes a stored delivery record.
pub fn decode_record(bytes: &[u8]) -> Result<DeliveryRecord, String> {
    encoding::decode_record(bytes)
}

/// Encodes a delivery record as the store does.
pub fn encode_record(record: &DeliveryRecord) -> Vec<u8> {
    let mut out = Vec::new();
    encoding::encode_record(record, &mut out);
    out
}

/// Decodes a stored attempt record.
pub fn decode_attempt(bytes: &[u8]) -> Result<AttemptRecord, String> {
    encoding::decode_attempt(bytes)
}

/// Encodes an attempt record as the store does.
pub fn encode_attempt(attempt: &AttemptRecord) -> Vec<u8> {
    let mut out = Vec::new();
    encoding::encode_attempt(attempt, &mut out);
    out
}
