//! What the simulation observed, shared by the transports, the store wrapper, the
//! application tasks and the checks: the trace (hashed for invariant 10), the receiver's
//! log, every attempt the transports saw, every send and its answer, every status change
//! and query, and the invariant violations found on the way.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};

use herald::core::{DeliveryRecord, EventKey, ExternalEvent};
use herald::{DeliveryStatus, Timestamp};

use super::executor::{ExecHandle, wall_ms};
use super::rng::{Fnv, Rng};

/// The simulated wall clock's origin: 2023-11-14T22:13:20Z.
pub const WALL_ORIGIN_MS: u64 = 1_700_000_000_000;

/// A request that reached the receiver.
#[derive(Clone, Debug)]
pub struct Arrival {
    /// Simulated time (ms).
    pub at: u64,
    /// Port index.
    pub port: usize,
    /// Event id.
    pub id: String,
    /// Attempt number carried by the request.
    pub attempt: u32,
    /// Hash of the event's bytes (type, content type, payload, metadata, time).
    pub content: u64,
    /// The receiver took it (2xx, or a broker ack).
    pub accepted: bool,
}

/// One call of a transport's `attempt`.
#[derive(Clone, Debug)]
pub struct Call {
    /// The process incarnation that made it.
    pub incarnation: u32,
    /// Simulated time it started.
    pub at: u64,
    /// The outcome code the transport answered with (`http_503`, `connection_reset`,
    /// `acknowledged`, ...), once it answered.
    pub answered: Option<String>,
    /// The answer was a success (the receiver took it and the client heard so).
    pub success: bool,
}

/// How a send ended, from the application's side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// Acknowledged: durably accepted (or a re-send of an accepted event).
    Acked(DeliveryStatus),
    /// Refused for a conflicting content.
    Conflict,
    /// Refused as too large.
    TooLarge,
    /// Refused during shutdown.
    ShuttingDown,
    /// Any other refusal.
    Refused(String),
    /// Unknown outcome (`Unrecorded`, `Closed`, or the process died before an answer).
    Unknown(String),
}

/// One send.
#[derive(Clone, Debug)]
pub struct SendRecord {
    /// Simulated time of the send.
    pub at: u64,
    /// Port index.
    pub port: usize,
    /// Event number.
    pub id: u32,
    /// Content variant.
    pub variant: u8,
    /// The incarnation it was sent to.
    pub incarnation: u32,
    /// How it ended (`None` while waiting).
    pub outcome: Option<SendOutcome>,
    /// In the healed phase, where every send must be answered for good.
    pub healed: bool,
}

/// A durable state seen by the application (status hook or query).
#[derive(Clone, Debug)]
pub struct Seen {
    /// Simulated time.
    pub at: u64,
    /// Where it came from.
    pub source: &'static str,
    /// The redrive cycle.
    pub cycle: u32,
    /// The status.
    pub status: DeliveryStatus,
    /// Attempts made in the cycle.
    pub attempts: u32,
}

/// Everything shared, behind one lock.
#[derive(Debug)]
pub struct WorldState {
    /// The executor's clock.
    pub exec: ExecHandle,
    /// The randomness of transports and the application.
    pub rng: Rng,
    /// Trace lines (kept for failure reports) and their running hash.
    pub trace: Vec<String>,
    /// FNV-1a of every trace line.
    pub hash: Fnv,
    /// Invariant violations, in the order found.
    pub violations: Vec<String>,
    /// The incarnation running (0 while the process is down).
    pub incarnation: u32,
    /// Its wall-clock offset (ms).
    pub offset_ms: i64,
    /// Faults stopped.
    pub healed: bool,
    /// Requests that reached the receiver.
    pub arrivals: Vec<Arrival>,
    /// Transport calls by (port, event id, attempt).
    pub calls: BTreeMap<(usize, String, u32), Call>,
    /// Transport calls in flight by incarnation.
    pub in_flight: BTreeMap<u32, u32>,
    /// Attempt starts committed successfully, by (port, key, attempt).
    pub durable_starts: BTreeSet<(usize, EventKey, u32)>,
    /// Records as of the last successful commit that touched them.
    pub committed: BTreeMap<(usize, EventKey), DeliveryRecord>,
    /// Sends.
    pub sends: Vec<SendRecord>,
    /// Durable states seen, by (port, event id).
    pub seen: BTreeMap<(usize, String), Vec<Seen>>,
    /// Commits that failed (outcome unknown).
    pub failed_commits: u64,
    /// Commits that succeeded.
    pub commits: u64,
    /// Actions the application scheduled for itself (re-sends), as (time, port, id, variant).
    pub resends: Vec<(u64, usize, u32, u8)>,
    /// Chance of a re-send after an unknown outcome (percent).
    pub resend_percent: u64,
    /// Deliveries in the store at the end (set by the final checks).
    pub deliveries: u64,
    /// Duplicates the receiver took (set by the final checks).
    pub duplicates: u64,
    /// Attempts recorded as timed out / interrupted (set by the final checks).
    pub timeouts: u64,
    /// Attempts recorded as interrupted (set by the final checks).
    pub interrupted: u64,
    /// Redrives that started a new cycle.
    pub redrives: u64,
}

/// The shared world.
#[derive(Clone, Debug)]
pub struct World(Arc<Mutex<WorldState>>);

