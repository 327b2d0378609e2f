//! The event an application hands to a port: immutable, cheap to clone, and the exact
//! bytes every attempt sends.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::id::{ContentDigest, EventId, EventIdError, EventKey, Fingerprint};
use crate::time::{LAST_RFC3339, Timestamp};

/// An event to deliver. Immutable once built, so every retry sends the same bytes.
///
/// Cloning is an `Arc` bump: the engine, the driver and a transport can share one event.
#[derive(Clone, PartialEq, Eq)]
pub struct ExternalEvent(Arc<Inner>);

#[derive(PartialEq, Eq)]
struct Inner {
    parts: EventParts,
    key: EventKey,
    fingerprint: Fingerprint,
}

/// The fields of an event, as serialized. Deserializing goes through the same validation
/// as the builder, and the id key and fingerprint are recomputed, never trusted.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
struct EventParts {
    id: EventId,
    #[serde(rename = "type")]
    event_type: String,
    content_type: String,
    #[serde(with = "crate::serde_bytes::exact")]
    payload: Vec<u8>,
    occurred_at: Timestamp,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    metadata: BTreeMap<String, String>,
}

/// Why an event could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The caller-given id is invalid.
    #[error(transparent)]
    Id(#[from] EventIdError),
    /// No occurred-at time was given; the core reads no clock, so the caller must.
    #[error("occurred_at is required")]
    MissingOccurredAt,
    /// A text field is empty, too long or holds a forbidden character.
    #[error("{field} is invalid: {why}")]
    Field {
        /// The field (`type`, `content_type`, `metadata key`, `metadata[KEY]`, `occurred_at`).
        field: String,
        /// What is wrong.
        why: String,
    },
    /// More metadata entries than allowed.
    #[error("{count} metadata entries; the limit is {max}")]
    TooManyMetadata {
        /// Entries given.
        count: usize,
        /// The limit.
        max: usize,
    },
}

impl ExternalEvent {
    /// Longest event type, content type or metadata value, in bytes.
    pub const MAX_TEXT_LEN: usize = 256;
    /// Longest metadata key, in bytes.
    pub const MAX_METADATA_KEY_LEN: usize = 64;
    /// Most metadata entries.
    pub const MAX_METADATA_ENTRIES: usize = 64;
    /// Content type used when none is given.
    pub const DEFAULT_CONTENT_TYPE: &'static str = "application/json";

    /// Starts building an event of the given type.
    pub fn builder(event_type: impl Into<String>) -> EventBuilder {
        EventBuilder {
            id: None,
            event_type: event_type.into(),
            content_type: Self::DEFAULT_CONTENT_TYPE.to_owned(),
            payload: Vec::new(),
            occurred_at: None,
            metadata: BTreeMap::new(),
        }
    }

    /// The id every attempt carries.
    pub fn id(&self) -> &EventId {
        &self.0.parts.id
    }
    /// The compact key of [`Self::id`].
    pub fn key(&self) -> EventKey {
        self.0.key
    }
    /// The fingerprint of the content (everything but the id).
    pub fn fingerprint(&self) -> Fingerprint {
        self.0.fingerprint
    }
    /// The event type, e.g. `invoice.paid`.
    pub fn event_type(&self) -> &str {
        &self.0.parts.event_type
    }
    /// The MIME type of [`Self::payload`].
    pub fn content_type(&self) -> &str {
        &self.0.parts.content_type
    }
    /// The bytes delivered.
    pub fn payload(&self) -> &[u8] {
        &self.0.parts.payload
    }
    /// When the event happened, as the application says.
    pub fn occurred_at(&self) -> Timestamp {
        self.0.parts.occurred_at
    }
    /// Application metadata (becomes headers or message properties).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.0.parts.metadata
    }

    fn from_parts(parts: EventParts) -> Result<Self, EventError> {
        if parts.occurred_at > LAST_RFC3339 {
            // Its JSON form and the CloudEvents `ce-time` header are RFC 3339.
            return Err(EventError::Field {
                field: "occurred_at".to_owned(),
                why: "after 9999-12-31T23:59:59.999Z, the last instant RFC 3339 can write".to_owned(),
            });
        }
        validate_text("type", &parts.event_type, false)?;
        validate_text("content_type", &parts.content_type, true)?;
        if parts.metadata.len() > Self::MAX_METADATA_ENTRIES {
            return Err(EventError::TooManyMetadata {
                count: parts.metadata.len(),
                max: Self::MAX_METADATA_ENTRIES,
            });
        }
        for (k, v) in &parts.metadata {
            validate_metadata_key(k)?;
            validate_text(&format!("metadata[{k}]"), v, false).or_else(|e| {
                // An empty metadata value is allowed; only length and characters matter.
                if v.is_empty() { Ok(()) } else { Err(e) }
            })?;
        }
        let digest = content_digest(&parts);
        Ok(ExternalEvent(Arc::new(Inner {
            key: parts.id.key(),
            fingerprint: digest.fingerprint(),
            parts,
        })))
    }
}

