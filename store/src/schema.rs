//! The meta table: what a file is (a herald store) and which schema it has, checked on
//! every open before anything else is read, so a foreign or newer file is refused with a
//! message instead of being misread.

use redb::{Database, ReadableDatabase, TableError};

use crate::error::OpenError;
use crate::tables::{ATTEMPTS, BY_STATUS, DELIVERIES, EVENTS, META};

/// The schema (table set, key layout, record versions) this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// The format name stored in every herald store.
pub(crate) const FORMAT_NAME: &str = "herald-store";
const FORMAT_KEY: &str = "format";
const SCHEMA_KEY: &str = "schema_version";

/// Checks the meta table of an opened database, or sets up an empty one.
pub(crate) fn check_or_initialize(db: &Database, name: &str) -> Result<(), OpenError> {
    let storage = |e: redb::Error| classify_storage(name, e);
    let read = db.begin_read().map_err(|e| storage(e.into()))?;
    let meta = match read.open_table(META) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => {
            let tables: Vec<String> = read
                .list_tables()
                .map_err(|e| storage(e.into()))?
                .map(|t| redb::TableHandle::name(&t).to_owned())
                .collect();
            drop(read);
            if tables.is_empty() {
                return initialize(db).map_err(storage);
            }
            return Err(OpenError::NotHerald {
                db: name.to_owned(),
                detail: format!("it has no {FORMAT_NAME} meta table; its tables are {tables:?}"),
            });
        }
        Err(TableError::TableTypeMismatch { .. }) => {
            return Err(OpenError::NotHerald {
                db: name.to_owned(),
                detail: "its meta table has other key or value types".to_owned(),
            });
        }
        Err(e) => return Err(storage(e.into())),
    };
    let get = |k: &str| -> Result<Option<Vec<u8>>, OpenError> {
        Ok(meta.get(k).map_err(|e| storage(e.into()))?.map(|v| v.value().to_vec()))
    };
    let format = get(FORMAT_KEY)?;
    if format.as_deref() != Some(FORMAT_NAME.as_bytes()) {
        return Err(OpenError::NotHerald {
            db: name.to_owned(),
            detail: match format {
                None => "its meta table has no format entry".to_owned(),
                Some(f) => format!("its format is {:?}", String::from_utf8_lossy(&f)),
            },
        });
    }
    let version = get(SCHEMA_KEY)?;
    let found = version
        .as_deref()
        .and_then(|v| <[u8; 4]>::try_from(v).ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| OpenError::Corrupted {
            db: name.to_owned(),
            detail: format!("the schema version entry of the meta table is {version:?}, not a 4-byte number"),
        })?;
    let supported = SCHEMA_VERSION;
    let db = name.to_owned();
    match found.cmp(&supported) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Greater => Err(OpenError::NewerSchema { db, found, supported }),
        std::cmp::Ordering::Less => Err(OpenError::OlderSchema { db, found, supported }),
    }
}

/// Creates every table and the meta entries, in one durable commit.
fn initialize(db: &Database) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(META)?;
        meta.insert(FORMAT_KEY, FORMAT_NAME.as_bytes())?;
        meta.insert(SCHEMA_KEY, SCHEMA_VERSION.to_be_bytes().as_slice())?;
        txn.open_table(EVENTS)?;
        txn.open_table(DELIVERIES)?;
        txn.open_table(ATTEMPTS)?;
        txn.open_table(BY_STATUS)?;
    }
    txn.commit()?;
    Ok(())
}

/// Maps a storage error met while opening to the most telling [`OpenError`].
pub(crate) fn classify_storage(name: &str, e: redb::Error) -> OpenError {
    let db = name.to_owned();
    match e {
        redb::Error::Corrupted(detail) => OpenError::Corrupted { db, detail },
        redb::Error::DatabaseAlreadyOpen => OpenError::AlreadyOpen { db },
        redb::Error::Io(source) if source.kind() == std::io::ErrorKind::InvalidData => OpenError::NotRedb {
            db,
            detail: source.to_string(),
        },
        redb::Error::Io(source) if source.kind() == std::io::ErrorKind::UnexpectedEof => OpenError::Corrupted {
            db,
            detail: format!("the file ends early (truncated?): {source}"),
        },
        redb::Error::Io(source) => OpenError::Io { db, source },
        redb::Error::TableTypeMismatch { table, .. } => OpenError::NotHerald {
            db,
            detail: format!("its table {table} has other key or value types"),
        },
        source => OpenError::Storage { db, source },
    }
}
