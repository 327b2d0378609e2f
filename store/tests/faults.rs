//! Fault injection through redb's `StorageBackend`: the disk fails after a random number
//! of writes, then the power goes out, leaving only what an fsync promised (plus any
//! subset of the writes after it). After a reboot the store must hold exactly the
//! batches whose commit returned `Ok`, plus, at most, the one whose commit failed: its
//! outcome was unknown, and reopening resolves it one way or the other, never half.

mod support;

use herald_core::{Change, Timestamp};
use herald_store::{CommitError, OpenError, RedbOptions, RedbStore, Store};
use support::backend_faults::FaultyBackend;
use support::{Intent, Model, assert_matches, at, changes_for};

/// splitmix64: a small deterministic generator, so a failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick(&mut self) -> u16 {
        (self.next() & 0xffff) as u16
    }
}

fn intents(rng: &mut Rng) -> Vec<Intent> {
    (0..1 + rng.below(12))
        .map(|_| match rng.below(14) {
            0..=3 => Intent::Accept {
                port: rng.below(3) as u8,
                id: rng.below(40) as u8,
                variant: 0,
            },
            4..=7 => Intent::Start { pick: rng.pick() },
            8..=11 => Intent::Finish {
                pick: rng.pick(),
                how: rng.below(256) as u8,
            },
            12 => Intent::Redrive { pick: rng.pick() },
            _ => Intent::Chaos { pick: rng.pick() },
        })
        .collect()
}

