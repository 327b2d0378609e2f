//! What a caller can learn about a delivery: its status, the result of a send or query,
//! and the history of its attempts.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::classify::{AttemptOutcome, OutcomeClass};
use crate::id::EventId;
use crate::time::Timestamp;

/// Where a delivery stands. `Delivered`, `Failed` and `Exhausted` are terminal: they never
/// change again, except by an explicit redrive, which starts a new cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Accepted; no attempt has finished yet in this cycle.
    Pending,
    /// A retryable failure happened; another attempt is scheduled.
    Retrying,
    /// The destination has the event.
    Delivered,
    /// A non-retryable failure happened.
    Failed,
    /// The retry policy's limits were used up without success.
    Exhausted,
}

impl DeliveryStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [DeliveryStatus; 5] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Retrying,
        DeliveryStatus::Delivered,
        DeliveryStatus::Failed,
        DeliveryStatus::Exhausted,
    ];

    /// Whether the status is final (short of a redrive).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            DeliveryStatus::Delivered | DeliveryStatus::Failed | DeliveryStatus::Exhausted
        )
    }

    /// The lowercase name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Retrying => "retrying",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Exhausted => "exhausted",
        }
    }

    /// A stable one-byte code, used in store keys.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The status of a [`Self::code`].
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code)).copied()
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DeliveryStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownStatus(s.chars().take(32).collect()))
    }
}

/// A status name that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status {0:?}; expected pending, retrying, delivered, failed or exhausted")]
pub struct UnknownStatus(pub String);

/// Why the last attempt did not deliver (FR-015).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureDetail {
    /// The attempt it happened on.
    pub attempt: u32,
    /// Retryable or permanent.
    pub class: OutcomeClass,
    /// A stable short code, e.g. `http_503`.
    pub code: String,
    /// A sentence for a person.
    pub message: String,
    /// When the attempt ended.
    pub at: Timestamp,
}

/// The state of one delivery as a caller sees it: returned by `send` and by status
/// queries (FR-006, FR-011, FR-015).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrationResult {
    /// The event this is about.
    pub event_id: EventId,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made in the current cycle (the retry count is this minus one).
    pub attempts_made: u32,
    /// Attempts still allowed in the current cycle (0 once terminal).
    pub attempts_remaining: u32,
    /// When the next attempt is due, while one is scheduled.
    pub next_attempt_at: Option<Timestamp>,
    /// Why the last attempt failed, if it did.
    pub last_failure: Option<FailureDetail>,
    /// When the event was accepted.
    pub accepted_at: Timestamp,
    /// When it was delivered, once it was.
    pub delivered_at: Option<Timestamp>,
    /// How many times an operator redrove it (0 for the first cycle).
    pub cycle: u32,
    /// When this state was reached.
    pub updated_at: Timestamp,
}

/// One attempt in a delivery's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// Attempt number; it only grows, across cycles too.
    pub attempt: u32,
    /// The cycle it belongs to.
    pub cycle: u32,
    /// When it started.
    pub started_at: Timestamp,
    /// When its outcome was recorded.
    pub finished_at: Timestamp,
    /// What happened.
    pub outcome: AttemptOutcome,
}

/// A delivery's state and every attempt it made, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryHistory {
    /// The current state.
    pub result: IntegrationResult,
    /// Every attempt, oldest first.
    pub attempts: Vec<AttemptRecord>,
}
