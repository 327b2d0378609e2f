//! The simulated transport and receiver.
//!
//! An attempt sleeps a one-way latency, reaches the receiver (which logs it, with the
//! bytes' hash), and its answer travels back. The arrival is a task of the *world*: a
//! request on the wire reaches the receiver even if the client gave up (timeout) or its
//! process died. The fate of each attempt is drawn from the port's fault mix: an answer,
//! a retryable or permanent error, 429/503 with `Retry-After`, a connection that fails
//! before the receiver, a response lost after it, no answer ever, or an answer after the
//! deadline.
//!
//! Checked here: invariant 2 (the attempt's start was durably committed before the
//! transport was called), each attempt number is sent once, invariant 7's "every attempt
//! ends by its deadline" (the transport's future is finished or dropped by then), and
//! the in-flight count invariant 9 reads after `shutdown`.

use std::time::Duration;

use herald::core::{AttemptReport, BoxFuture, NetworkError, Observation, RetryAfter, Timestamp};
use herald::transport::{AttemptRequest, Transport};

use super::executor::{ExecHandle, WORLD};
use super::plan::{FATES, FateKind, Flavor, Mix, ms};
use super::world::{Arrival, Call, World, WorldState, content_hash};

/// What the receiver answers to a request it got.
#[derive(Clone, Debug)]
enum Answer {
    Http {
        status: u16,
        retry_after: Option<RetryAfter>,
    },
    Ack,
    Nack,
    Unroutable,
}

impl Answer {
    fn accepted(&self) -> bool {
        matches!(self, Answer::Http { status: 200..=299, .. } | Answer::Ack)
    }

    fn observation(&self, duplicate: bool) -> Observation {
        match self {
            Answer::Http { status, retry_after } => Observation::Http {
                status: *status,
                retry_after: *retry_after,
            },
            Answer::Ack => Observation::Acknowledged { duplicate },
            Answer::Nack => Observation::Refused {
                retryable: true,
                reason: "nack".into(),
            },
            Answer::Unroutable => Observation::Refused {
                retryable: false,
                reason: "unroutable".into(),
            },
        }
    }
}

/// The outcome code the core gives an observation (to compare with the history).
fn code_of(o: &Observation) -> String {
    match o {
        Observation::Http { status, .. } => format!("http_{status}"),
        Observation::Acknowledged { .. } => "acknowledged".into(),
        Observation::Refused { reason, .. } => reason.clone(),
        Observation::Network(e) => e.code().into(),
        Observation::TimedOut => "timeout".into(),
    }
}

/// What happens to one attempt.
#[derive(Clone, Debug)]
enum Fate {
    /// Reaches the receiver after `out` ms; the answer comes back after `back` more.
    Answered { out: u64, back: u64, answer: Answer },
    /// The connection fails after `out` ms; nothing reaches the receiver.
    DropBefore { out: u64, error: NetworkError },
    /// Reaches the receiver; the response is lost (a reset after `back`).
    LostAfter { out: u64, back: u64, answer: Answer },
    /// Never answered; reaches the receiver after `out` ms if `reaches`.
    Hang { out: u64, reaches: bool },
}

/// A transport of one port in one incarnation.
#[derive(Debug)]
pub struct SimTransport {
    world: World,
    exec: ExecHandle,
    port: usize,
    incarnation: u32,
    flavor: Flavor,
    mix: Mix,
}

impl SimTransport {
    /// The transport of port `port` for incarnation `incarnation`.
    pub fn new(world: World, exec: ExecHandle, port: usize, incarnation: u32, flavor: Flavor, mix: Mix) -> Self {
        SimTransport {
            world,
            exec,
            port,
            incarnation,
            flavor,
            mix,
        }
    }

