//! Model-based test: random batches of changes and prunes against the store and a
//! `BTreeMap` reference model, reopening the file after every step; everything the
//! store's API can tell must match the model.

mod support;

use proptest::collection::vec;
use proptest::prelude::*;

use herald_store::{CommitError, RedbStore, Store};
use support::{Intent, Model, assert_matches, at, changes_for};

#[derive(Clone, Debug)]
enum Step {
    Batch(Vec<Intent>),
    /// Prune what ended more than this many milliseconds ago.
    Prune(u64),
}

fn intent() -> impl Strategy<Value = Intent> {
    prop_oneof![
        4 => (0u8..3, 0u8..12, prop::bool::weighted(0.1))
            .prop_map(|(port, id, conflict)| Intent::Accept { port, id, variant: u8::from(conflict) }),
        5 => any::<u16>().prop_map(|pick| Intent::Start { pick }),
        5 => (any::<u16>(), any::<u8>()).prop_map(|(pick, how)| Intent::Finish { pick, how }),
        1 => any::<u16>().prop_map(|pick| Intent::Redrive { pick }),
    ]
}

/// A batch, sometimes with one change that cannot apply, which must leave nothing of it.
fn batch() -> impl Strategy<Value = Vec<Intent>> {
    (
        vec(intent(), 1..10),
        prop::option::weighted(0.1, (any::<u16>(), any::<prop::sample::Index>())),
    )
        .prop_map(|(mut intents, chaos)| {
            if let Some((pick, at)) = chaos {
                intents.insert(at.index(intents.len() + 1), Intent::Chaos { pick });
            }
            intents
        })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => batch().prop_map(Step::Batch),
        1 => (0u64..6_000).prop_map(Step::Prune),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_store_matches_a_reference_model_across_reopens(steps in vec(step(), 1..20)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("herald.redb");
        let mut store = RedbStore::open(&path).unwrap();
        let mut model = Model::default();
        for (i, step) in steps.into_iter().enumerate() {
            let now = 1_000 * (i as u64 + 1);
            match step {
                Step::Batch(intents) => {
                    let changes = changes_for(&model, &intents, at(now));
                    if changes.is_empty() {
                        continue;
                    }
                    let before = model.clone();
                    let applies = model.apply(&changes);
                    match store.commit(&changes) {
                        Ok(applied) => {
                            prop_assert!(applies, "the store applied a batch the model refuses");
                            // Each result is the record right after its change.
                            let mut partial = before;
                            for ((port, change), a) in changes.iter().zip(&applied) {
                                partial.apply(&[(port, change.clone())]);
                                prop_assert_eq!(Some(&a.record), partial.record(port, change.key()));
                            }
                        }
                        Err(CommitError::Rejected { .. }) => prop_assert!(!applies, "the store refused a valid batch"),
                        Err(other) => prop_assert!(false, "commit failed: {}", other),
                    }
                }
                Step::Prune(ago) => {
                    let t = at(now.saturating_sub(ago));
                    prop_assert_eq!(store.prune(t).unwrap(), model.prune(t));
                }
            }
            drop(store);
            store = RedbStore::open(&path).unwrap();
            assert_matches(&store, &model);
        }
        let report = store.check_integrity().unwrap();
        prop_assert_eq!(report.deliveries, model.entries.len() as u64);
    }
}
