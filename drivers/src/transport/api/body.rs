//! The request body of one attempt: the payload as it is ([`Body::Raw`]), a JSON envelope
//! around it ([`Body::Json`]), or nothing ([`Body::Empty`]). Every attempt of an event gets
//! the same bytes: the body depends on the event only.

use std::collections::BTreeMap;

use base64::Engine as _;
use herald_core::ExternalEvent;
use serde::Serialize;
use serde_json::value::RawValue;

/// What the request body carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Body {
    /// The payload's bytes, untouched, with the event's content type. The default (except
    /// for `GET`, which sends no body).
    #[default]
    Raw,
    /// A JSON object describing the event, with `content-type: application/json`:
    ///
    /// ```json
    /// {"id": "evt_1", "type": "order.created", "occurred_at": "2023-11-14T22:13:20.000Z",
    ///  "content_type": "application/json", "metadata": {"tenant": "acme"},
    ///  "data": {"order": 42}}
    /// ```
    ///
    /// `data` is the payload itself when the event's content type is JSON
    /// (`application/json` or `…+json`) and the payload parses as JSON; it is inserted
    /// byte for byte, so numbers and key order are kept. Any other payload is sent as
    /// `data_base64` (standard base64, padded) instead of `data`. `metadata` is always
    /// present (`{}` when empty), keys sorted.
    Json,
    /// No body (and no `content-type`): the URL, headers and method say everything.
    Empty,
}

impl Body {
    /// `raw`, `json`, `empty`.
    pub fn as_str(self) -> &'static str {
        match self {
            Body::Raw => "raw",
            Body::Json => "json",
            Body::Empty => "empty",
        }
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    occurred_at: String,
    content_type: &'a str,
    metadata: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_base64: Option<String>,
}

/// Whether a content type is JSON: `application/json` or a `+json` structured syntax
/// suffix, ignoring parameters and case.
pub(super) fn is_json_content_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.ends_with("+json") && essence.contains('/'))
}

/// The JSON envelope of `event` (see [`Body::Json`]).
pub(super) fn json_envelope(event: &ExternalEvent) -> Result<Vec<u8>, String> {
    let payload = event.payload();
    let data = is_json_content_type(event.content_type())
        .then(|| std::str::from_utf8(payload).ok())
        .flatten()
        .and_then(|text| serde_json::from_str::<&RawValue>(text).ok());
    let data_base64 = match data {
        Some(_) => None,
        None => Some(base64::engine::general_purpose::STANDARD.encode(payload)),
    };
    let envelope = Envelope {
        id: event.id().as_str(),
        event_type: event.event_type(),
        occurred_at: event.occurred_at().to_rfc3339(),
        content_type: event.content_type(),
        metadata: event.metadata(),
        data,
        data_base64,
    };
    serde_json::to_vec(&envelope).map_err(|e| format!("cannot encode the JSON body: {e}"))
}

#[cfg(test)]
mod tests {
    use herald_core::Timestamp;
    use serde_json::{Value, json};

    use super::*;

    fn event(content_type: &str, payload: &[u8]) -> ExternalEvent {
        ExternalEvent::builder("order.created")
            .id("evt_1")
            .content_type(content_type)
            .payload(payload.to_vec())
            .occurred_at(Timestamp::from_millis(1_700_000_000_123))
            .metadata("tenant", "acme")
            .metadata("region", "eu")
            .build()
            .unwrap()
    }

    fn envelope(e: &ExternalEvent) -> Value {
        serde_json::from_slice(&json_envelope(e).unwrap()).unwrap()
    }

    #[test]
    fn a_json_payload_is_embedded_as_data() {
        let v = envelope(&event("application/json", br#" {"order": 42, "total": "19.99"} "#));
        assert_eq!(
            v,
            json!({
                "id": "evt_1",
                "type": "order.created",
                "occurred_at": "2023-11-14T22:13:20.123Z",
                "content_type": "application/json",
                "metadata": {"region": "eu", "tenant": "acme"},
                "data": {"order": 42, "total": "19.99"},
            })
        );
    }

    #[test]
    fn embedded_json_keeps_its_exact_bytes() {
        let payload = br#"{"z":1,"a":12345678901234567890123,"f":1.10}"#;
        let body = json_envelope(&event("application/json", payload)).unwrap();
        let text = String::from_utf8(body).unwrap();
        assert!(
            text.contains(r#""data":{"z":1,"a":12345678901234567890123,"f":1.10}"#),
            "{text}"
        );
        assert!(text.starts_with(r#"{"id":"evt_1","type":"order.created","#), "{text}");
    }

    #[test]
    fn other_payloads_travel_as_base64() {
        let v = envelope(&event("application/octet-stream", &[0, 159, 146, 150]));
        assert_eq!(v["data_base64"], "AJ+Slg==");
        assert!(v.get("data").is_none());
        // Declared JSON that does not parse is not embedded either.
        let v = envelope(&event("application/json", b"{not json"));
        assert_eq!(v["data_base64"], "e25vdCBqc29u");
        let v = envelope(&event("application/json", b""));
        assert_eq!(v["data_base64"], "");
    }

    #[test]
    fn json_content_types_are_recognized_with_suffixes_and_parameters() {
        for ct in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/cloudevents+json",
            "application/vnd.api+json",
        ] {
            assert!(is_json_content_type(ct), "{ct}");
        }
        for ct in ["text/plain", "application/jsonl", "application/x-ndjson", "+json"] {
            assert!(!is_json_content_type(ct), "{ct}");
        }
        let v = envelope(&event("application/vnd.acme+json", b"[1,2]"));
        assert_eq!(v["data"], json!([1, 2]));
    }

    #[test]
    fn empty_metadata_is_an_empty_object() {
        let e = ExternalEvent::builder("t")
            .id("e")
            .payload(b"1".to_vec())
            .occurred_at(Timestamp::EPOCH)
            .build()
            .unwrap();
        let v = envelope(&e);
        assert_eq!(v["metadata"], json!({}));
        assert_eq!(v["data"], json!(1));
    }
}
