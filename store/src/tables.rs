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
//! | `herald_events` | port ‖ event key (16) | encoded [`herald_core::ExternalEvent`]; never changes |
//! | `herald_deliveries` | port ‖ event key (16) | encoded [`herald_core::DeliveryRecord`] |
//! | `herald_attempts` | port ‖ event key (16) ‖ attempt (u32 BE) | encoded [`herald_core::AttemptRecord`] |
//! | `herald_by_status` | port ‖ status code (u8) ‖ since (u64 BE ms) ‖ event key (16) | `()` |
//! | `herald_counts` | port ‖ status code (u8) | `u64` deliveries in that status |
//!
//! `since` in `herald_by_status` is [`index_time`]: the start of the current cycle for an
//! active delivery and the time it ended for a terminal one. Both change only when the
//! status changes, so an index entry moves only on a status change; active deliveries list
//! oldest cycle first, terminal ones oldest end first, which is also what `prune` needs.

use herald_core::{DeliveryRecord, DeliveryStatus, EventKey, Timestamp};
use redb::TableDefinition;

use crate::error::PortError;

/// The longest port name, in bytes (its length is stored in one byte).
pub const MAX_PORT_LEN: usize = 255;

pub(crate) const META: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("herald_meta");
pub(crate) const EVENTS: TableDefinition<'static, &[u8], &[u8]> = TableDefinition::new("herald_events");
pub(crate) const DELIVERIES: TableDefinition<'static, &[u8], &[u8]> = TableDefinition::new("herald_deliveries");
pub(crate) const ATTEMPTS: TableDefinition<'static, &[u8], &[u8]> = TableDefinition::new("herald_attempts");
pub(crate) const BY_STATUS: TableDefinition<'static, &[u8], ()> = TableDefinition::new("herald_by_status");
pub(crate) const COUNTS: TableDefinition<'static, &[u8], u64> = TableDefinition::new("herald_counts");

/// Names of the tables, for messages.
pub(crate) const EVENTS_NAME: &str = "herald_events";
pub(crate) const DELIVERIES_NAME: &str = "herald_deliveries";
pub(crate) const ATTEMPTS_NAME: &str = "herald_attempts";
pub(crate) const BY_STATUS_NAME: &str = "herald_by_status";
pub(crate) const COUNTS_NAME: &str = "herald_counts";

const KEY_LEN: usize = 16;
const MAX_PREFIX: usize = 1 + MAX_PORT_LEN;
/// The longest key of any table (an attempts or by-status key of a longest port name).
const MAX_KEY: usize = MAX_PREFIX + 1 + 8 + KEY_LEN;

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

    /// `port ‖ key`: the key of the events and deliveries tables.
    pub(crate) fn delivery(self, key: EventKey) -> Self {
        self.with(&key.0)
    }

    /// `port ‖ key ‖ attempt`.
    pub(crate) fn attempt(self, key: EventKey, attempt: u32) -> Self {
        self.with(&key.0).with(&attempt.to_be_bytes())
    }

    /// `port ‖ status`: the key of the counts table and the prefix of a status's index.
    pub(crate) fn status(self, status: DeliveryStatus) -> Self {
        self.with(&[status.code()])
    }

    /// `port ‖ status ‖ since ‖ key`.
    pub(crate) fn indexed(self, status: DeliveryStatus, since: Timestamp, key: EventKey) -> Self {
        self.status(status).with(&since.as_millis().to_be_bytes()).with(&key.0)
    }

    /// `port ‖ status ‖ since`: the first index key of that status at or after `since`.
    pub(crate) fn indexed_from(self, status: DeliveryStatus, since: Timestamp) -> Self {
        self.status(status).with(&since.as_millis().to_be_bytes())
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

/// The by-status key of a record.
pub(crate) fn index_key(port: &KeyBuf, record: &DeliveryRecord) -> KeyBuf {
    port.indexed(record.status, index_time(record), record.key())
}

/// The time a record is indexed under in `herald_by_status` (see the module docs).
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

/// The parts of a by-status key after the port: status, since, event key.
pub(crate) fn split_status_suffix(suffix: &[u8]) -> Option<(DeliveryStatus, Timestamp, EventKey)> {
    if suffix.len() != STATUS_SUFFIX_LEN {
        return None;
    }
    let status = DeliveryStatus::from_code(suffix[0])?;
    let since = u64::from_be_bytes(suffix[1..9].try_into().ok()?);
    Some((status, Timestamp::from_millis(since), event_key(&suffix[9..])?))
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
    fn index_keys_sort_by_status_then_time_then_key() {
        let p = KeyBuf::port("p");
        let k = EventKey([7; 16]);
        let early = p.indexed(DeliveryStatus::Pending, Timestamp::from_millis(255), k);
        let late = p.indexed(DeliveryStatus::Pending, Timestamp::from_millis(256), EventKey([0; 16]));
        let retrying = p.indexed(DeliveryStatus::Retrying, Timestamp::EPOCH, EventKey([0; 16]));
        assert!(early.as_slice() < late.as_slice());
        assert!(late.as_slice() < retrying.as_slice());
        let (port, rest) = split_port(early.as_slice()).unwrap();
        assert_eq!(port, "p");
        assert_eq!(
            split_status_suffix(rest),
            Some((DeliveryStatus::Pending, Timestamp::from_millis(255), k))
        );
    }

    #[test]
    fn a_prefix_range_ends_after_its_last_possible_key() {
        let p = KeyBuf::port("p").status(DeliveryStatus::Failed);
        let end = p.prefix_end().unwrap();
        let last = KeyBuf::port("p").indexed(DeliveryStatus::Failed, Timestamp::MAX, EventKey([0xff; 16]));
        assert!(last.as_slice() < end.as_slice());
        assert!(KeyBuf::port("p").status(DeliveryStatus::Exhausted).as_slice() >= end.as_slice());
        let mut all_ff = KeyBuf::port("p");
        all_ff.buf[..2].copy_from_slice(&[0xff, 0xff]);
        assert!(all_ff.prefix_end().is_none());
    }

    #[test]
    fn the_longest_port_name_fits_every_key() {
        let long = "x".repeat(MAX_PORT_LEN);
        assert!(validate_port(&long).is_ok());
        let k = KeyBuf::port(&long).indexed(DeliveryStatus::Exhausted, Timestamp::MAX, EventKey([9; 16]));
        assert_eq!(k.len(), MAX_KEY);
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
