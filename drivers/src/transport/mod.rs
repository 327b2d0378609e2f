//! Transports: how one attempt reaches one kind of destination. A transport moves bytes
//! and reports what it observed; it never decides about retries (the core does).

use std::time::Duration;

use herald_core::{AttemptReport, BoxFuture, ExternalEvent, Timestamp};

#[cfg(feature = "amqp")]
pub mod amqp;
#[cfg(feature = "api")]
pub mod api;
#[cfg(any(feature = "webhook", feature = "api"))]
mod http;
#[cfg(feature = "nats")]
pub mod nats;
#[cfg(any(feature = "api", feature = "amqp", feature = "nats"))]
mod secret;
#[cfg(any(feature = "api", feature = "amqp", feature = "nats"))]
mod template;
#[cfg(feature = "webhook")]
pub mod webhook;

#[cfg(any(feature = "webhook", feature = "api"))]
pub use http::ssrf::{AddressClass, ForbiddenDestination, forbidden_class};

/// One attempt to hand to a transport.
#[derive(Debug, Clone, Copy)]
pub struct AttemptRequest<'a> {
    /// The event; the same bytes on every attempt.
    pub event: &'a ExternalEvent,
    /// The attempt number (1 for the first).
    pub attempt: u32,
    /// The wall-clock time the attempt starts (e.g. for `webhook-timestamp`).
    pub now: Timestamp,
    /// Time left before the attempt's deadline. The driver enforces it too; a transport
    /// may use it to set its own client timeouts.
    pub timeout: Duration,
}

/// Delivers one attempt to one destination. Implementations must be cheap to call
/// concurrently (connection reuse inside) and must never log secrets.
pub trait Transport: Send + Sync + 'static {
    /// A short name for logs and errors, e.g. `webhook`.
    fn kind(&self) -> &'static str;

    /// Sends the event once and reports what was observed. Never panics on a bad answer:
    /// every outcome is a report. `duration` may be left zero; the driver measures it.
    fn attempt<'a>(&'a self, request: AttemptRequest<'a>) -> BoxFuture<'a, AttemptReport>;
}

/// The report of an attempt that cannot be made for this event (a value the destination
/// cannot carry); retrying would not help.
#[cfg(any(feature = "api", feature = "amqp", feature = "nats"))]
pub(crate) fn invalid_request(reason: String) -> AttemptReport {
    AttemptReport::new(herald_core::Observation::Refused {
        retryable: false,
        reason: "invalid_request".to_owned(),
    })
    .with_detail(reason)
}

/// The frame every transport's attempt runs in: measures it (the report's `duration`)
/// and logs its outcome.
#[cfg(any(feature = "webhook", feature = "api", feature = "amqp", feature = "nats"))]
pub(crate) async fn timed(kind: &str, attempt: impl std::future::Future<Output = AttemptReport>) -> AttemptReport {
    let started = std::time::Instant::now();
    let mut report = attempt.await;
    report.duration = started.elapsed();
    log_outcome(kind, &report);
    report
}

/// Logs one attempt's outcome at debug level: what was observed and how long it took; never
/// a header, credential or payload. `kind` is the transport (`webhook`, `api`, `amqp`, `nats`).
#[cfg(any(feature = "webhook", feature = "api", feature = "amqp", feature = "nats"))]
fn log_outcome(kind: &str, report: &AttemptReport) {
    use herald_core::Observation;
    let duration_ms = u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX);
    let detail = report.detail.as_deref().unwrap_or("");
    match &report.observation {
        Observation::Http { status, .. } => {
            tracing::debug!(kind, status, duration_ms, detail, "attempt answered");
        }
        Observation::Acknowledged { duplicate } => {
            tracing::debug!(kind, duplicate, duration_ms, "attempt acknowledged");
        }
        other => {
            let outcome = match other {
                Observation::TimedOut => "timeout",
                Observation::Network(kind) => kind.code(),
                Observation::Refused { reason, .. } => reason.as_str(),
                _ => "other",
            };
            tracing::debug!(kind, outcome, duration_ms, detail, "attempt got no answer");
        }
    }
}

/// The event the transports' unit tests send: `order.created`, id `evt_42`, a vendor JSON
/// content type, `{"order":42}`, occurred at 2023-11-14T22:13:20Z, metadata `tenant = acme`.
#[cfg(test)]
pub(crate) fn test_event() -> ExternalEvent {
    ExternalEvent::builder("order.created")
        .id("evt_42")
        .content_type("application/vnd.acme+json")
        .payload(br#"{"order":42}"#.to_vec())
        .occurred_at(Timestamp::from_secs(1_700_000_000))
        .metadata("tenant", "acme")
        .build()
        .expect("a valid test event")
}
