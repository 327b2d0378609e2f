//! Event identity: the id a receiver de-duplicates on, the compact key the engine and the
//! store index by, and the content fingerprint that tells a retry from a conflict.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// Namespace of content-derived event ids (UUIDv5). Changing it changes every derived id.
const CONTENT_NAMESPACE: Uuid = Uuid::from_u128(0x6865_7261_6c64_4000_8000_636f_6e74_656e);
/// Namespace of [`EventKey`] digests (UUIDv5 of the id's bytes).
const KEY_NAMESPACE: Uuid = Uuid::from_u128(0x6865_7261_6c64_4000_8000_0000_006b_6579);

/// The stable identifier of an event, carried unchanged by every attempt.
///
/// Rules: 1 to [`EventId::MAX_LEN`] bytes of visible ASCII (`!`..=`~`), without `.`.
/// Visible ASCII keeps it safe in HTTP headers and broker properties; `.` is excluded
/// because Standard Webhooks signs `{id}.{timestamp}.{body}`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(Box<str>);

/// Why a caller-given event id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventIdError {
    /// The id is the empty string.
    #[error("event id is empty")]
    Empty,
    /// The id is longer than [`EventId::MAX_LEN`].
    #[error("event id is {len} bytes long; the limit is {max}")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The id holds a character outside visible ASCII, or a `.`.
    #[error("event id has {found:?} at byte {index}; only visible ASCII without '.' is allowed")]
    InvalidChar {
        /// Byte offset of the offending character.
        index: usize,
        /// The character.
        found: char,
    },
}

impl EventId {
    /// The longest id accepted, in bytes.
    pub const MAX_LEN: usize = 128;

    /// Validates a caller-given id.
    pub fn new(id: impl Into<String>) -> Result<Self, EventIdError> {
        let id: String = id.into();
        if id.is_empty() {
            return Err(EventIdError::Empty);
        }
        if let Some((index, found)) = id.char_indices().find(|&(_, c)| !c.is_ascii_graphic() || c == '.') {
            return Err(EventIdError::InvalidChar { index, found });
        }
        if id.len() > Self::MAX_LEN {
            return Err(EventIdError::TooLong {
                len: id.len(),
                max: Self::MAX_LEN,
            });
        }
        Ok(EventId(id.into_boxed_str()))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The compact key of this id (see [`EventKey`]).
    pub fn key(&self) -> EventKey {
        EventKey(*Uuid::new_v5(&KEY_NAMESPACE, self.0.as_bytes()).as_bytes())
    }

    /// The id derived from a content digest: the hyphenated UUIDv5.
    pub(crate) fn from_digest(digest: ContentDigest) -> Self {
        EventId(digest.0.hyphenated().to_string().into_boxed_str())
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({:?})", &*self.0)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for EventId {
    type Err = EventIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventId::new(s)
    }
}

impl Serialize for EventId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        EventId::new(s).map_err(serde::de::Error::custom)
    }
}

/// A 16-byte digest of an [`EventId`] (UUIDv5 of its bytes).
///
/// The engine holds one per tracked delivery instead of the id string, which keeps a
/// scheduled delivery small; the store indexes by `(port, key)` and keeps the full id in
/// the record, so a digest collision is detected there, not silently merged.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EventKey(pub [u8; 16]);

impl std::hash::Hash for EventKey {
    /// The key is already a uniform digest, so eight of its bytes are a good hash; a
    /// hasher may use them as they are.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.low_u64());
    }
}

impl EventKey {
    /// The first eight bytes, as used to pick a hash bucket and to seed jitter.
    pub fn low_u64(self) -> u64 {
        u64::from_le_bytes(self.0[..8].try_into().expect("16 bytes"))
    }
}

impl fmt::Debug for EventKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventKey({})", Uuid::from_bytes(self.0).simple())
    }
}

/// A 64-bit summary of an event's content (type, content type, payload, occurred-at,
/// metadata): equal ids with unequal fingerprints are a `Conflict`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Fingerprint(pub u64);

/// The UUIDv5 of an event's canonical content encoding.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct ContentDigest(Uuid);

impl ContentDigest {
    /// Digest of the canonical encoding of an event's content.
    ///
    /// The encoding is fixed and platform-independent: the tag `herald/event/v1`, then
    /// each field as a big-endian u64 length followed by its bytes — event type, content
    /// type, payload — then occurred-at as a big-endian u64 of milliseconds, the number of
    /// metadata entries as a big-endian u64, and each entry (in byte order of its key) as
    /// length-prefixed key and value. Length prefixes make the encoding unambiguous.
    pub(crate) fn of(
        event_type: &str,
        content_type: &str,
        payload: &[u8],
        occurred_at_ms: u64,
        metadata: &std::collections::BTreeMap<String, String>,
    ) -> Self {
        let mut buf = Vec::with_capacity(64 + payload.len() + event_type.len() + content_type.len());
        buf.extend_from_slice(b"herald/event/v1");
        let field = |bytes: &[u8], buf: &mut Vec<u8>| {
            buf.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
            buf.extend_from_slice(bytes);
        };
        field(event_type.as_bytes(), &mut buf);
        field(content_type.as_bytes(), &mut buf);
        field(payload, &mut buf);
        buf.extend_from_slice(&occurred_at_ms.to_be_bytes());
        buf.extend_from_slice(&(metadata.len() as u64).to_be_bytes());
        for (k, v) in metadata {
            field(k.as_bytes(), &mut buf);
            field(v.as_bytes(), &mut buf);
        }
        ContentDigest(Uuid::new_v5(&CONTENT_NAMESPACE, &buf))
    }

    pub(crate) fn fingerprint(self) -> Fingerprint {
        Fingerprint(u64::from_be_bytes(self.0.as_bytes()[..8].try_into().expect("16 bytes")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_visible_ascii_ids() {
        let id = EventId::new("msg_27UH4WbU6Z5A5EzD8u03UvzRbpk").unwrap();
        assert_eq!(id.as_str(), "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk");
        assert!(EventId::new("a".repeat(EventId::MAX_LEN)).is_ok());
    }

    #[test]
    fn rejects_empty_long_dotted_and_unprintable_ids() {
        assert_eq!(EventId::new(""), Err(EventIdError::Empty));
        assert_eq!(
            EventId::new("a".repeat(129)),
            Err(EventIdError::TooLong { len: 129, max: 128 })
        );
        assert_eq!(
            EventId::new("order.1"),
            Err(EventIdError::InvalidChar { index: 5, found: '.' })
        );
        assert_eq!(
            EventId::new("a b"),
            Err(EventIdError::InvalidChar { index: 1, found: ' ' })
        );
        assert_eq!(
            EventId::new("é"),
            Err(EventIdError::InvalidChar { index: 0, found: 'é' })
        );
    }

    #[test]
    fn the_same_id_always_has_the_same_key() {
        let a = EventId::new("evt-1").unwrap();
        assert_eq!(a.key(), EventId::new("evt-1").unwrap().key());
        assert_ne!(a.key(), EventId::new("evt-2").unwrap().key());
        // Pinned: the key is part of the store's on-disk format.
        assert_eq!(
            format!("{:?}", a.key()),
            format!("{:?}", EventKey(*Uuid::new_v5(&KEY_NAMESPACE, b"evt-1").as_bytes()))
        );
    }

    #[test]
    fn deserializing_validates_the_id() {
        let bad: Result<EventId, _> = serde_json::from_str("\"a.b\"");
        assert!(bad.unwrap_err().to_string().contains("'.'"));
    }
}
