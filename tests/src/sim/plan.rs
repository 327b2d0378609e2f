//! What one seed simulates: its policies, its fault mix ("swarm testing": each seed turns
//! each kind of fault on or off and picks its rates) and its schedule of actions.

use std::time::Duration;

use herald::RetryPolicy;
use herald::core::{Backoff, Jitter};

use super::rng::Rng;

/// How a port's destination answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// HTTP status codes, `Retry-After`.
    Http,
    /// A broker: acks, nacks, unroutable messages.
    Broker,
}

/// What happens to one attempt. Indices into [`Mix::weights`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FateKind {
    /// The receiver takes it and says so.
    Ok = 0,
    /// A retryable error (5xx, 408, 425; a nack).
    Retryable = 1,
    /// A permanent error (4xx, 3xx; unroutable).
    Permanent = 2,
    /// 429 or 503 with `Retry-After`.
    RetryAfter = 3,
    /// The connection fails before the request reaches the receiver.
    DropBefore = 4,
    /// The receiver takes it; the response is lost.
    LostAfter = 5,
    /// No answer, ever (the request may or may not have arrived).
    Hang = 6,
    /// An answer that comes after the attempt's deadline.
    Slow = 7,
}

/// Every fate, by index.
pub const FATES: [FateKind; 8] = [
    FateKind::Ok,
    FateKind::Retryable,
    FateKind::Permanent,
    FateKind::RetryAfter,
    FateKind::DropBefore,
    FateKind::LostAfter,
    FateKind::Hang,
    FateKind::Slow,
];

/// A port's fault mix.
#[derive(Clone, Debug)]
pub struct Mix {
    /// Relative weights of each [`FateKind`].
    pub weights: [u64; 8],
    /// One-way network latency, inclusive range in ms (below a quarter of the timeout).
    pub latency_ms: (u64, u64),
}

/// One port of the simulated application.
#[derive(Clone, Debug)]
pub struct PortPlan {
    /// Its name.
    pub name: String,
    /// Its retry policy.
    pub policy: RetryPolicy,
    /// Attempts running at once.
    pub max_in_flight: u32,
    /// The jitter seed.
    pub jitter_seed: u64,
    /// How the destination answers.
    pub flavor: Flavor,
    /// The faults of its destination.
    pub mix: Mix,
    /// The policy's `Retry-After` cap in ms (the policy has no getter for it).
    pub retry_after_cap_ms: u64,
}

impl PortPlan {
    /// The longest wait the policy can schedule between two attempts (jitter and
    /// `Retry-After` included).
    pub fn max_gap_ms(&self) -> u64 {
        let p = &self.policy;
        let longest = (1..=p.get_max_attempts().min(64))
            .map(|n| ms(p.base_delay(n)))
            .max()
            .unwrap_or(0);
        let decorrelated = match (p.get_jitter(), p.backoff()) {
            (Jitter::Decorrelated, Backoff::Exponential { cap, .. }) => ms(*cap),
            _ => 0,
        };
        longest.max(decorrelated).max(self.retry_after_cap_ms)
    }

    /// The attempt timeout in ms.
    pub fn timeout_ms(&self) -> u64 {
        ms(self.policy.get_attempt_timeout())
    }
}

/// Whole milliseconds of a duration.
pub fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Something the simulation does at a planned time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// The application sends event `id` with content `variant` (`big`: over the limit).
    Send {
        /// Port index.
        port: usize,
        /// Event number.
        id: u32,
        /// Content variant (a different variant conflicts).
        variant: u8,
    },
    /// The application asks for a delivery's status.
    Query {
        /// Port index.
        port: usize,
        /// Event number.
        id: u32,
    },
    /// The application waits for a delivery to end.
    Wait {
        /// Port index.
        port: usize,
        /// Event number.
        id: u32,
    },
    /// An operator redrives a delivery.
    Redrive {
        /// Port index.
        port: usize,
        /// Event number.
        id: u32,
    },
    /// The process dies (power loss).
    Crash,
    /// `Herald::shutdown(grace)`, then the process exits and restarts after `downtime_ms`.
    Shutdown {
        /// Grace period.
        grace_ms: u64,
        /// Time until the restart.
        downtime_ms: u64,
    },
    /// The disk fails after `after_ops` more writes; `powerloss`: the process dies with it.
    StoreFault {
        /// Mutating operations that still succeed.
        after_ops: u64,
        /// The power goes out at the failure (a crash mid-commit).
        powerloss: bool,
    },
    /// The process starts again (after a crash or a shutdown).
    Restart,
}

/// Which kinds of fault a seed turned on.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Crashes.
    pub crash: bool,
    /// Shutdowns with attempts in flight.
    pub shutdown: bool,
    /// Disk failures.
    pub store: bool,
    /// Wall-clock steps at restarts.
    pub clock: bool,
    /// Operator redrives (not a fault, but they start new cycles).
    pub redrive: bool,
}

