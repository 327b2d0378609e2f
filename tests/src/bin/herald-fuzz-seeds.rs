//! Writes the hand-made fuzz seeds of every target into `fuzz/corpus/<target>/seed-*`
//! (run after changing a target's input format; `fuzz_corpus` checks they are current).

use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    for t in herald_tests::fuzzing::TARGETS {
        let dir = root.join(t.name);
        std::fs::create_dir_all(&dir).expect("create the corpus directory");
        for (name, data) in (t.seeds)() {
            std::fs::write(dir.join(format!("seed-{name}")), data).expect("write a seed");
        }
        println!("{}: seeds written", t.name);
    }
}
