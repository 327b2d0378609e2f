//! # herald-store
//!
//! The durable record of every event, delivery state and attempt, for
//! [Herald](herald_core): the engine decides, the store remembers.
//!
//! - [`Store`] is the backend-independent, synchronous API (drivers call it on a blocking
//!   pool). [`RedbStore`] implements it on one [redb](https://docs.rs/redb) file that any
//!   number of ports share; [`RedbStore::in_memory`] is the same store without a file, for
//!   tests.
//! - [`Store::commit`] applies a batch of the engine's [`herald_core::Change`]s, from many
//!   deliveries and ports, in one durable write transaction (group commit). Transitions
//!   are [`herald_core::DeliveryRecord::apply`]'s, never the store's own.
//! - [`Store::for_each_unfinished`] streams what [`herald_core::Engine::restore_record`]
//!   needs after a restart, without reading payloads.
//! - Reads for status queries and operators: [`Store::event`], [`Store::record`],
//!   [`Store::history`], [`Store::list`] with a [`Cursor`], [`Store::count_by_status`],
//!   [`Store::ports`]; upkeep: [`Store::prune`], [`Store::redrive`],
//!   [`RedbStore::check_integrity`].
//!
//! A file carries a format name and [`SCHEMA_VERSION`]; records carry a version byte (see
//! `encoding.rs` for the format and why). A foreign, newer, truncated or corrupted file is
//! an [`OpenError`] saying so, and an undecodable record is a [`Corruption`] naming its
//! table, port and key: nothing is skipped silently.
//!
//! ## What is where
//!
//! | file | holds |
//! |---|---|
//! | `store.rs` | the [`Store`] trait, [`Applied`], [`History`], [`Page`], [`Cursor`] |
//! | `redb_store.rs` | [`RedbStore`]: the [`Store`] on redb |
//! | `open.rs` | [`RedbOptions`], opening and atomically creating files |
//! | `write.rs` | applying a batch, pruning (inside one write transaction) |
//! | `read.rs` | lookups that decode, walks of the status index |
//! | `tables.rs` | the tables and their key layout (the file format) |
//! | `encoding.rs` | the record encoding (postcard) |
//! | `schema.rs` | the meta table and the schema check on open |
//! | `check.rs` | the cross-table consistency check |
//! | `error.rs` | one error type per operation family |
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod check;
mod encoding;
mod error;
mod open;
mod read;
mod redb_store;
mod schema;
mod store;
mod tables;
mod write;

pub use error::{
    CheckError, CommitError, Corruption, KeyHex, Location, OpenError, PortError, ReadError, RedriveError, Rejection,
};
pub use open::RedbOptions;
pub use redb_store::{Integrity, RedbStore};
pub use schema::SCHEMA_VERSION;
pub use store::{Applied, Cursor, CursorError, History, Page, Store};
pub use tables::{MAX_PORT_LEN, validate_port};