/// Everything one seed does.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The seed.
    pub seed: u64,
    /// No fault of any kind: the receiver must see no duplicate.
    pub fault_free: bool,
    /// The kinds of fault turned on.
    pub faults: Faults,
    /// The ports.
    pub ports: Vec<PortPlan>,
    /// Latency of store work (inclusive range, ms).
    pub store_latency_ms: (u64, u64),
    /// Largest payload accepted.
    pub payload_limit: usize,
    /// When faults stop (simulated ms).
    pub fault_end_ms: u64,
    /// The planned actions, by time.
    pub actions: Vec<(u64, Action)>,
    /// Chance (percent) that the application re-sends an event whose send had an unknown
    /// outcome.
    pub resend_percent: u64,
    /// Largest wall-clock step at a restart, in ms.
    pub clock_step_ms: u64,
    /// Downtime after a crash: inclusive range in ms.
    pub downtime_ms: (u64, u64),
    /// Events the application sends (distinct ids).
    pub events: u32,
    /// Ready tasks are polled in a seeded random order (else first in, first out).
    pub shuffle: bool,
}

fn fast_policy(rng: &mut Rng) -> (RetryPolicy, u64) {
    let cap = rng.range(0, 10_000);
    // Now and then a schedule that retries at once (zero delays are valid).
    let hi = if rng.percent(20) { 2 } else { 3_000 };
    let schedule: Vec<Duration> = (0..rng.range(1, 4))
        .map(|_| Duration::from_millis(rng.range(0, hi)))
        .collect();
    let policy = RetryPolicy::fixed(schedule)
        .jitter(rng.pick(&[Jitter::None, Jitter::Full, Jitter::Equal]))
        .max_attempts(rng.range(1, 8) as u32)
        .attempt_timeout(Duration::from_millis(rng.range(100, 3_000)))
        .retry_after_cap(Duration::from_millis(cap))
        .retry_window(rng.percent(30).then(|| Duration::from_millis(rng.range(2_000, 60_000))));
    (policy, cap)
}

fn exponential_policy(rng: &mut Rng) -> (RetryPolicy, u64) {
    let cap_after = rng.range(0, 20_000);
    let base = rng.range(10, 1_000);
    let cap = rng.range(base, 30_000);
    let factor = 1.0 + 0.5 * rng.below(5) as f64;
    let policy = RetryPolicy::exponential(Duration::from_millis(base), factor, Duration::from_millis(cap))
        .jitter(rng.pick(&[Jitter::None, Jitter::Full, Jitter::Equal, Jitter::Decorrelated]))
        .max_attempts(rng.range(1, 10) as u32)
        .attempt_timeout(Duration::from_millis(rng.range(100, 5_000)))
        .retry_after_cap(Duration::from_millis(cap_after))
        .retry_window(
            rng.percent(30)
                .then(|| Duration::from_millis(rng.range(2_000, 120_000))),
        );
    (policy, cap_after)
}

/// The Svix schedule (hours long; `Retry-After` capped at an hour), sometimes with a window.
fn default_policy(rng: &mut Rng) -> (RetryPolicy, u64) {
    let p = RetryPolicy::default();
    let p = if rng.percent(25) {
        p.retry_window(Some(Duration::from_secs(rng.range(3_600, 20 * 3_600))))
    } else {
        p
    };
    (p, 3_600_000)
}

impl Plan {
    /// The plan of `seed` with `events` distinct events.
    pub fn new(seed: u64, events: u32) -> Self {
        let mut rng = Rng::new(seed);
        // One seed in eight has no fault at all: it must see no duplicate.
        let fault_free = seed.is_multiple_of(8);
        let on = |rng: &mut Rng| !fault_free && rng.percent(50);
        let faults = Faults {
            crash: on(&mut rng),
            shutdown: on(&mut rng),
            store: on(&mut rng),
            clock: on(&mut rng),
            redrive: rng.percent(30),
        };
        let kind = rng.weighted(&[4, 3, 1]).expect("weights");
        let port_count = if rng.percent(40) { 2 } else { 1 };
        let mut ports = Vec::new();
        for p in 0..port_count {
            let (policy, retry_after_cap_ms) = match kind {
                0 => fast_policy(&mut rng),
                1 => exponential_policy(&mut rng),
                _ => default_policy(&mut rng),
            };
            let timeout = ms(policy.get_attempt_timeout());
            let mut weights = [0u64; 8];
            weights[FateKind::Ok as usize] = rng.range(20, 60);
            for w in weights.iter_mut().skip(1) {
                if on(&mut rng) {
                    *w = rng.range(1, 15);
                }
            }
            // Permanent failures end deliveries early: keep them rare.
            weights[FateKind::Permanent as usize] = weights[FateKind::Permanent as usize].min(2);
            let hi = rng.range(1, (timeout / 4).max(1));
            ports.push(PortPlan {
                name: format!("port-{p}"),
                policy,
                max_in_flight: rng.range(1, 8) as u32,
                jitter_seed: rng.next_u64(),
                flavor: if rng.percent(70) { Flavor::Http } else { Flavor::Broker },
                mix: Mix {
                    weights,
                    latency_ms: (rng.range(0, hi / 2), hi),
                },
                retry_after_cap_ms,
            });
        }
        let max_gap = ports.iter().map(PortPlan::max_gap_ms).max().unwrap_or(0);
        let max_timeout = ports.iter().map(PortPlan::timeout_ms).max().unwrap_or(0);
        // Long enough for most of each schedule to play out under faults.
        let span = (max_gap.saturating_mul(3) + max_timeout * 4).clamp(5_000, 30 * 3_600_000);
        let send_span = span * 6 / 10;
        let store_latency_ms = match rng.below(3) {
            0 => (0, 0),
            1 => (0, rng.range(1, 5)),
            _ => (rng.range(0, 3), rng.range(3, 40)),
        };
        let mut plan = Plan {
            seed,
            fault_free,
            faults,
            ports,
            store_latency_ms,
            payload_limit: 2_048,
            fault_end_ms: span,
            actions: Vec::new(),
            resend_percent: rng.range(0, 100),
            clock_step_ms: if rng.percent(50) { 5_000 } else { 3 * 3_600_000 },
            downtime_ms: (0, (max_gap / 2).max(max_timeout)),
            events,
            shuffle: rng.percent(50),
        };
        plan.schedule(&mut rng, send_span, max_timeout);
        plan
    }

