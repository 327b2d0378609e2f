//! CloudEvents 1.0 HTTP binary content mode: the event's attributes travel as `ce-*` headers
//! and the body stays the payload, byte for byte, so the signature and CloudEvents coexist.
//!
//! Header values are percent-encoded as the HTTP binding (§3.1.3.2) requires: space, `"`,
//! `%` and everything outside printable ASCII, as UTF-8 bytes.

use std::fmt::Write as _;

use herald_core::ExternalEvent;
use reqwest::header::{HeaderMap, HeaderValue};

/// Validates and encodes the `ce-source` value once, when the port is built.
pub(super) fn source_header(source: &str) -> Result<HeaderValue, String> {
    if source.is_empty() {
        return Err("the CloudEvents source must not be empty (it is a URI-reference)".to_owned());
    }
    if source.chars().any(char::is_control) {
        return Err("the CloudEvents source must not contain control characters".to_owned());
    }
    encoded(source)
}

/// Adds the `ce-*` headers of `event`.
pub(super) fn add_headers(headers: &mut HeaderMap, event: &ExternalEvent, source: &HeaderValue) -> Result<(), String> {
    headers.insert("ce-specversion", HeaderValue::from_static("1.0"));
    headers.insert("ce-id", encoded(event.id().as_str())?);
    headers.insert("ce-source", source.clone());
    headers.insert("ce-type", encoded(event.event_type())?);
    headers.insert("ce-time", encoded(&event.occurred_at().to_rfc3339())?);
    Ok(())
}

fn encoded(value: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(&percent_encode(value)).map_err(|e| format!("cannot encode a CloudEvents header: {e}"))
}

/// Percent-encodes what the CloudEvents HTTP binding says must be encoded.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        if (0x21..=0x7e).contains(&b) && b != b'"' && b != b'%' {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use herald_core::Timestamp;

    use super::*;

    #[test]
    fn printable_ascii_is_kept_and_the_rest_is_percent_encoded() {
        assert_eq!(percent_encode("order.created"), "order.created");
        assert_eq!(percent_encode("a b"), "a%20b");
        assert_eq!(percent_encode("50%\"off\""), "50%25%22off%22");
        assert_eq!(percent_encode("café"), "caf%C3%A9");
    }

    #[test]
    fn binary_mode_headers_carry_the_event_attributes() {
        let event = ExternalEvent::builder("invoice.paid")
            .id("evt_1")
            .occurred_at(Timestamp::from_millis(1_700_000_000_123))
            .build()
            .unwrap();
        let mut headers = HeaderMap::new();
        add_headers(&mut headers, &event, &source_header("/billing").unwrap()).unwrap();
        assert_eq!(headers["ce-specversion"], "1.0");
        assert_eq!(headers["ce-id"], "evt_1");
        assert_eq!(headers["ce-source"], "/billing");
        assert_eq!(headers["ce-type"], "invoice.paid");
        assert_eq!(headers["ce-time"], "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn an_empty_or_control_character_source_is_rejected() {
        assert!(source_header("").is_err());
        assert!(source_header("a\u{7}b").is_err());
        assert_eq!(source_header("urn:x y").unwrap(), "urn:x%20y");
    }
}
