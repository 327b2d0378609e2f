//! The [`Store`] trait: what a driver, the CLI and the tests need from durable storage,
//! independent of the backend (redb now; a shared SQL database for several nodes later).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use herald_core::{AttemptRecord, Change, DeliveryRecord, DeliveryStatus, EventKey, ExternalEvent, Timestamp};

use crate::error::{CommitError, ReadError, RedriveError};
use crate::tables::STATUS_SUFFIX_LEN;

/// Durable storage of events, delivery records and attempt histories, for any number of
/// ports (every key is scoped by port name).
///
/// Synchronous on purpose: a commit waits for an fsync, so drivers call it from a thread
/// that may block (Herald's driver loop has one of its own) and keep their async threads
/// free. A single-key read is a page-cache lookup, or one disk read for a cold page:
/// Herald's status query makes it on the caller's thread. The trait is dyn-compatible so a driver can hold an `Arc<dyn Store>`.
pub trait Store: Send + Sync + fmt::Debug {
    /// Applies a batch of changes, from any ports and deliveries, in one durable write
    /// transaction (group commit: one fsync for the whole batch), in order: a later change
    /// sees the earlier ones. Returns one [`Applied`] per change, in batch order.
    ///
    /// All or nothing: if one change does not apply ([`CommitError::Rejected`]), nothing is
    /// written. An `Accepted` for a stored delivery with the same content is a no-op
    /// ([`Applied::existed`]); with different content it is refused. When the commit itself
    /// fails the outcome is unknown ([`CommitError::OutcomeUnknown`]): reopen and restore.
    fn commit(&self, batch: &[(&str, Change)]) -> Result<Vec<Applied>, CommitError>;

    /// Calls `f` with every unfinished (pending or retrying) delivery of `port`, one at a
    /// time from one read transaction, and returns how many there were. Payloads are not
    /// read, and records are not collected, so memory stays flat however many there are
    /// ([`crate::RedbStore`] looks them up in key order, 65,536 index entries at a time).
    /// Each record carries its attempt count, next attempt time and any attempt that was
    /// in flight when the process stopped (see [`herald_core::Engine::restore_record`]).
    ///
    /// An undecodable record stops the walk with [`ReadError::Corrupt`] naming it; the
    /// records read before it have been passed to `f`.
    fn for_each_unfinished(&self, port: &str, f: &mut dyn FnMut(DeliveryRecord)) -> Result<u64, ReadError>;

    /// The event of a delivery (the engine holds keys and times, not payloads).
    fn event(&self, port: &str, key: EventKey) -> Result<Option<ExternalEvent>, ReadError>;

    /// The record of a delivery.
    fn record(&self, port: &str, key: EventKey) -> Result<Option<DeliveryRecord>, ReadError>;

    /// The records of several deliveries (of any ports), in the order asked; a driver
    /// round reads the records its sends need at once. The default calls
    /// [`Store::record`] for each; [`crate::RedbStore`] reads them all in one transaction.
    /// An error for one key is that key's result; the others are still read.
    fn records(&self, keys: &[(&str, EventKey)]) -> Vec<Result<Option<DeliveryRecord>, ReadError>> {
        keys.iter().map(|(port, key)| self.record(port, *key)).collect()
    }

    /// The events of several deliveries (of any ports), in the order asked, as
    /// [`Store::records`] does for records: a driver round reads the events of the
    /// attempts it starts at once.
    fn events(&self, keys: &[(&str, EventKey)]) -> Vec<Result<Option<ExternalEvent>, ReadError>> {
        keys.iter().map(|(port, key)| self.event(port, *key)).collect()
    }

    /// The record of a delivery and every attempt it made, oldest first.
    fn history(&self, port: &str, key: EventKey) -> Result<Option<History>, ReadError>;

