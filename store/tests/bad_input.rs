//! Files and paths that are not a healthy herald store: each gives a typed error that
//! says what is wrong, never a panic.

mod support;

use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use herald_core::{EventKey, OutcomeClass, Transition};
use herald_store::{CheckError, OpenError, ReadError, RedbStore, SCHEMA_VERSION, Store};
use redb::{ReadableDatabase, TableDefinition};
use support::{accepted, at, event, event_sized, finished, started};

const META: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("herald_meta");
const DELIVERIES: TableDefinition<'static, &[u8], &[u8]> = TableDefinition::new("herald_deliveries");
const EVENTS: TableDefinition<'static, &[u8], &[u8]> = TableDefinition::new("herald_events");

/// A store file with a few deliveries in several states, closed.
fn populated(dir: &Path) -> PathBuf {
    let path = dir.join("herald.redb");
    let store = RedbStore::open(&path).unwrap();
    for i in 0..40u64 {
        let e = event_sized(&format!("evt-{i}"), 0, 200 + 50 * i as usize);
        store.commit(&[("orders", accepted(&e, at(i)))]).unwrap();
        if i % 3 == 0 {
            store
                .commit(&[
                    ("orders", started(e.key(), 1, at(100 + i))),
                    (
                        "orders",
                        finished(e.key(), 1, at(200 + i), OutcomeClass::Delivered, Transition::Delivered),
                    ),
                ])
                .unwrap();
        }
    }
    path
}

fn open_err(path: &Path) -> OpenError {
    match RedbStore::open(path) {
        Ok(_) => panic!("{} opened", path.display()),
        Err(e) => e,
    }
}

#[test]
fn a_file_that_is_not_a_redb_database_is_refused_as_such() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        ("notes.txt", b"just some notes\n".to_vec()),
        ("noise.bin", (0..20_000u32).map(|i| (i * 7919 % 251) as u8).collect()),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let err = open_err(&path);
        assert!(matches!(err, OpenError::NotRedb { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(name) && msg.contains("not a redb database"), "{msg}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "the file is left alone");
    }
}

#[test]
fn a_redb_database_of_another_program_is_refused_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.redb");
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(TableDefinition::<u64, u64>::new("users"))
            .unwrap()
            .insert(1, 2)
            .unwrap();
        txn.commit().unwrap();
    }
    let err = open_err(&path);
    assert!(matches!(err, OpenError::NotHerald { .. }), "{err:?}");
    assert!(err.to_string().contains("\"users\""), "{err}");

    // A meta table with another format name is refused too.
    let path = dir.path().join("meta.redb");
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("format", b"other".as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let err = open_err(&path);
    assert!(err.to_string().contains("its format is \"other\""), "{err}");
}

fn set_schema_version(path: &Path, version: u32) {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(META)
        .unwrap()
        .insert("schema_version", version.to_be_bytes().as_slice())
        .unwrap();
    txn.commit().unwrap();
}

#[test]
fn a_newer_or_older_schema_version_is_refused_naming_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    let path = populated(dir.path());

    set_schema_version(&path, SCHEMA_VERSION + 1);
    let err = open_err(&path);
    assert!(
        matches!(err, OpenError::NewerSchema { found, supported, .. } if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("schema version 2; this build of herald-store reads version 1"),
        "{err}"
    );

    set_schema_version(&path, 0);
    let err = open_err(&path);
    assert!(matches!(err, OpenError::OlderSchema { found: 0, .. }), "{err:?}");

    set_schema_version(&path, SCHEMA_VERSION);
    let store = RedbStore::open(&path).unwrap();
    assert_eq!(store.count_by_status("orders").unwrap().values().sum::<u64>(), 40);
}

#[test]
fn a_truncated_file_is_refused_as_corrupted() {
    let dir = tempfile::tempdir().unwrap();
    let path = populated(dir.path());
    let full = std::fs::read(&path).unwrap();
    for len in [
        1,
        9,
        100,
        512,
        4096,
        full.len() / 3,
        full.len() / 2,
        full.len() - 4096,
        full.len() - 1,
    ] {
        std::fs::write(&path, &full[..len]).unwrap();
        let err = open_err(&path);
        assert!(
            matches!(err, OpenError::Corrupted { .. } | OpenError::NotRedb { .. }),
            "truncated to {len} of {}: {err:?}",
            full.len()
        );
        assert!(err.to_string().contains("herald.redb"), "{err}");
    }
}

