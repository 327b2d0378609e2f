//! Opening redb files: the builder settings, and creating a new store file atomically.

use std::path::{Path, PathBuf};

use redb::{Builder, Database, StorageBackend};

use crate::error::OpenError;
use crate::schema::{check_or_initialize, classify_storage};

/// How a [`crate::RedbStore`] opens its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedbOptions {
    /// Bytes of redb's page cache. Reads and a transaction's dirty pages live there; the
    /// store itself keeps no records in memory. Default 64 MiB (redb's own default is
    /// 1 GiB, more than a delivery service should hold for pages it rarely rereads).
    pub cache_size: usize,
    /// Verify every page checksum when the file is opened (redb's
    /// `set_check_integrity_on_open`). A file damaged outside redb then fails to open with
    /// [`OpenError::Corrupted`], where an unverified open may panic inside redb. Costs
    /// one read of the file per open. Default `true`.
    pub verify_on_open: bool,
}

impl Default for RedbOptions {
    fn default() -> Self {
        RedbOptions {
            cache_size: 64 << 20,
            verify_on_open: true,
        }
    }
}

fn builder(options: &RedbOptions) -> Builder {
    let mut b = Builder::new();
    b.set_cache_size(options.cache_size);
    b.set_check_integrity_on_open(options.verify_on_open);
    b
}

/// Opens (creating it if it is missing or empty) and checks the store file at `path`.
pub(crate) fn open_path(path: &Path, options: &RedbOptions, name: &str) -> Result<Database, OpenError> {
    let io = |source: std::io::Error| OpenError::Io {
        db: name.to_owned(),
        source,
    };
    if path.is_dir() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "the path is a directory",
        )));
    }
    // An empty file holds nothing; it is replaced like a missing one.
    let empty = path.metadata().is_ok_and(|m| m.len() == 0);
    if empty || !path.exists() {
        create_atomically(path, options, name, empty)?;
    }
    let db = builder(options)
        .open(path)
        .map_err(|e| classify_storage(name, e.into()))?;
    check_or_initialize(&db, name)?;
    Ok(db)
}

/// Opens (setting it up if it is empty) and checks a store on a backend.
pub(crate) fn open_backend(
    backend: impl StorageBackend,
    options: &RedbOptions,
    name: &str,
) -> Result<Database, OpenError> {
    let db = builder(options)
        .create_with_backend(backend)
        .map_err(|e| classify_storage(name, e.into()))?;
    check_or_initialize(&db, name)?;
    Ok(db)
}

/// Creates a new store file at `path`: set up under a temporary name in the same
/// directory, made durable, then hard-linked into place (which fails rather than replace
/// a file another process created meanwhile; an empty file is replaced) and the directory
/// synced. redb alone would leave a file it cannot open (no magic number yet) if the
/// process died while creating it.
fn create_atomically(path: &Path, options: &RedbOptions, name: &str, replace: bool) -> Result<(), OpenError> {
    let io = |source: std::io::Error| OpenError::Io {
        db: name.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!(".{file_name}.{}.{nanos}.creating", std::process::id()));
    let result = (|| {
        let db = builder(options)
            .create(&tmp)
            .map_err(|e| classify_storage(name, e.into()))?;
        check_or_initialize(&db, name)?;
        db.close().map_err(|e| classify_storage(name, e.into()))?;
        let linked = if replace {
            std::fs::rename(&tmp, path)
        } else {
            std::fs::hard_link(&tmp, path)
        };
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            // Some file systems have no hard links; a rename is atomic too, but replaces.
            Err(_) if !path.exists() => std::fs::rename(&tmp, path).map_err(io)?,
            Err(e) => return Err(io(e)),
        }
        std::fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(io)
    })();
    // Best effort: a leftover temporary file is harmless and clearly named.
    let _ = std::fs::remove_file(&tmp);
    result
}
