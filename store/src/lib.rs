//! # herald-store
//!
//! The durable record of every event, delivery state and attempt, for
//! [Herald](herald_core): the engine decides, the store remembers.
//!
//! - [`Store`] is the backend-independent, synchronous API (Herald's driver calls it from
//!   a thread of its own). [`RedbStore`] implements it on one [redb](https://docs.rs/redb) file that any
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
//! ```
//! use herald_core::{Change, ExternalEvent, Timestamp};
//! use herald_store::{RedbStore, Store};
//!
//! let store = RedbStore::in_memory()?; // RedbStore::open(path) for a file
//! let now = Timestamp::from_secs(1_700_000_000);
//! let event = ExternalEvent::builder("invoice.paid").payload(b"{}".to_vec()).occurred_at(now).build()?;
//! // The driver commits what the engine asked to persist, then acknowledges the sends.
//! let applied = store.commit(&[("billing", Change::Accepted { event: event.clone(), at: now })])?;
//! assert!(!applied[0].existed);
//!
//! // After a restart: stream the unfinished deliveries into `Engine::restore_record`.
//! let mut unfinished = Vec::new();
//! store.for_each_unfinished("billing", &mut |record| unfinished.push(record))?;
//! assert_eq!(unfinished.len(), 1);
//! // An attempt fetches the event by key; the engine holds only keys and times.
//! assert_eq!(store.event("billing", event.key())?, Some(event));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Durability: a commit returns after redb's `Immediate` commit (one fsync). If it fails,
//! its outcome is unknown ([`CommitError::OutcomeUnknown`]): reopen and restore. A new
//! file is created atomically, and opening verifies every page checksum by default
//! ([`RedbOptions::verify_on_open`]). The table layout, chosen so that a commit dirties
//! as few pages as possible, is described in `tables.rs`.
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
#[cfg(feature = "fault-injection")]
pub mod faults;
#[doc(hidden)]
pub mod fuzzing;
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