    fn answer(&self, w: &mut WorldState, kind: FateKind, timeout: u64) -> Answer {
        let now = super::world::WALL_ORIGIN_MS + w.now();
        let rng = &mut w.rng;
        match (self.flavor, kind) {
            (Flavor::Http, FateKind::Retryable) => Answer::Http {
                status: rng.pick(&[500, 502, 503, 504, 408, 425, 599]),
                retry_after: None,
            },
            (Flavor::Http, FateKind::Permanent) => Answer::Http {
                status: rng.pick(&[400, 404, 410, 301, 302, 422]),
                retry_after: None,
            },
            (Flavor::Http, FateKind::RetryAfter) => {
                let retry_after = match rng.below(3) {
                    0 => RetryAfter::Delay(Duration::from_secs(rng.range(0, 2 + timeout / 500))),
                    1 => RetryAfter::Delay(Duration::from_secs(rng.range(0, 7_200))),
                    // An HTTP date by the receiver's own clock, in the past or the future.
                    _ => {
                        let at = (now / 1000 + rng.range(0, 600)).saturating_sub(rng.range(0, 300));
                        RetryAfter::At(Timestamp::from_secs(at))
                    }
                };
                Answer::Http {
                    status: if rng.percent(70) { 429 } else { 503 },
                    retry_after: Some(retry_after),
                }
            }
            (Flavor::Http, _) => Answer::Http {
                status: rng.pick(&[200, 201, 202, 204]),
                retry_after: None,
            },
            (Flavor::Broker, FateKind::Retryable | FateKind::RetryAfter) => Answer::Nack,
            (Flavor::Broker, FateKind::Permanent) => Answer::Unroutable,
            (Flavor::Broker, _) => Answer::Ack,
        }
    }

    fn fate(&self, w: &mut WorldState, timeout: u64) -> Fate {
        let (lo, hi) = self.mix.latency_ms;
        if w.healed {
            let hi = hi.min(timeout / 4);
            let (out, back) = (w.rng.range(lo.min(hi), hi), w.rng.range(lo.min(hi), hi));
            let answer = self.answer(w, FateKind::Ok, timeout);
            return Fate::Answered { out, back, answer };
        }
        let kind = w.rng.weighted(&self.mix.weights).map_or(FateKind::Ok, |i| FATES[i]);
        let out = w.rng.range(lo, hi);
        let back = w.rng.range(lo, hi);
        match kind {
            FateKind::DropBefore => Fate::DropBefore {
                out,
                error: w
                    .rng
                    .pick(&[NetworkError::Connect, NetworkError::Reset, NetworkError::Dns]),
            },
            FateKind::LostAfter => {
                let k = if w.rng.percent(80) {
                    FateKind::Ok
                } else {
                    FateKind::Retryable
                };
                Fate::LostAfter {
                    out,
                    back,
                    answer: self.answer(w, k, timeout),
                }
            }
            FateKind::Hang => Fate::Hang {
                out,
                reaches: w.rng.percent(50),
            },
            FateKind::Slow => {
                // The answer comes after the deadline; the request itself may arrive
                // before or after it.
                let out = w.rng.range(0, timeout * 3 / 2);
                let back = timeout.saturating_sub(out) + w.rng.range(1, timeout);
                Fate::Answered {
                    out,
                    back,
                    answer: self.answer(w, FateKind::Ok, timeout),
                }
            }
            k => Fate::Answered {
                out,
                back,
                answer: self.answer(w, k, timeout),
            },
        }
    }
}

/// Counts an attempt in flight while its future lives, and checks that it ends (answers
/// or is dropped) by its deadline.
struct InFlight {
    world: World,
    incarnation: u32,
    port: usize,
    id: String,
    attempt: u32,
    deadline_ms: u64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut w = self.world.lock();
        if let Some(n) = w.in_flight.get_mut(&self.incarnation) {
            *n -= 1;
        }
        // Only the incarnation's own clock can tell; a dead incarnation's attempts are
        // dropped at the crash.
        if w.incarnation == self.incarnation && w.wall() > self.deadline_ms {
            let wall = w.wall();
            w.violation(format!(
                "invariant 7 (every attempt ends by its timeout): {} attempt {} on port {} still running at {} ms, {} ms after its deadline",
                self.id,
                self.attempt,
                self.port,
                wall,
                wall - self.deadline_ms
            ));
        }
    }
}

