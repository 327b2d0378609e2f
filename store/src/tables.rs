//! The tables of a store and the layout of their keys. This is the file format: a change
//! here needs a new [`crate::SCHEMA_VERSION`].
//!
//! Keys are byte strings laid out here rather than redb tuples: redb compares `&[u8]` keys
//! with one `memcmp` instead of decoding each tuple element, the layout is written down in
//! one place, and big-endian numbers make byte order equal numeric order, so one prefix
//! range selects a port, a status of a port, or the attempts of a delivery.
//!
//! Every key starts with the port, as `len: u8 ‖ name`. The length prefix keeps one port's
//! keys from ever sharing a prefix with another port's (`"a"` vs `"ab"`).
//!
//! | table | key | value |
//! |---|---|---|
//! | `herald_meta` | name (`&str`) | bytes: format name, schema version |
//! | `herald_deliveries` | port ‖ event key (16) | encoded [`herald_core::DeliveryRecord`] |
//! | `herald_events` | port ‖ accepted at (u64 BE ms) ‖ event key | encoded [`herald_core::ExternalEvent`]; never changes |
//! | `herald_attempts` | port ‖ accepted at ‖ event key ‖ attempt (u32 BE) | encoded [`herald_core::AttemptRecord`] |
//! | `herald_by_status` | port ‖ status (u8) ‖ since (u64 BE ms) ‖ event key | `0` |
//! | `herald_by_status` | port ‖ status ‖ `0xff` × 24 (the count row) | deliveries in that status (`u64`) |
//!
//! Why this shape: what costs in a durable commit is the number of distinct B-tree pages
//! it dirties, and a random key (an event key digest) dirties a page of its own. Only
//! `herald_deliveries`, the lookup by key, has random keys. Events and attempts are keyed
//! by acceptance time after the port, so a batch of new events appends to one end of
//! their table (and attempts of recent deliveries cluster), and an event, the largest
//! value, is written once and never rewritten when its record changes. Status entries of
//! new and newly finished deliveries append at the end of their status's range, where
//! that status's count row is, so the count costs no page of its own. The time in an
//! event or attempt key is `accepted_at`, which never changes, so the record locates them.
//!
//! `since` in `herald_by_status` is [`index_time`]: the start of the current cycle for an
//! active delivery and the time it ended for a terminal one. Both change only when the
//! status changes, so an entry moves only on a status change; active deliveries list
//! oldest cycle first, terminal ones oldest end first, which is also what `prune` needs.
//! No entry can collide with a count row: an event key is a UUIDv5, whose version nibble
//! is never `0xf`.

use herald_core::{DeliveryRecord, DeliveryStatus, EventKey, Timestamp};
use redb::TableDefinition;

use crate::error::PortError;

/// The longest port name, in bytes (its length is stored in one byte).
pub const MAX_PORT_LEN: usize = 255;

pub(crate) const META: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("herald_meta");
pub(crate) const EVENTS: TableDefinition<'static, &[u8], &[u8]> = TableDefinition::new("herald_events");
pub(crate) const DELIVERIES: TableDefinition<'static, &[u8], &[u8]> = TableDefinition::new("herald_deliveries");
pub(crate) const ATTEMPTS: TableDefinition<'static, &[u8], &[u8]> = TableDefinition::new("herald_attempts");
pub(crate) const BY_STATUS: TableDefinition<'static, &[u8], u64> = TableDefinition::new("herald_by_status");

/// Names of the tables, for messages.
pub(crate) const EVENTS_NAME: &str = "herald_events";
pub(crate) const DELIVERIES_NAME: &str = "herald_deliveries";
pub(crate) const ATTEMPTS_NAME: &str = "herald_attempts";
pub(crate) const BY_STATUS_NAME: &str = "herald_by_status";

const KEY_LEN: usize = 16;
const MAX_PREFIX: usize = 1 + MAX_PORT_LEN;
/// The longest key of any table (an attempt key of a longest port name).
const MAX_KEY: usize = MAX_PREFIX + 8 + KEY_LEN + 4;

/// The length of a by-status key after the port prefix; also a list cursor's length.
pub(crate) const STATUS_SUFFIX_LEN: usize = 1 + 8 + KEY_LEN;

/// Checks a port name: 1 to [`MAX_PORT_LEN`] bytes.
pub fn validate_port(port: &str) -> Result<(), PortError> {
    if port.is_empty() {
        return Err(PortError::Empty);
    }
    if port.len() > MAX_PORT_LEN {
        return Err(PortError::TooLong {
            name: port.chars().take(64).collect(),
            len: port.len(),
            max: MAX_PORT_LEN,
        });
    }
    Ok(())
}