    fn schedule(&mut self, rng: &mut Rng, send_span: u64, max_timeout: u64) {
        let ports = self.ports.len() as u64;
        let mut sends = Vec::new();
        let bursty = rng.percent(50);
        let mut t = 0;
        for id in 0..self.events {
            t = if bursty && rng.percent(70) {
                t + rng.range(0, 20)
            } else {
                rng.range(0, send_span)
            };
            let port = rng.below(ports) as usize;
            sends.push((t.min(send_span), port, id));
            self.actions
                .push((t.min(send_span), Action::Send { port, id, variant: 0 }));
        }
        // A few events over the payload limit: refused at `send`, never attempted.
        for k in 0..(self.events / 16) {
            let at = rng.range(0, send_span);
            let port = rng.below(ports) as usize;
            self.actions.push((
                at,
                Action::Send {
                    port,
                    id: super::world::BIG_IDS + k,
                    variant: 9,
                },
            ));
        }
        // Re-sends of the same event (idempotent) and a few conflicting contents.
        for _ in 0..self.events / 5 {
            let (at, port, id) = sends[rng.below(sends.len() as u64) as usize];
            let variant = if rng.percent(25) { 1 } else { 0 };
            let later = at + rng.range(0, max_timeout * 4);
            self.actions.push((later, Action::Send { port, id, variant }));
        }
        let pick = |rng: &mut Rng| {
            let (at, port, id) = sends[rng.below(sends.len() as u64) as usize];
            (at, port, id)
        };
        for _ in 0..self.events / 3 {
            let (at, port, id) = pick(rng);
            self.actions
                .push((at + rng.range(0, send_span / 2), Action::Query { port, id }));
        }
        for _ in 0..self.events / 8 {
            let (at, port, id) = pick(rng);
            self.actions
                .push((at + rng.range(0, max_timeout), Action::Wait { port, id }));
        }
        if self.faults.redrive {
            for _ in 0..(self.events / 10).max(1) {
                let (at, port, id) = pick(rng);
                self.actions
                    .push((at + rng.range(0, send_span), Action::Redrive { port, id }));
            }
        }
        // Crashes: half near activity (attempts in flight), half anywhere.
        let near = |rng: &mut Rng, sends: &[(u64, usize, u32)]| {
            if rng.percent(50) {
                let (at, _, _) = sends[rng.below(sends.len() as u64) as usize];
                at + rng.range(0, max_timeout * 2)
            } else {
                rng.range(0, self.fault_end_ms)
            }
        };
        if self.faults.crash {
            for _ in 0..rng.range(1, 4) {
                let at = near(rng, &sends);
                self.actions.push((at, Action::Crash));
            }
        }
        if self.faults.shutdown {
            for _ in 0..rng.range(1, 2) {
                let at = near(rng, &sends);
                let grace_ms = rng.range(0, max_timeout * 2);
                let downtime_ms = rng.range(self.downtime_ms.0, self.downtime_ms.1);
                self.actions.push((at, Action::Shutdown { grace_ms, downtime_ms }));
            }
        }
        if self.faults.store {
            for _ in 0..rng.range(1, 3) {
                let at = near(rng, &sends);
                let after_ops = rng.range(0, 300);
                let powerloss = rng.percent(50);
                self.actions.push((at, Action::StoreFault { after_ops, powerloss }));
            }
        }
        let end = self.fault_end_ms;
        self.actions.retain(|(at, _)| *at < end);
        // Stable: equal times keep their planned order.
        self.actions.sort_by_key(|(at, _)| *at);
    }
}
