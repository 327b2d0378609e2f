//! Events, times and policies shared by the tests.

use herald_core::{ExternalEvent, Timestamp};

/// A fixed start time for tests: 2023-11-14T22:13:20Z.
pub const T0: Timestamp = Timestamp::from_secs(1_700_000_000);

/// An event with a caller-given id; `variant` changes its payload (a conflicting re-send).
pub fn event(id: &str, variant: u8) -> ExternalEvent {
    ExternalEvent::builder("test.event")
        .id(id)
        .payload(format!(r#"{{"id":"{id}","variant":{variant}}}"#).into_bytes())
        .occurred_at(T0)
        .build()
        .expect("valid test event")
}