impl Transport for SimTransport {
    fn kind(&self) -> &'static str {
        "sim"
    }

    fn attempt<'a>(&'a self, request: AttemptRequest<'a>) -> BoxFuture<'a, AttemptReport> {
        let event = request.event;
        let id = event.id().as_str().to_owned();
        let key = event.key();
        let attempt = request.attempt;
        let content = content_hash(event);
        let timeout = ms(request.timeout);
        let deadline_ms = request.now.as_millis() + timeout;
        let (fate, guard) = {
            let mut w = self.world.lock();
            // Invariant 2: nothing is attempted before its start is durable.
            if !w.durable_starts.contains(&(self.port, key, attempt)) {
                w.violation(format!(
                    "invariant 2 (nothing attempted before it is durable): {id} attempt {attempt} on port {} reached the transport before its start was committed",
                    self.port
                ));
            }
            let now = w.now();
            let call = Call {
                incarnation: self.incarnation,
                at: now,
                answered: None,
                success: false,
            };
            if w.calls.insert((self.port, id.clone(), attempt), call).is_some() {
                w.violation(format!(
                    "attempt {attempt} of {id} on port {} was sent twice (attempt numbers only grow)",
                    self.port
                ));
            }
            *w.in_flight.entry(self.incarnation).or_default() += 1;
            let fate = self.fate(&mut w, timeout.max(1));
            w.trace(format!(
                "attempt p{} {id}#{attempt} inc{} timeout={timeout} {fate:?}",
                self.port, self.incarnation
            ));
            let guard = InFlight {
                world: self.world.clone(),
                incarnation: self.incarnation,
                port: self.port,
                id: id.clone(),
                attempt,
                deadline_ms,
            };
            (fate, guard)
        };
        // The request on the wire: a world task, so it arrives whatever the client does.
        let arrival = match &fate {
            Fate::Answered { out, answer, .. } | Fate::LostAfter { out, answer, .. } => Some((*out, answer.accepted())),
            Fate::Hang { out, reaches: true } => Some((*out, true)),
            _ => None,
        };
        if let Some((out, accepted)) = arrival {
            let (world, exec, port, id) = (self.world.clone(), self.exec.clone(), self.port, id.clone());
            self.exec.spawn(WORLD, async move {
                exec.sleep_ms(out).await;
                let mut w = world.lock();
                let now = w.now();
                w.trace(format!("arrival p{port} {id}#{attempt} accepted={accepted}"));
                w.arrivals.push(Arrival {
                    at: now,
                    port,
                    id,
                    attempt,
                    content,
                    accepted,
                });
            });
        }
        let (world, exec, port) = (self.world.clone(), self.exec.clone(), self.port);
        Box::pin(async move {
            let _guard = guard;
            let observation = match fate {
                Fate::Answered { out, back, answer } => {
                    exec.sleep_ms(out + back).await;
                    let duplicate = {
                        let w = world.lock();
                        w.arrivals
                            .iter()
                            .filter(|a| a.port == port && a.id == id && a.accepted)
                            .count()
                            > 1
                    };
                    answer.observation(duplicate)
                }
                Fate::DropBefore { out, error } => {
                    exec.sleep_ms(out).await;
                    Observation::Network(error)
                }
                Fate::LostAfter { out, back, .. } => {
                    exec.sleep_ms(out + back).await;
                    Observation::Network(NetworkError::Reset)
                }
                Fate::Hang { .. } => std::future::pending().await,
            };
            let mut w = world.lock();
            let code = code_of(&observation);
            w.trace(format!("answer p{port} {id}#{attempt} {code}"));
            let success = matches!(
                observation,
                Observation::Http { status: 200..=299, .. } | Observation::Acknowledged { .. }
            );
            if let Some(call) = w.calls.get_mut(&(port, id.clone(), attempt)) {
                call.answered = Some(code);
                call.success = success;
            }
            AttemptReport::new(observation)
        })
    }
}