fn content_digest(p: &EventParts) -> ContentDigest {
    ContentDigest::of(
        &p.event_type,
        &p.content_type,
        &p.payload,
        p.occurred_at.as_millis(),
        &p.metadata,
    )
}

fn validate_text(field: &str, v: &str, header_safe: bool) -> Result<(), EventError> {
    let bad = |why: String| {
        Err(EventError::Field {
            field: field.to_owned(),
            why,
        })
    };
    if v.is_empty() {
        return bad("empty".into());
    }
    if v.len() > ExternalEvent::MAX_TEXT_LEN {
        return bad(format!(
            "{} bytes; the limit is {}",
            v.len(),
            ExternalEvent::MAX_TEXT_LEN
        ));
    }
    if let Some(c) = v
        .chars()
        .find(|c| c.is_control() || (header_safe && !(c.is_ascii_graphic() || *c == ' ')))
    {
        return bad(format!("forbidden character {c:?}"));
    }
    Ok(())
}

fn validate_metadata_key(k: &str) -> Result<(), EventError> {
    let bad = |why: String| {
        Err(EventError::Field {
            field: "metadata key".to_owned(),
            why,
        })
    };
    if k.is_empty() {
        return bad("empty".into());
    }
    if k.len() > ExternalEvent::MAX_METADATA_KEY_LEN {
        return bad(format!(
            "{k:?} is {} bytes; the limit is {}",
            k.len(),
            ExternalEvent::MAX_METADATA_KEY_LEN
        ));
    }
    if let Some(c) = k
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return bad(format!("{k:?} has {c:?}; keys are ASCII letters, digits, '-' and '_'"));
    }
    Ok(())
}

impl fmt::Debug for ExternalEvent {
    /// Shows the payload's size, not its bytes: payloads may hold personal data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.0.parts;
        f.debug_struct("ExternalEvent")
            .field("id", &p.id)
            .field("type", &p.event_type)
            .field("content_type", &p.content_type)
            .field("payload_len", &p.payload.len())
            .field("occurred_at", &p.occurred_at)
            .field("metadata_keys", &p.metadata.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Serialize for ExternalEvent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.parts.serialize(s)
    }
}

impl<'de> Deserialize<'de> for ExternalEvent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let parts = EventParts::deserialize(d)?;
        ExternalEvent::from_parts(parts).map_err(serde::de::Error::custom)
    }
}

/// Builds an [`ExternalEvent`]; see [`ExternalEvent::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct EventBuilder {
    id: Option<String>,
    event_type: String,
    content_type: String,
    payload: Vec<u8>,
    occurred_at: Option<Timestamp>,
    metadata: BTreeMap<String, String>,
}

