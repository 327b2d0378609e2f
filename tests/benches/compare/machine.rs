//! Machine facts printed at the top of every run: cores, the file system the bench writes
//! to, and the fdatasync latency measured there at the start (the disk's durability limit
//! that every durable figure below depends on).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::stats::Latency;

/// What the run measured about the machine.
#[derive(Clone, Debug)]
pub(crate) struct Machine {
    pub(crate) cores: usize,
    pub(crate) fs_type: String,
    pub(crate) dir: PathBuf,
    /// fdatasync of a 4 KiB append, microseconds.
    pub(crate) fsync: Latency,
}

impl Machine {
    /// Probes the machine; the bench directory must be on a real disk.
    pub(crate) fn probe(dir: &Path) -> Result<Machine, String> {
        let fs_type = fs_type(dir);
        if matches!(fs_type.as_str(), "tmpfs" | "ramfs") {
            return Err(format!(
                "{} is on {fs_type}: durable figures would mean nothing there",
                dir.display()
            ));
        }
        Ok(Machine {
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            fs_type,
            dir: dir.to_path_buf(),
            fsync: fsync_latency(dir),
        })
    }

    /// One line for the report.
    pub(crate) fn describe(&self) -> String {
        format!(
            "{} cores; bench files in {} ({}); fdatasync 4 KiB p50 {:.0} µs, p99 {:.0} µs (~{:.0} syncs/s)",
            self.cores,
            self.dir.display(),
            self.fs_type,
            self.fsync.p50,
            self.fsync.p99,
            1e6 / self.fsync.p50
        )
    }
}

/// The file system type of the mount holding `dir`, from /proc/mounts (longest prefix).
fn fs_type(dir: &Path) -> String {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, at, ty) = (f.next()?, f.next()?, f.next()?);
            dir.starts_with(at).then(|| (at.len(), ty.to_owned()))
        })
        .max()
        .map_or_else(|| "unknown".to_owned(), |(_, ty)| ty)
}

/// fdatasync latency of 4 KiB appends, 300 of them after 20 of warm-up.
fn fsync_latency(dir: &Path) -> Latency {
    let path = dir.join("fsync.probe");
    let mut f = std::fs::File::create(&path).expect("fsync probe file");
    let block = [7u8; 4096];
    let mut samples: Vec<Duration> = (0..320)
        .map(|_| {
            let s = Instant::now();
            f.write_all(&block).expect("probe write");
            f.sync_data().expect("probe fdatasync");
            s.elapsed()
        })
        .skip(20)
        .collect();
    let _ = std::fs::remove_file(path);
    Latency::of(&mut samples)
}