/// A write whose outcome is unknown until the reboot.
enum InDoubt {
    Batch(Vec<(&'static str, Change)>),
    Prune(Timestamp),
}

/// The model with the in-doubt write applied.
fn with_applied(model: &Model, doubt: &InDoubt) -> Model {
    let mut m = model.clone();
    match doubt {
        InDoubt::Batch(changes) => {
            m.apply(changes);
        }
        InDoubt::Prune(t) => {
            m.prune(*t);
        }
    }
    m
}

/// Whether the store's records equal the model's, for every key either model knows.
fn records_equal(store: &dyn Store, model: &Model, keys: &[(String, herald_core::EventKey)]) -> bool {
    keys.iter()
        .all(|(port, key)| store.record(port, *key).unwrap().as_ref() == model.record(port, *key))
}

fn options() -> RedbOptions {
    RedbOptions {
        cache_size: 4 << 20,
        verify_on_open: true,
    }
}

#[derive(Default, Debug)]
struct Tally {
    open_failed: u64,
    commit_outcome_unknown: u64,
    failed_before_commit: u64,
    in_doubt_applied: u64,
    in_doubt_lost: u64,
    committed_batches: u64,
}

fn run(seed: u64, rounds: u32) -> Tally {
    let mut rng = Rng(seed);
    let mut tally = Tally::default();
    // Set up on a healthy disk: through a backend, setting up is not crash-atomic (a file
    // path is, see `RedbStore::open_with`).
    let fresh = FaultyBackend::default();
    drop(RedbStore::open_with_backend(fresh.clone(), "new disk", &options()).unwrap());
    let mut disk = fresh.crash_image(|_| false);
    let mut model = Model::default();
    let mut now = 0u64;
    for round in 0..rounds {
        let ctx = format!("seed {seed}, round {round}");
        let backend = FaultyBackend::with_bytes(disk.clone());
        backend.fail_after(rng.below(160));
        let mut doubt: Option<InDoubt> = None;
        match RedbStore::open_with_backend(backend.clone(), "faulty disk", &options()) {
            Err(OpenError::Storage { .. } | OpenError::Io { .. } | OpenError::Corrupted { .. }) => {
                // The disk failed while redb recovered or set up the file: nothing of the
                // user's is in doubt.
                tally.open_failed += 1;
            }
            Err(other) => panic!("{ctx}: open failed oddly: {other:?}"),
            Ok(store) => {
                for _ in 0..40 {
                    now += 1_000;
                    if rng.below(10) == 0 {
                        let t = at(now.saturating_sub(rng.below(8_000)));
                        match store.prune(t) {
                            Ok(n) => assert_eq!(n, model.prune(t), "{ctx}"),
                            Err(CommitError::OutcomeUnknown { .. }) => {
                                tally.commit_outcome_unknown += 1;
                                doubt = Some(InDoubt::Prune(t));
                                break;
                            }
                            Err(CommitError::Storage { .. }) => {
                                tally.failed_before_commit += 1;
                                break;
                            }
                            Err(other) => panic!("{ctx}: prune failed oddly: {other:?}"),
                        }
                        continue;
                    }
                    let changes = changes_for(&model, &intents(&mut rng), at(now));
                    if changes.is_empty() {
                        continue;
                    }
                    match store.commit(&changes) {
                        Ok(_) => {
                            assert!(model.apply(&changes), "{ctx}: the store applied an invalid batch");
                            tally.committed_batches += 1;
                        }
                        Err(CommitError::Rejected { .. }) => {
                            assert!(!model.clone().apply(&changes), "{ctx}: a valid batch was refused");
                        }
                        Err(CommitError::OutcomeUnknown { .. }) => {
                            tally.commit_outcome_unknown += 1;
                            doubt = Some(InDoubt::Batch(changes));
                            break;
                        }
                        Err(CommitError::Storage { .. }) => {
                            tally.failed_before_commit += 1;
                            break;
                        }
                        Err(other) => panic!("{ctx}: commit failed oddly: {other:?}"),
                    }
                }
                drop(store);
            }
        }

        // Power loss: the durable bytes plus none, all or some of the writes after them.
        let image = match rng.below(3) {
            0 => backend.crash_image(|_| false),
            1 => backend.crash_image(|_| true),
            _ => {
                let mut keep = Rng(rng.next());
                backend.crash_image(|_| keep.below(2) == 0)
            }
        };
        let rebooted = FaultyBackend::with_bytes(image);
        let mut store = RedbStore::open_with_backend(rebooted.clone(), "rebooted disk", &options())
            .unwrap_or_else(|e| panic!("{ctx}: the crash image does not open: {e}"));
        if let Some(d) = &doubt {
            let applied = with_applied(&model, d);
            let keys: Vec<_> = model.entries.keys().chain(applied.entries.keys()).cloned().collect();
            if records_equal(&store, &applied, &keys) {
                model = applied;
                tally.in_doubt_applied += 1;
            } else {
                assert!(
                    records_equal(&store, &model, &keys),
                    "{ctx}: the store holds part of a failed commit"
                );
                tally.in_doubt_lost += 1;
            }
        }
        assert_matches(&store, &model);
        store.check_integrity().unwrap_or_else(|e| panic!("{ctx}: {e}"));
        drop(store);
        disk = rebooted.crash_image(|_| false);
    }
    tally
}

#[test]
fn after_io_failures_and_power_loss_the_store_holds_exactly_the_committed_batches() {
    // HERALD_FAULT_SEED replays one seed (or explores others) without the checks below
    // that the default seeds reach every scenario.
    let (seeds, default) = match std::env::var("HERALD_FAULT_SEED") {
        Ok(s) => (vec![s.parse().expect("HERALD_FAULT_SEED is a number")], false),
        Err(_) => (vec![1, 2, 3], true),
    };
    let mut total = Tally::default();
    for seed in seeds {
        let t = run(seed, 40);
        total.open_failed += t.open_failed;
        total.commit_outcome_unknown += t.commit_outcome_unknown;
        total.failed_before_commit += t.failed_before_commit;
        total.in_doubt_applied += t.in_doubt_applied;
        total.in_doubt_lost += t.in_doubt_lost;
        total.committed_batches += t.committed_batches;
    }
    eprintln!("{total:?}");
    if !default {
        return;
    }
    // The scenarios this test exists for did happen.
    assert!(total.committed_batches > 100, "{total:?}");
    assert!(total.commit_outcome_unknown > 10, "{total:?}");
    assert!(total.in_doubt_applied > 0 && total.in_doubt_lost > 0, "{total:?}");
    assert!(total.open_failed > 0, "{total:?}");
}
