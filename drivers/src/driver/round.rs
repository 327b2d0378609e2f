//! One round of the driver loop, after the inputs are taken: read the records the engines
//! need, feed the engines and drain them, commit the batch (group commit: one
//! transaction, one fsync, for every change of every port), then answer the callers,
//! publish the status changes and start the attempts. A failed commit's outcome is
//! unknown: its callers are told so (re-sending is safe) and the engines are restored
//! from the store.

use std::collections::HashMap;

use futures_lite::future;
use herald_core::{Attempt, Change, DeliveryRecord, EventKey, ExternalEvent, Input, InputError, Output, SendError};
use herald_store::{Applied, CommitError};
use tracing::{debug, warn};

use super::command::{Command, Finished, Reply, answer};
use super::event_loop::Driver;
use crate::error::RedriveError;
use crate::runtime::Runtime;

/// A round's changes, in the order the engines drained them.
pub(super) type Batch = Vec<(usize, Change)>;

/// A round's commit.
pub(super) type Commit = herald_core::BoxFuture<'static, Result<Vec<Applied>, CommitError>>;

/// What waits for a round's commit.
#[derive(Default)]
pub(super) struct Round {
    /// Port, key and "is an attempt start" of each change of the batch, in order.
    kinds: Vec<(usize, EventKey, bool)>,
    pending: Vec<Pending>,
    waits: Vec<Command>,
    attempts: Vec<(usize, Attempt)>,
    /// Events accepted in this round: their attempts need not read them back.
    fresh: HashMap<(usize, EventKey), ExternalEvent>,
}

/// An answer that waits for the round's commit.
enum Pending {
    Send {
        port: usize,
        key: EventKey,
        reply: Reply<Result<herald_core::IntegrationResult, SendError>>,
    },
    Redrive {
        port: usize,
        key: EventKey,
        reply: Reply<Result<herald_core::IntegrationResult, RedriveError>>,
    },
}

impl<R: Runtime> Driver<R> {
    /// Feeds a round's inputs to the engines and drains them: the changes to commit, and
    /// what waits for that commit. `None` when there is nothing to commit or answer.
    pub(super) async fn prepare(&mut self, commands: Vec<Command>, finished: Vec<Finished>) -> Option<(Round, Batch)> {
        let now = self.clock.now();
        for f in finished {
            self.attempts_running -= 1;
            let p = &mut self.ports[f.port];
            let ack = p.engine.handle_input(
                Input::Report {
                    key: f.key,
                    attempt: f.attempt,
                    report: f.report,
                },
                now,
            );
            debug!(port = %p.name, attempt = f.attempt, ?ack, "attempt reported");
        }
        // Records the engine needs: priors of sends (re-sends of finished deliveries) and
        // of redrives, in one read transaction after the previous round's commit.
        let keys: Vec<(usize, EventKey)> = commands
            .iter()
            .filter_map(|c| match c {
                Command::Send { port, event, .. } => Some((*port, event.key())),
                Command::Redrive { port, key, .. } => Some((*port, *key)),
                _ => None,
            })
            .collect();
        let priors = self.read_records(keys).await;
        self.feed(commands, &priors, now)
    }

    /// Feeds commands (with the records read for them), lets time pass, and drains every
    /// engine: persists into one batch, attempts to start after it.
    fn feed(
        &mut self,
        commands: Vec<Command>,
        priors: &HashMap<(usize, EventKey), Result<Option<DeliveryRecord>, String>>,
        now: herald_core::Timestamp,
    ) -> Option<(Round, Batch)> {
        let mut round = Round::default();
        for c in commands {
            match c {
                Command::Send { port, event, reply } => {
                    let key = event.key();
                    // A record that cannot be read refuses its send alone.
                    let prior = match priors.get(&(port, key)).cloned().transpose() {
                        Ok(prior) => prior.flatten(),
                        Err(e) => {
                            warn!(port = %self.ports[port].name, event_id = %event.id(), error = %e, "reading the stored record failed; send refused");
                            answer(reply, Err(SendError::Unrecorded(e)));
                            continue;
                        }
                    };
                    let p = &mut self.ports[port];
                    let id = event.id().clone();
                    match p.engine.handle_input(Input::Send { event, prior }, now) {
                        Ok(ack) => {
                            debug!(port = %p.name, event_id = %id, ?ack, "send");
                            round.pending.push(Pending::Send { port, key, reply });
                        }
                        Err(e) => {
                            debug!(port = %p.name, event_id = %id, error = %e, "send refused");
                            answer(reply, Err(SendError::Rejected(e)));
                        }
                    }
                }
                Command::Redrive { port, key, reply } => {
                    let record = match priors.get(&(port, key)).cloned().transpose() {
                        Ok(Some(Some(record))) => record,
                        Ok(_) => {
                            answer(reply, Err(RedriveError::NotFound(format!("{key:?}"))));
                            continue;
                        }
                        Err(e) => {
                            answer(reply, Err(RedriveError::Store(e)));
                            continue;
                        }
                    };
                    let id = record.id.to_string();
                    match self.ports[port].engine.handle_input(Input::Redrive { record }, now) {
                        Ok(_) => round.pending.push(Pending::Redrive { port, key, reply }),
                        Err(InputError::NotTerminal { status, .. }) => answer(
                            reply,
                            Err(RedriveError::Refused(InputError::NotTerminal {
                                id: herald_core::EventId::new(id).expect("stored ids are valid"),
                                status,
                            })),
                        ),
                        Err(e) => answer(reply, Err(RedriveError::Refused(e))),
                    }
                }
                // Registered after this round's commit: a delivery that ends in this round
                // is terminal in the store by then.
                wait @ Command::Wait { .. } => round.waits.push(wait),
                other => self.handle_plain(other),
            }
        }
        for p in &mut self.ports {
            if p.engine.poll_timeout().is_some_and(|t| t <= now) {
                p.engine.handle_timeout(now);
            }
        }
        self.cancel_after_grace();

        let mut batch: Batch = Vec::new();
        for (i, p) in self.ports.iter_mut().enumerate() {
            while let Some(out) = p.engine.poll_output() {
                match out {
                    Output::Persist(change) => {
                        if let Change::Accepted { event, .. } = &change {
                            round.fresh.insert((i, event.key()), event.clone());
                        }
                        round
                            .kinds
                            .push((i, change.key(), matches!(change, Change::AttemptStarted { .. })));
                        batch.push((i, change));
                    }
                    Output::Attempt(a) => round.attempts.push((i, a)),
                }
            }
        }
        let idle = batch.is_empty() && round.pending.is_empty() && round.waits.is_empty() && round.attempts.is_empty();
        (!idle).then_some((round, batch))
    }