/// A key built on the stack: keys are at most [`MAX_KEY`] bytes, and building one per
/// lookup should not allocate.
#[derive(Clone, Copy)]
pub(crate) struct KeyBuf {
    buf: [u8; MAX_KEY],
    len: usize,
}

impl PartialEq for KeyBuf {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for KeyBuf {}

impl PartialOrd for KeyBuf {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for KeyBuf {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl KeyBuf {
    /// The port prefix alone (the port must be valid).
    pub(crate) fn port(port: &str) -> Self {
        let mut k = KeyBuf {
            buf: [0; MAX_KEY],
            len: 0,
        };
        k.push(&[u8::try_from(port.len()).unwrap_or(u8::MAX)]);
        k.push(port.as_bytes());
        k
    }

    /// A copy of raw key bytes, if they fit.
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut k = KeyBuf {
            buf: [0; MAX_KEY],
            len: 0,
        };
        (bytes.len() <= MAX_KEY).then(|| {
            k.push(bytes);
            k
        })
    }

    fn push(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn with(mut self, bytes: &[u8]) -> Self {
        self.push(bytes);
        self
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// `port ‖ key`: a `herald_deliveries` key.
    pub(crate) fn delivery(self, key: EventKey) -> Self {
        self.with(&key.0)
    }

    /// `port ‖ accepted_at ‖ key`: a `herald_events` key, and the prefix of the
    /// delivery's attempts.
    pub(crate) fn event(self, accepted_at: Timestamp, key: EventKey) -> Self {
        self.with(&accepted_at.as_millis().to_be_bytes()).with(&key.0)
    }

    /// `port ‖ accepted_at ‖ key ‖ attempt`: a `herald_attempts` key.
    pub(crate) fn attempt(self, accepted_at: Timestamp, key: EventKey, attempt: u32) -> Self {
        self.event(accepted_at, key).with(&attempt.to_be_bytes())
    }

    /// `port ‖ status`: the prefix of a status's entries and count row.
    pub(crate) fn status(self, status: DeliveryStatus) -> Self {
        self.with(&[status.code()])
    }

    /// `port ‖ status ‖ since ‖ key`: a status entry.
    pub(crate) fn indexed(self, status: DeliveryStatus, since: Timestamp, key: EventKey) -> Self {
        self.status(status).with(&since.as_millis().to_be_bytes()).with(&key.0)
    }

    /// `port ‖ status ‖ since`: the first status entry at or after `since`.
    pub(crate) fn indexed_from(self, status: DeliveryStatus, since: Timestamp) -> Self {
        self.status(status).with(&since.as_millis().to_be_bytes())
    }

    /// `port ‖ status ‖ 0xff…`: the count row of a status, after all its entries.
    pub(crate) fn count_row(self, status: DeliveryStatus) -> Self {
        self.status(status).with(&[u8::MAX; 8 + KEY_LEN])
    }

    /// `port ‖ suffix`, for a cursor.
    pub(crate) fn suffix(self, suffix: &[u8]) -> Self {
        self.with(suffix)
    }

    /// The smallest key greater than every key that starts with this one, or `None` if
    /// there is none (all bytes `0xff`): the exclusive end of a prefix range.
    pub(crate) fn prefix_end(&self) -> Option<KeyBuf> {
        let mut end = *self;
        while end.len > 0 {
            let last = end.len - 1;
            if end.buf[last] < u8::MAX {
                end.buf[last] += 1;
                return Some(end);
            }
            end.len = last;
        }
        None
    }

    /// The key's length in bytes.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// The status entry of a record, whose key is `key` (passed in: computing it from the
/// record's id costs a digest).
pub(crate) fn index_key(port: &KeyBuf, record: &DeliveryRecord, key: EventKey) -> KeyBuf {
    port.indexed(record.status, index_time(record), key)
}

/// The time a record is filed under in `herald_by_status` (see the module docs).
pub(crate) fn index_time(record: &DeliveryRecord) -> Timestamp {
    if record.status.is_terminal() {
        record.updated_at
    } else {
        record.cycle_started_at
    }
}

/// Reads an event key from 16 bytes.
pub(crate) fn event_key(bytes: &[u8]) -> Option<EventKey> {
    bytes.try_into().ok().map(EventKey)
}

/// Splits `port ‖ rest` into the port name and the rest.
pub(crate) fn split_port(key: &[u8]) -> Option<(&str, &[u8])> {
    let (&len, rest) = key.split_first()?;
    let len = usize::from(len);
    if rest.len() < len {
        return None;
    }
    let (name, rest) = rest.split_at(len);
    Some((std::str::from_utf8(name).ok()?, rest))
}

/// A row of `herald_by_status`, after its port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StatusRow {
    /// A delivery filed under a status.
    Entry(DeliveryStatus, Timestamp, EventKey),
    /// The count row of a status.
    Count(DeliveryStatus),
}

/// Reads a `herald_by_status` key after the port.
pub(crate) fn split_status_suffix(suffix: &[u8]) -> Option<StatusRow> {
    if suffix.len() != STATUS_SUFFIX_LEN {
        return None;
    }
    let status = DeliveryStatus::from_code(suffix[0])?;
    if suffix[1..].iter().all(|b| *b == u8::MAX) {
        return Some(StatusRow::Count(status));
    }
    let since = u64::from_be_bytes(suffix[1..9].try_into().ok()?);
    Some(StatusRow::Entry(
        status,
        Timestamp::from_millis(since),
        event_key(&suffix[9..])?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_prefix_never_prefixes_another_ports_keys() {
        let a = KeyBuf::port("a").delivery(EventKey([0x62; 16]));
        let ab = KeyBuf::port("ab");
        assert!(!a.as_slice().starts_with(ab.as_slice()));
        assert!(
            !ab.delivery(EventKey([0; 16]))
                .as_slice()
                .starts_with(KeyBuf::port("a").as_slice())
        );
    }

    #[test]
    fn status_rows_sort_by_status_then_time_then_key_with_the_count_last() {
        let p = KeyBuf::port("p");
        let k = EventKey([7; 16]);
        let early = p.indexed(DeliveryStatus::Pending, Timestamp::from_millis(255), k);
        let late = p.indexed(DeliveryStatus::Pending, Timestamp::MAX, EventKey([0xfe; 16]));
        let count = p.count_row(DeliveryStatus::Pending);
        let retrying = p.indexed(DeliveryStatus::Retrying, Timestamp::EPOCH, EventKey([0; 16]));
        assert!(early < late && late < count && count < retrying);
        let (port, rest) = split_port(early.as_slice()).unwrap();
        assert_eq!(port, "p");
        assert_eq!(
            split_status_suffix(rest),
            Some(StatusRow::Entry(
                DeliveryStatus::Pending,
                Timestamp::from_millis(255),
                k
            ))
        );
        let (_, rest) = split_port(count.as_slice()).unwrap();
        assert_eq!(
            split_status_suffix(rest),
            Some(StatusRow::Count(DeliveryStatus::Pending))
        );
    }

    #[test]
    fn no_event_key_is_all_ones() {
        // The count row relies on it: UUIDv5 sets the version nibble to 5.
        let key = herald_core::EventId::new("x").unwrap().key();
        assert_eq!(key.0[6] >> 4, 5);
    }

    #[test]
    fn a_prefix_range_ends_after_its_last_possible_key() {
        let p = KeyBuf::port("p").status(DeliveryStatus::Failed);
        let end = p.prefix_end().unwrap();
        assert!(KeyBuf::port("p").count_row(DeliveryStatus::Failed) < end);
        assert!(KeyBuf::port("p").status(DeliveryStatus::Exhausted) >= end);
        let mut all_ff = KeyBuf::port("p");
        all_ff.buf[..2].copy_from_slice(&[0xff, 0xff]);
        assert!(all_ff.prefix_end().is_none());
    }

    #[test]
    fn the_longest_port_name_fits_every_key() {
        let long = "x".repeat(MAX_PORT_LEN);
        assert!(validate_port(&long).is_ok());
        let k = KeyBuf::port(&long).attempt(Timestamp::MAX, EventKey([9; 16]), u32::MAX);
        assert_eq!(k.len(), MAX_KEY);
        assert!(KeyBuf::port(&long).count_row(DeliveryStatus::Exhausted).len() <= MAX_KEY);
        assert_eq!(
            validate_port(&"x".repeat(MAX_PORT_LEN + 1)),
            Err(PortError::TooLong {
                name: "x".repeat(64),
                len: MAX_PORT_LEN + 1,
                max: MAX_PORT_LEN
            })
        );
        assert_eq!(validate_port(""), Err(PortError::Empty));
    }
}
