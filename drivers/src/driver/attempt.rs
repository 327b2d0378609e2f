//! Starting attempts: each gets its event (at hand if accepted in the same round, else
//! read with the round's other attempts in one read transaction), runs as a task of the
//! runtime within a running slot of its port, under its deadline, and reports back to the
//! loop, which feeds the report to the engine in its next round.

use std::collections::HashMap;

use futures_lite::future;
use herald_core::{Attempt, AttemptReport, EventKey, ExternalEvent, NetworkError, Observation};

use super::command::Finished;
use super::event_loop::Driver;
use crate::runtime::Runtime;
use crate::transport::AttemptRequest;

impl<R: Runtime> Driver<R> {
    /// The event of each attempt to start: at hand if accepted in this round, else read
    /// from the store (the engine holds keys and times, not payloads), all in one call.
    pub(super) async fn attempt_events(
        &self,
        attempts: &[(usize, Attempt)],
        mut fresh: HashMap<(usize, EventKey), ExternalEvent>,
    ) -> Vec<Result<Option<ExternalEvent>, String>> {
        let mut events = Vec::with_capacity(attempts.len());
        let mut missing = Vec::new();
        for (i, (port, a)) in attempts.iter().enumerate() {
            match fresh.remove(&(*port, a.key)) {
                Some(event) => events.push(Ok(Some(event))),
                None => {
                    events.push(Ok(None));
                    missing.push((i, *port, a.key));
                }
            }
        }
        if !missing.is_empty() {
            let read = self
                .store_call(move |store, names| {
                    let keys: Vec<(&str, EventKey)> =
                        missing.iter().map(|&(_, port, key)| (&*names[port], key)).collect();
                    let read = store.events(&keys);
                    missing.into_iter().map(|(i, _, _)| i).zip(read).collect::<Vec<_>>()
                })
                .await;
            for (i, event) in read {
                events[i] = event.map_err(|e| e.to_string());
            }
        }
        events
    }

    pub(super) fn start_attempt(
        &mut self,
        port: usize,
        attempt: Attempt,
        event: Result<Option<ExternalEvent>, String>,
    ) {
        self.attempts_running += 1;
        let p = &self.ports[port];
        let transport = p.transport.clone();
        let running = p.running.clone();
        let runtime = self.runtime.clone();
        let clock = self.clock.clone();
        let done = self.finished_tx.clone();
        let cancel = self.cancel.1.clone();
        self.runtime.spawn(async move {
            let started = runtime.now();
            let work = async {
                match event {
                    Ok(Some(event)) => {
                        let _slot = running.acquire_arc().await;
                        let now = clock.now();
                        let request = AttemptRequest {
                            event: &event,
                            attempt: attempt.attempt,
                            now,
                            timeout: clock.until(attempt.deadline),
                        };
                        transport.attempt(request).await
                    }
                    Ok(None) => AttemptReport::new(Observation::Refused {
                        retryable: false,
                        reason: "event_missing".into(),
                    })
                    .with_detail("the event is not in the store"),
                    Err(e) => AttemptReport::new(Observation::Network(NetworkError::Other))
                        .with_detail(format!("reading the event from the store failed: {e}")),
                }
            };
            let timeout = async {
                runtime.sleep(clock.until(attempt.deadline)).await;
                AttemptReport::new(Observation::TimedOut)
            };
            let cancelled = async {
                let _ = cancel.recv().await;
                AttemptReport::new(Observation::TimedOut).with_detail("cancelled at shutdown")
            };
            let mut report = future::or(work, future::or(timeout, cancelled)).await;
            report.duration = runtime.now().saturating_duration_since(started);
            let _ = done
                .send(Finished {
                    port,
                    key: attempt.key,
                    attempt: attempt.attempt,
                    report,
                })
                .await;
        });
    }
}