    /// Commits a round's batch in one transaction (group commit: one fsync), right here.
    /// (Committing beside the loop while it prepared the next round was tried: on two busy
    /// cores the hand-offs cost more than the overlap gave, and batches got smaller.)
    pub(super) fn commit(&self, batch: Batch) -> Commit {
        if batch.is_empty() {
            return Box::pin(future::ready(Ok(Vec::new())));
        }
        self.store_call(move |store, names| {
            let refs: Vec<(&str, Change)> = batch.into_iter().map(|(i, c)| (&*names[i], c)).collect();
            store.commit(&refs)
        })
    }

    /// After a round's commit: publishes, answers, registers waits, starts the attempts.
    /// On a failed commit the engines are restored from the store.
    pub(super) async fn finish(&mut self, round: Round, committed: Result<Vec<Applied>, CommitError>) {
        let mut latest: HashMap<(usize, EventKey), DeliveryRecord> = HashMap::new();
        match committed {
            Ok(applied) => {
                if !applied.is_empty() {
                    debug!(changes = applied.len(), "committed");
                }
                for ((port, key, started), a) in round.kinds.into_iter().zip(applied) {
                    if !started && !a.existed {
                        self.publish(port, key, &a.record);
                    }
                    latest.insert((port, key), a.record);
                }
            }
            Err(e) => {
                let why = e.to_string();
                warn!(error = %why, "commit failed; its outcome is unknown, restoring from the store");
                self.fail(round.pending, &why);
                self.restore_engines().await;
                for wait in round.waits {
                    self.handle_plain(wait);
                }
                return;
            }
        }
        self.answer_pending(round.pending, latest).await;
        for wait in round.waits {
            self.handle_plain(wait);
        }
        let events = self.attempt_events(&round.attempts, round.fresh).await;
        for ((port, attempt), event) in round.attempts.into_iter().zip(events) {
            self.start_attempt(port, attempt, event);
        }
    }

    /// Answers sends and redrives whose outcome is unknown (re-sending is safe).
    fn fail(&self, pending: Vec<Pending>, why: &str) {
        for p in pending {
            match p {
                Pending::Send { reply, .. } => answer(reply, Err(SendError::Unrecorded(why.to_owned()))),
                Pending::Redrive { reply, .. } => answer(reply, Err(RedriveError::Unrecorded(why.to_owned()))),
            }
        }
    }

    async fn answer_pending(&mut self, pending: Vec<Pending>, latest: HashMap<(usize, EventKey), DeliveryRecord>) {
        if pending.is_empty() {
            return;
        }
        let missing: Vec<(usize, EventKey)> = pending
            .iter()
            .map(|p| match p {
                Pending::Send { port, key, .. } | Pending::Redrive { port, key, .. } => (*port, *key),
            })
            .filter(|k| !latest.contains_key(k))
            .collect();
        let read = self.read_records(missing).await;
        for p in pending {
            match p {
                Pending::Send { port, key, reply } => {
                    let record = latest
                        .get(&(port, key))
                        .cloned()
                        .or_else(|| read.get(&(port, key)).cloned().and_then(Result::ok).flatten());
                    let max = self.ports[port].config.policy.get_max_attempts();
                    match record {
                        Some(r) => answer(reply, Ok(r.to_result(max))),
                        None => answer(
                            reply,
                            Err(SendError::Unrecorded("record not found after commit".into())),
                        ),
                    }
                }
                Pending::Redrive { port, key, reply } => {
                    let max = self.ports[port].config.policy.get_max_attempts();
                    match latest.get(&(port, key)) {
                        Some(r) => answer(reply, Ok(r.to_result(max))),
                        None => answer(
                            reply,
                            Err(RedriveError::Unrecorded("record not found after commit".into())),
                        ),
                    }
                }
            }
        }
    }

    /// The stored records of `keys`, each read or failed on its own, in one read
    /// transaction.
    async fn read_records(
        &self,
        keys: Vec<(usize, EventKey)>,
    ) -> HashMap<(usize, EventKey), Result<Option<DeliveryRecord>, String>> {
        if keys.is_empty() {
            return HashMap::new();
        }
        self.store_call(move |store, names| {
            let named: Vec<(&str, EventKey)> = keys.iter().map(|&(port, key)| (&*names[port], key)).collect();
            let read = store.records(&named);
            keys.into_iter()
                .zip(read)
                .map(|(k, r)| (k, r.map_err(|e| e.to_string())))
                .collect()
        })
        .await
    }
}