impl World {
    /// A world for one run.
    pub fn new(exec: ExecHandle, rng: Rng, resend_percent: u64) -> Self {
        World(Arc::new(Mutex::new(WorldState {
            exec,
            rng,
            trace: Vec::new(),
            hash: Fnv::default(),
            violations: Vec::new(),
            incarnation: 0,
            offset_ms: 0,
            healed: false,
            arrivals: Vec::new(),
            calls: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            durable_starts: BTreeSet::new(),
            committed: BTreeMap::new(),
            sends: Vec::new(),
            seen: BTreeMap::new(),
            failed_commits: 0,
            commits: 0,
            resends: Vec::new(),
            resend_percent,
            deliveries: 0,
            duplicates: 0,
            timeouts: 0,
            interrupted: 0,
            redrives: 0,
        })))
    }

    /// Locks the state (never held across an await or a call into Herald).
    pub fn lock(&self) -> MutexGuard<'_, WorldState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl WorldState {
    /// Simulated time in ms.
    pub fn now(&self) -> u64 {
        self.exec.now_ms()
    }

    /// The wall clock of the running incarnation, in ms since the epoch.
    pub fn wall(&self) -> u64 {
        wall_ms(WALL_ORIGIN_MS, self.now(), self.offset_ms)
    }

    /// Appends a line to the trace, stamped with simulated time.
    pub fn trace(&mut self, line: impl AsRef<str>) {
        let mut s = String::new();
        let _ = write!(s, "{:>10} {}", self.now(), line.as_ref());
        self.hash.write(s.as_bytes());
        self.hash.write(b"\n");
        self.trace.push(s);
    }

    /// Records a broken invariant (the run fails at its end, with the first one).
    pub fn violation(&mut self, what: impl Into<String>) {
        let what = what.into();
        self.trace(format!("VIOLATION {what}"));
        self.violations.push(what);
    }

    /// Records a durable state seen for a delivery, checking that states only move
    /// forward (invariant 3): the cycle never decreases; within a cycle, pending →
    /// retrying → terminal, attempts only grow, and a terminal state never changes.
    pub fn see(&mut self, port: usize, id: &str, seen: Seen) {
        let rank = |s: DeliveryStatus| match s {
            DeliveryStatus::Pending => 0,
            DeliveryStatus::Retrying => 1,
            _ => 2,
        };
        let line = format!(
            "seen {} p{port} {id} cycle={} {} attempts={}",
            seen.source, seen.cycle, seen.status, seen.attempts
        );
        self.trace(line);
        let list = self.seen.entry((port, id.to_owned())).or_default();
        let problem = list.last().and_then(|last| {
            let (a, b) = (last, &seen);
            if b.cycle < a.cycle {
                Some(format!("cycle went back from {} to {}", a.cycle, b.cycle))
            } else if b.cycle > a.cycle {
                None
            } else if a.status.is_terminal() && (b.status != a.status || b.attempts != a.attempts) {
                Some(format!(
                    "terminal {} (attempts {}) changed to {} (attempts {}) in cycle {}",
                    a.status, a.attempts, b.status, b.attempts, a.cycle
                ))
            } else if rank(b.status) < rank(a.status) {
                Some(format!("status went back from {} to {}", a.status, b.status))
            } else if b.attempts < a.attempts {
                Some(format!("attempts went back from {} to {}", a.attempts, b.attempts))
            } else {
                None
            }
        });
        let (source_a, at_a) = list.last().map_or(("", 0), |l| (l.source, l.at));
        list.push(seen);
        if let Some(p) = problem {
            self.violation(format!(
                "invariant 3 (status only moves forward): {id} on port {port}: {p} (seen by {source_a} at {at_a} ms, then now)"
            ));
        }
    }
}

/// A hash of an event's bytes as a receiver sees them (invariant 6 compares these).
pub fn content_hash(e: &ExternalEvent) -> u64 {
    let mut h = Fnv::default();
    h.write(e.id().as_str().as_bytes());
    h.write(&[0]);
    h.write(e.event_type().as_bytes());
    h.write(&[0]);
    h.write(e.content_type().as_bytes());
    h.write(&[0]);
    h.write(&(e.payload().len() as u64).to_le_bytes());
    h.write(e.payload());
    for (k, v) in e.metadata() {
        h.write(k.as_bytes());
        h.write(&[0]);
        h.write(v.as_bytes());
        h.write(&[0]);
    }
    h.write(&e.occurred_at().as_millis().to_le_bytes());
    h.0
}

/// The event the application sends as number `id`, content `variant`. Variant 9 is over
/// the payload limit.
pub fn app_event(id: u32, variant: u8, limit: usize) -> ExternalEvent {
    let name = event_name(id);
    let len = if variant == 9 {
        limit + 1 + (id as usize % 7)
    } else {
        (Fnv::of(format!("{id}/{variant}").as_bytes()) % 600) as usize
    };
    let mut payload = format!(r#"{{"id":"{name}","variant":{variant},"pad":""#).into_bytes();
    payload.resize(payload.len() + len, b'a' + (id % 26) as u8);
    payload.extend_from_slice(br#""}"#);
    ExternalEvent::builder("sim.event")
        .id(name)
        .payload(payload)
        .content_type("application/json")
        .occurred_at(Timestamp::from_millis(WALL_ORIGIN_MS))
        .metadata("variant", variant.to_string())
        .build()
        .expect("valid simulated event")
}

/// Event numbers from here on are over the payload limit (content variant 9).
pub const BIG_IDS: u32 = 1_000_000;

/// The id of event number `id`.
pub fn event_name(id: u32) -> String {
    format!("evt-{id}")
}
