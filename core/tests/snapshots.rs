//! Pinned forms that users and stored data depend on: content-derived ids and the JSON of
//! results and histories. A change here is a breaking change.

use std::time::Duration;

use herald_core::{
    AttemptOutcome, AttemptRecord, DeliveryHistory, DeliveryStatus, EventId, ExternalEvent, FailureDetail,
    IntegrationResult, OutcomeClass, ResponseExcerpt, Timestamp,
};

const T0: Timestamp = Timestamp::from_millis(1_700_000_000_123);

#[test]
fn content_derived_ids_are_stable() {
    let events = [
        ExternalEvent::builder("order.created").payload(br#"{"order":42}"#.to_vec()),
        ExternalEvent::builder("order.created").payload(br#"{"order":43}"#.to_vec()),
        ExternalEvent::builder("order.created").payload(Vec::new()),
        ExternalEvent::builder("invoice.paid")
            .payload(b"<xml/>".to_vec())
            .content_type("application/xml")
            .metadata("tenant", "acme")
            .metadata("region", "eu"),
        ExternalEvent::builder("ping")
            .payload(vec![0, 255, 7])
            .content_type("application/octet-stream"),
    ];
    let ids: Vec<String> = events
        .into_iter()
        .map(|b| {
            let e = b.occurred_at(T0).build().unwrap();
            format!(
                "{} {} bytes -> {} (fingerprint {:016x})",
                e.event_type(),
                e.payload().len(),
                e.id(),
                e.fingerprint().0
            )
        })
        .collect();
    insta::assert_snapshot!(ids.join("\n"));
}

fn retrying_history() -> DeliveryHistory {
    let outcome = AttemptOutcome {
        class: OutcomeClass::Retryable,
        code: "http_503".into(),
        message: "HTTP 503 Service Unavailable".into(),
        retry_after: Some(T0.saturating_add(Duration::from_secs(30))),
        response: Some(ResponseExcerpt::new(503, b"try later")),
        duration_ms: 12,
    };
    DeliveryHistory {
        result: IntegrationResult {
            event_id: EventId::new("evt_1").unwrap(),
            status: DeliveryStatus::Retrying,
            attempts_made: 1,
            attempts_remaining: 7,
            next_attempt_at: Some(T0.saturating_add(Duration::from_secs(30))),
            last_failure: Some(FailureDetail {
                attempt: 1,
                class: OutcomeClass::Retryable,
                code: "http_503".into(),
                message: "HTTP 503 Service Unavailable".into(),
                at: T0,
            }),
            accepted_at: T0,
            delivered_at: None,
            cycle: 0,
            updated_at: T0,
        },
        attempts: vec![AttemptRecord {
            attempt: 1,
            cycle: 0,
            started_at: T0,
            finished_at: T0,
            outcome,
        }],
    }
}

#[test]
fn integration_result_json_is_stable() {
    insta::assert_json_snapshot!(retrying_history().result);
}

#[test]
fn delivery_history_json_is_stable_and_round_trips() {
    let h = retrying_history();
    insta::assert_json_snapshot!(h);
    let back: DeliveryHistory = serde_json::from_str(&serde_json::to_string(&h).unwrap()).unwrap();
    assert_eq!(back, h);
}