impl EventBuilder {
    /// Uses a caller-given id. Without one, the id is derived from the content, so the
    /// same content always gets the same id (see [`ExternalEvent::builder`]).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
    /// The bytes to deliver.
    pub fn payload(mut self, payload: impl Into<Vec<u8>>) -> Self {
        self.payload = payload.into();
        self
    }
    /// The MIME type of the payload (default `application/json`).
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = content_type.into();
        self
    }
    /// When the event happened (required; at most 9999-12-31T23:59:59.999Z).
    pub fn occurred_at(mut self, at: Timestamp) -> Self {
        self.occurred_at = Some(at);
        self
    }
    /// Adds one metadata entry (a later value for the same key wins).
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Validates and builds the event. Without a caller-given id, the id is the
    /// hyphenated UUIDv5 of the canonical content encoding (see the crate docs).
    pub fn build(self) -> Result<ExternalEvent, EventError> {
        let occurred_at = self.occurred_at.ok_or(EventError::MissingOccurredAt)?;
        let id = match self.id {
            Some(id) => EventId::new(id)?,
            None => EventId::from_digest(ContentDigest::of(
                &self.event_type,
                &self.content_type,
                &self.payload,
                occurred_at.as_millis(),
                &self.metadata,
            )),
        };
        ExternalEvent::from_parts(EventParts {
            id,
            event_type: self.event_type,
            content_type: self.content_type,
            payload: self.payload,
            occurred_at,
            metadata: self.metadata,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order_created() -> EventBuilder {
        ExternalEvent::builder("order.created")
            .payload(br#"{"order":42}"#.to_vec())
            .occurred_at(Timestamp::from_millis(1_700_000_000_000))
            .metadata("tenant", "acme")
    }

    #[test]
    fn same_content_derives_the_same_id() {
        let a = order_created().build().unwrap();
        let b = order_created().build().unwrap();
        assert_eq!(a.id(), b.id());
        assert_eq!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn any_content_change_changes_the_derived_id() {
        let base = order_created().build().unwrap();
        let variants = [
            order_created().payload(b"{}".to_vec()).build().unwrap(),
            order_created().metadata("tenant", "other").build().unwrap(),
            order_created().content_type("text/plain").build().unwrap(),
            order_created().occurred_at(Timestamp::from_millis(1)).build().unwrap(),
        ];
        for v in variants {
            assert_ne!(v.id(), base.id());
            assert_ne!(v.fingerprint(), base.fingerprint());
        }
    }

    #[test]
    fn caller_given_id_is_kept_and_does_not_change_the_fingerprint() {
        let given = order_created().id("evt_1").build().unwrap();
        let derived = order_created().build().unwrap();
        assert_eq!(given.id().as_str(), "evt_1");
        assert_eq!(given.fingerprint(), derived.fingerprint());
    }

    #[test]
    fn missing_occurred_at_is_an_error() {
        let e = ExternalEvent::builder("t").build().unwrap_err();
        assert_eq!(e, EventError::MissingOccurredAt);
    }

    #[test]
    fn invalid_fields_name_the_field() {
        let at = Timestamp::EPOCH;
        let e = ExternalEvent::builder("").occurred_at(at).build().unwrap_err();
        assert_eq!(e.to_string(), "type is invalid: empty");
        let e = ExternalEvent::builder("t")
            .content_type("a\nb")
            .occurred_at(at)
            .build()
            .unwrap_err();
        assert!(e.to_string().starts_with("content_type is invalid"), "{e}");
        let e = ExternalEvent::builder("t")
            .metadata("bad key", "v")
            .occurred_at(at)
            .build()
            .unwrap_err();
        assert!(e.to_string().starts_with("metadata key is invalid"), "{e}");
        let e = ExternalEvent::builder("t")
            .metadata("k", "x".repeat(300))
            .occurred_at(at)
            .build()
            .unwrap_err();
        assert_eq!(e.to_string(), "metadata[k] is invalid: 300 bytes; the limit is 256");
        let e = ExternalEvent::builder("t")
            .id("a.b")
            .occurred_at(at)
            .build()
            .unwrap_err();
        assert!(matches!(e, EventError::Id(EventIdError::InvalidChar { .. })));
        let mut b = ExternalEvent::builder("t").occurred_at(at);
        for i in 0..65 {
            b = b.metadata(format!("k{i}"), "v");
        }
        assert_eq!(
            b.build().unwrap_err(),
            EventError::TooManyMetadata { count: 65, max: 64 }
        );
    }

    /// Found by the `config_parse` fuzz target (on a seed input): an event built with an
    /// `occurred_at` after year 9999 serialized to JSON that did not deserialize (and would
    /// have sent a `ce-time` that is not RFC 3339).
    #[test]
    fn fuzz_occurred_at_after_year_9999_is_refused_so_json_round_trips() {
        let e = ExternalEvent::builder("t")
            .occurred_at(Timestamp::MAX)
            .build()
            .unwrap_err();
        assert!(
            e.to_string().starts_with("occurred_at is invalid: after 9999-12-31"),
            "{e}"
        );
        let last = ExternalEvent::builder("t").occurred_at(LAST_RFC3339).build().unwrap();
        let json = serde_json::to_string(&last).unwrap();
        assert_eq!(serde_json::from_str::<ExternalEvent>(&json).unwrap(), last);
    }

    #[test]
    fn debug_output_does_not_show_the_payload() {
        let e = order_created().build().unwrap();
        let dbg = format!("{e:?}");
        assert!(dbg.contains("payload_len: 12"), "{dbg}");
        assert!(!dbg.contains("order\\\":42"), "{dbg}");
    }

    #[test]
    fn json_round_trip_revalidates_and_keeps_the_fingerprint() {
        let e = order_created().build().unwrap();
        let json = serde_json::to_string(&e).unwrap();
        let back: ExternalEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
        let tampered = json.replace("order.created", "");
        assert!(serde_json::from_str::<ExternalEvent>(&tampered).is_err());
    }
}