    /// One page of a port's deliveries, in a given status or in all. Order: by status
    /// (pending, retrying, delivered, failed, exhausted), then active deliveries by the
    /// start of their cycle and terminal ones by the time they ended, then by key. Pass
    /// [`Page::next`] as `after` for the next page. A delivery that changes status between
    /// two pages may be missed or seen twice.
    fn list(
        &self,
        port: &str,
        status: Option<DeliveryStatus>,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page, ReadError>;

    /// How many deliveries of `port` are in each status (every status is present).
    fn count_by_status(&self, port: &str) -> Result<BTreeMap<DeliveryStatus, u64>, ReadError>;

    /// The ports that have deliveries, sorted by name.
    fn ports(&self) -> Result<Vec<String>, ReadError>;

    /// Deletes every terminal delivery (of every port) whose record last changed before
    /// `older_than`, with its event and attempts; returns how many. Works in several
    /// transactions of bounded size, each durable, so a huge prune neither holds memory
    /// nor blocks commits for long; if it fails part way, what was deleted stays deleted.
    fn prune(&self, older_than: Timestamp) -> Result<u64, CommitError>;

    /// Starts a new cycle for a terminal delivery, as an operator's offline redrive (the
    /// CLI, with the service stopped): the record becomes pending, due at `now`, and the
    /// next start of the port picks it up. Uses [`DeliveryRecord::apply`] with
    /// [`Change::Redriven`], like the engine's online redrive.
    fn redrive(&self, port: &str, key: EventKey, now: Timestamp) -> Result<DeliveryRecord, RedriveError>;
}

/// What one change of a batch did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The delivery's record after the change (publish it to status watchers).
    pub record: DeliveryRecord,
    /// The attempt the change ended, as appended to the history.
    pub attempt: Option<AttemptRecord>,
    /// The change was an `Accepted` for a delivery stored with the same content; nothing
    /// changed.
    pub existed: bool,
}

/// A delivery and its attempts, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct History {
    /// The current record.
    pub record: DeliveryRecord,
    /// Every attempt over all cycles, oldest first.
    pub attempts: Vec<AttemptRecord>,
}

/// One page of [`Store::list`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// The records, in list order.
    pub items: Vec<DeliveryRecord>,
    /// Where the next page starts, if there are more records.
    pub next: Option<Cursor>,
}

/// A position in a [`Store::list`] walk: the last record of a page.
///
/// Opaque; its text form (50 hex digits, from `Display`, read back with `FromStr`) can be
/// handed to a person or a URL and back.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor(pub(crate) [u8; STATUS_SUFFIX_LEN]);

impl Cursor {
    /// The cursor just after `record` in list order.
    pub fn after(record: &DeliveryRecord) -> Self {
        let mut b = [0; STATUS_SUFFIX_LEN];
        b[0] = record.status.code();
        b[1..9].copy_from_slice(&crate::tables::index_time(record).as_millis().to_be_bytes());
        b[9..].copy_from_slice(&record.key().0);
        Cursor(b)
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cursor({self})")
    }
}

/// A string that is not a [`Cursor`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid list cursor {0:?}: expected {len} hex digits", len = 2 * STATUS_SUFFIX_LEN)]
pub struct CursorError(pub String);

impl FromStr for Cursor {
    type Err = CursorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || CursorError(s.chars().take(64).collect());
        if s.len() != 2 * STATUS_SUFFIX_LEN || !s.is_ascii() {
            return Err(err());
        }
        let mut b = [0; STATUS_SUFFIX_LEN];
        for (i, out) in b.iter_mut().enumerate() {
            *out = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| err())?;
        }
        Ok(Cursor(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_from_its_text() {
        let c = Cursor([0xab; STATUS_SUFFIX_LEN]);
        assert_eq!(c.to_string().parse::<Cursor>(), Ok(c));
        assert!("zz".parse::<Cursor>().is_err());
        assert!("g".repeat(50).parse::<Cursor>().is_err());
        assert!("é".repeat(25).parse::<Cursor>().is_err());
    }
}
