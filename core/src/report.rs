//! What a transport observed during one attempt, before any judgement is made.
//!
//! Transports report facts (a status code, an ack, a refused connection); the core's
//! [`Classifier`](crate::Classifier) decides what they mean. That keeps every decision
//! about retrying in one place and the same for every transport.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::retry_after::RetryAfter;

/// The facts of one finished attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptReport {
    /// What happened.
    pub observation: Observation,
    /// Human-readable detail (an error's text, a broker's reason); never a secret.
    pub detail: Option<String>,
    /// The start of the response, if there was one.
    pub response: Option<ResponseExcerpt>,
    /// Wall time the attempt took, as measured by the driver.
    pub duration: Duration,
}

impl AttemptReport {
    /// A report with no detail, response or duration; handy in tests and simulations.
    pub fn new(observation: Observation) -> Self {
        AttemptReport {
            observation,
            detail: None,
            response: None,
            duration: Duration::ZERO,
        }
    }

    /// Adds a detail message.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// The fact a transport observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    /// An HTTP response with this status.
    Http {
        /// The status code.
        status: u16,
        /// A parsed `Retry-After` header, if any was sent and valid.
        retry_after: Option<RetryAfter>,
    },
    /// A broker confirmed the message (`duplicate`: it already had it, which also counts).
    Acknowledged {
        /// The broker de-duplicated the message.
        duplicate: bool,
    },
    /// The destination refused the message for a reason the transport understands
    /// (no stream for a subject, an unroutable message, a negative ack).
    Refused {
        /// Whether trying again later can help (a nack can; "no such stream" cannot).
        retryable: bool,
        /// A short machine-readable reason, e.g. `no_stream`, `unroutable`, `nack`.
        reason: String,
    },
    /// No response: the connection failed or broke.
    Network(NetworkError),
    /// No answer within the attempt timeout.
    TimedOut,
}

/// Kinds of network failure; all are retryable by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkError {
    /// The connection could not be opened (refused, unreachable).
    Connect,
    /// Name resolution failed.
    Dns,
    /// The TLS handshake failed.
    Tls,
    /// The connection broke while sending or receiving.
    Reset,
    /// Any other IO failure.
    Other,
}

impl NetworkError {
    /// A stable short name used as the outcome code.
    pub fn code(self) -> &'static str {
        match self {
            NetworkError::Connect => "connect_error",
            NetworkError::Dns => "dns_error",
            NetworkError::Tls => "tls_error",
            NetworkError::Reset => "connection_reset",
            NetworkError::Other => "io_error",
        }
    }
}

/// The first bytes of a response, kept in the attempt history for diagnosis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseExcerpt {
    /// The status code (HTTP) or 0 where the protocol has none.
    pub status: u16,
    /// At most [`ResponseExcerpt::MAX_BODY`] bytes of the body.
    #[serde(with = "crate::serde_bytes::text")]
    pub body: Vec<u8>,
    /// Whether the body was longer than what is kept.
    pub truncated: bool,
}

impl ResponseExcerpt {
    /// How much of a response body is kept.
    pub const MAX_BODY: usize = 4096;

    /// Keeps at most [`Self::MAX_BODY`] bytes of `body`.
    pub fn new(status: u16, body: &[u8]) -> Self {
        let keep = body.len().min(Self::MAX_BODY);
        ResponseExcerpt {
            status,
            body: body[..keep].to_vec(),
            truncated: body.len() > keep,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_keeps_at_most_4_kib() {
        let body = vec![b'x'; 5000];
        let e = ResponseExcerpt::new(500, &body);
        assert_eq!(e.body.len(), 4096);
        assert!(e.truncated);
        assert!(!ResponseExcerpt::new(200, b"ok").truncated);
    }
}
