//! One error enum per operation family (after redb): opening, committing, reading,
//! redriving, checking. Each variant says what is wrong and where (file, table, port, key),
//! so an operator can act on the message alone.

use std::fmt;

use herald_core::{ApplyError, DeliveryStatus, EventId, EventKey};

/// A port name the store cannot key by.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// The name is empty.
    #[error("port name is empty")]
    Empty,
    /// The name is longer than the store's limit.
    #[error("port name {name:?} is {len} bytes; the limit is {max}")]
    TooLong {
        /// The first 64 characters of the name.
        name: String,
        /// Its length in bytes.
        len: usize,
        /// The limit ([`crate::MAX_PORT_LEN`]).
        max: usize,
    },
}

/// A stored value that could not be decoded: the table, the port and the key say where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("undecodable record in table {table}, {location}: {detail}")]
pub struct Corruption {
    /// The table it is in.
    pub table: &'static str,
    /// Where in the table: port and key when the key itself could be read.
    pub location: Location,
    /// What is wrong with it.
    pub detail: String,
}

/// Where a [`Corruption`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A delivery, event or attempt of a port.
    Delivery {
        /// The port.
        port: String,
        /// The delivery's key.
        key: EventKey,
    },
    /// A key that does not have the layout of its table.
    RawKey(Vec<u8>),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Delivery { port, key } => write!(f, "port {port:?}, key {}", KeyHex(*key)),
            Location::RawKey(bytes) => {
                f.write_str("raw key ")?;
                bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }
    }
}

/// Displays an [`EventKey`] as 32 hex digits (its `Debug` form adds a type name).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyHex(pub EventKey);

impl fmt::Display for KeyHex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for KeyHex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a store could not be opened. Nothing was changed in the file, except by redb's own
/// crash recovery.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The file could not be opened or created (missing directory, no permission, a
    /// directory in its place, ...).
    #[error("cannot open or create the store at {db}: {source}")]
    Io {
        /// The file.
        db: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file exists but is not a redb database.
    #[error("{db} is not a herald store: it is not a redb database file ({detail})")]
    NotRedb {
        /// The file.
        db: String,
        /// What redb saw.
        detail: String,
    },
    /// The file is a redb database written for something else.
    #[error("{db} is a redb database but not a herald store: {detail}")]
    NotHerald {
        /// The file.
        db: String,
        /// What was found instead.
        detail: String,
    },
    /// The store was written by a newer herald-store with a schema this build cannot read.
    #[error(
        "{db} has store schema version {found}; this build of herald-store reads version {supported}: upgrade herald"
    )]
    NewerSchema {
        /// The file.
        db: String,
        /// The version in the file.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// The store has a schema older than any this build can read.
    #[error("{db} has store schema version {found}; this build of herald-store reads only version {supported}")]
    OlderSchema {
        /// The file.
        db: String,
        /// The version in the file.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// The file is damaged (truncated, overwritten, checksum mismatch) beyond redb's repair.
    #[error("{db} is corrupted: {detail}")]
    Corrupted {
        /// The file.
        db: String,
        /// What redb or the schema check found.
        detail: String,
    },
    /// Another process (or another handle in this one) has the file open.
    #[error("{db} is already open by another process or handle")]
    AlreadyOpen {
        /// The file.
        db: String,
    },
    /// Any other failure of the storage engine.
    #[error("cannot open the store at {db}: {source}")]
    Storage {
        /// The file.
        db: String,
        /// redb's error.
        #[source]
        source: redb::Error,
    },
}

/// Why a change of a batch was refused. The whole batch was refused with it; nothing was
/// written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The port name cannot be stored.
    #[error(transparent)]
    Port(#[from] PortError),
    /// The change is about a delivery the store does not have.
    #[error("no such delivery")]
    NotFound,
    /// `Accepted` for an id stored with different content.
    #[error("event {id} is stored with different content")]
    Conflict {
        /// The id.
        id: EventId,
    },
    /// `Accepted` for an id whose key digest equals that of another stored id.
    #[error("event id {id} collides with stored event id {stored}")]
    KeyCollision {
        /// The id in the change.
        id: EventId,
        /// The id stored under the same key.
        stored: EventId,
    },
    /// The change does not fit the stored record (see [`ApplyError`]).
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

/// Why a batch (or a prune) was not committed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError {
    /// A change does not apply; nothing of the batch was written.
    #[error("change {index} of the batch (port {port:?}, key {key}) was refused, nothing was written: {reason}")]
    Rejected {
        /// Its position in the batch.
        index: usize,
        /// Its port.
        port: String,
        /// Its delivery.
        key: KeyHex,
        /// Why.
        reason: Rejection,
    },
    /// The commit itself failed: the batch may or may not be durable. Drop the engines,
    /// reopen the store and restore from it (crash-only recovery).
    #[error("commit failed and its outcome is unknown (reopen the store and restore from it): {source}")]
    OutcomeUnknown {
        /// redb's error.
        #[source]
        source: redb::Error,
    },
    /// The transaction failed before its commit; nothing was written. The storage may be
    /// failing: reopen the store.
    #[error("the write transaction failed before its commit, nothing was written: {source}")]
    Storage {
        /// redb's error.
        #[source]
        source: redb::Error,
    },
    /// A stored record the batch needed is undecodable; nothing was written.
    #[error("nothing was written: {0}")]
    Corrupt(#[from] Corruption),
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The port name cannot be stored, so nothing can be stored under it.
    #[error(transparent)]
    Port(#[from] PortError),
    /// A stored record is undecodable.
    #[error(transparent)]
    Corrupt(#[from] Corruption),
    /// The storage engine failed.
    #[error("read failed: {source}")]
    Storage {
        /// redb's error.
        #[source]
        source: redb::Error,
    },
}

/// Why an offline redrive did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedriveError {
    /// The store has no such delivery.
    #[error("port {port:?} has no delivery with key {key}")]
    NotFound {
        /// The port.
        port: String,
        /// The key.
        key: KeyHex,
    },
    /// The delivery is still active; only terminal deliveries can be redriven.
    #[error("delivery {id} is {status}; only delivered, failed or exhausted deliveries can be redriven")]
    NotTerminal {
        /// The delivery.
        id: EventId,
        /// Its status.
        status: DeliveryStatus,
    },
    /// The commit failed.
    #[error(transparent)]
    Commit(CommitError),
}

/// Why an integrity check failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// redb found pages it could not repair, or could not run its check.
    #[error("storage integrity check failed: {source}")]
    Storage {
        /// redb's error.
        #[source]
        source: redb::Error,
    },
    /// Records are undecodable, or the tables disagree with each other (an index entry
    /// or a count does not match the records).
    #[error("the store's tables are inconsistent ({} problems), first: {}", .problems.len(), .problems.first().map(String::as_str).unwrap_or("-"))]
    Inconsistent {
        /// Every problem found (at most 100 described), each naming the table, port and key.
        problems: Vec<String>,
    },
}

pub(crate) fn storage<E: Into<redb::Error>>(e: E) -> ReadError {
    ReadError::Storage { source: e.into() }
}

pub(crate) fn commit_storage<E: Into<redb::Error>>(e: E) -> CommitError {
    CommitError::Storage { source: e.into() }
}
