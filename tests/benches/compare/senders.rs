//! Concurrent senders, the same for every system: sender `s` of `S` sends events
//! `s, s + S, s + 2S, ...` one after the other, each awaiting its acknowledgement, and
//! notes how long each took and when it returned.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::stats::{Latency, Sample};

/// What one event's send did.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ack {
    pub(crate) event: usize,
    pub(crate) took: Duration,
    pub(crate) at: Instant,
}

/// Sender `s` of `senders`: sends its share of `n` events through `send`.
pub(crate) async fn share<F, Fut>(s: usize, senders: usize, n: usize, send: F) -> Result<Vec<Ack>, String>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut acks = Vec::with_capacity(n / senders + 1);
    for event in (s..n).step_by(senders) {
        let start = Instant::now();
        send(event).await?;
        let at = Instant::now();
        acks.push(Ack {
            event,
            took: at - start,
            at,
        });
    }
    Ok(acks)
}

/// All acknowledgements of a run and how long the run took.
#[derive(Debug)]
pub(crate) struct Sent {
    pub(crate) started: Instant,
    pub(crate) elapsed: Duration,
    pub(crate) acks: Vec<Ack>,
}

impl Sent {
    /// Events acknowledged per second, and time-to-acknowledge percentiles.
    pub(crate) fn accept_sample(&self) -> Sample {
        let mut took: Vec<Duration> = self.acks.iter().map(|a| a.took).collect();
        Sample {
            rate: self.acks.len() as f64 / self.elapsed.as_secs_f64(),
            latency: Latency::of(&mut took),
        }
    }
}

/// Runs `senders` tokio tasks sending `n` events through `send`.
pub(crate) async fn tokio_senders<F, Fut>(senders: usize, n: usize, send: F) -> Result<Sent, String>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..senders)
        .map(|s| tokio::spawn(share(s, senders, n, send.clone())))
        .collect();
    let mut acks = Vec::with_capacity(n);
    for t in tasks {
        acks.extend(t.await.map_err(|e| e.to_string())??);
    }
    Ok(Sent {
        started,
        elapsed: started.elapsed(),
        acks,
    })
}