#[test]
fn damaged_bytes_anywhere_in_the_file_are_an_error_or_harmless_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = populated(dir.path());
    let full = std::fs::read(&path).unwrap();
    let mut corrupted = 0;
    let step = (full.len() / 150).max(1);
    for offset in (0..full.len()).step_by(step) {
        let mut bytes = full.clone();
        bytes[offset] ^= 0x5a;
        std::fs::write(&path, &bytes).unwrap();
        match RedbStore::open(&path) {
            Err(OpenError::Corrupted { detail, .. }) => {
                assert!(!detail.is_empty());
                corrupted += 1;
            }
            Err(OpenError::NotRedb { .. }) => assert!(offset < 9, "magic number at {offset}"),
            Err(other) => panic!("damage at {offset}: unexpected {other:?}"),
            // The byte was unused, or redb rolled back to the previous intact commit.
            Ok(mut store) => {
                store.check_integrity().unwrap();
                let mut n = 0;
                store.for_each_unfinished("orders", &mut |_| n += 1).unwrap();
                assert!(n <= 40);
            }
        }
    }
    assert!(corrupted > 0, "no damage was detected at all");
}

#[test]
fn an_unwritable_directory_is_an_io_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    // Privileged users (root in a container) write anywhere that permissions guard; sysfs
    // refuses new files even to them.
    let probe = locked.join("probe");
    let parent = if std::fs::write(&probe, b"").is_ok() {
        PathBuf::from("/sys")
    } else {
        locked.clone()
    };
    let path = parent.join("herald.redb");
    let err = open_err(&path);
    match &err {
        OpenError::Io { source, .. } => assert_eq!(source.kind(), ErrorKind::PermissionDenied, "{err}"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_missing_directory_or_a_directory_in_place_of_the_file_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = open_err(&dir.path().join("missing").join("herald.redb"));
    assert!(
        matches!(&err, OpenError::Io { source, .. } if source.kind() == ErrorKind::NotFound),
        "{err:?}"
    );
    let err = open_err(dir.path());
    assert!(matches!(&err, OpenError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("directory"), "{err}");
}

#[test]
fn a_file_open_in_another_handle_is_refused_as_already_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.redb");
    let _first = RedbStore::open(&path).unwrap();
    let err = open_err(&path);
    assert!(matches!(err, OpenError::AlreadyOpen { .. }), "{err:?}");
    assert!(err.to_string().contains("already open"), "{err}");
}

/// Overwrites, behind the store's back, the value of every entry of `table` whose key
/// ends with `key`'s bytes (its delivery's, event's or status entry's).
fn scribble(path: &Path, table: TableDefinition<'static, &[u8], &[u8]>, key: EventKey, garbage: &[u8]) {
    let db = redb::Database::open(path).unwrap();
    let keys: Vec<Vec<u8>> = {
        let txn = db.begin_read().unwrap();
        let t = txn.open_table(table).unwrap();
        redb::ReadableTable::iter(&t)
            .unwrap()
            .map(|e| e.unwrap().0.value().to_vec())
            .filter(|k| k.ends_with(&key.0))
            .collect()
    };
    assert_eq!(keys.len(), 1);
    let txn = db.begin_write().unwrap();
    txn.open_table(table)
        .unwrap()
        .insert(keys[0].as_slice(), garbage)
        .unwrap();
    txn.commit().unwrap();
}

#[test]
fn an_undecodable_record_is_reported_with_its_table_port_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.redb");
    let (bad_record, bad_event) = (event("evt-1"), event("evt-2"));
    RedbStore::open(&path)
        .unwrap()
        .commit(&[
            ("orders", accepted(&bad_record, at(0))),
            ("orders", accepted(&bad_event, at(0))),
        ])
        .unwrap();
    scribble(&path, DELIVERIES, bad_record.key(), &[1, 0xff, 0xff]);
    scribble(&path, EVENTS, bad_event.key(), &[9]);

    let mut store = RedbStore::open(&path).unwrap();
    let err = store.record("orders", bad_record.key()).unwrap_err();
    let ReadError::Corrupt(c) = &err else { panic!("{err:?}") };
    assert_eq!(c.table, "herald_deliveries");
    let msg = err.to_string();
    let key_hex: String = bad_record.key().0.iter().map(|b| format!("{b:02x}")).collect();
    assert!(
        msg.contains("herald_deliveries") && msg.contains("\"orders\"") && msg.contains(&key_hex),
        "{msg}"
    );

    let err = store.for_each_unfinished("orders", &mut |_| {}).unwrap_err();
    assert!(matches!(err, ReadError::Corrupt(_)), "{err:?}");
    let err = store.event("orders", bad_event.key()).unwrap_err();
    assert!(
        err.to_string().contains("herald_events") && err.to_string().contains("record version 9"),
        "{err}"
    );
    assert!(
        store.record("orders", bad_event.key()).unwrap().is_some(),
        "its record is fine"
    );
    let err = store
        .commit(&[("orders", started(bad_record.key(), 1, at(1)))])
        .unwrap_err();
    assert!(err.to_string().contains("nothing was written"), "{err}");

    let err = store.check_integrity().unwrap_err();
    let CheckError::Inconsistent { problems } = &err else {
        panic!("{err:?}")
    };
    assert!(
        problems.iter().any(|p| p.starts_with("herald_deliveries")),
        "{problems:?}"
    );
    assert!(problems.iter().any(|p| p.starts_with("herald_events")), "{problems:?}");
}
