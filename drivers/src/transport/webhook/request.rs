//! The headers of one attempt: Standard Webhooks `webhook-*`, optional CloudEvents `ce-*`, the
//! event's content type and the configured static headers. The body is the payload, untouched.

use herald_core::ExternalEvent;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};

use super::cloudevents;
use super::config::WebhookConfig;
use super::signature::signature_header;

/// Builds the headers for `event` sent at `timestamp` (Unix seconds). Fails only on a value
/// that cannot be a header, which a validated event and configuration never produce.
pub(super) fn attempt_headers(
    config: &WebhookConfig,
    event: &ExternalEvent,
    timestamp: u64,
) -> Result<HeaderMap, String> {
    let mut headers = config.headers.clone();
    let header = |what: &str, value: &str| {
        HeaderValue::from_str(value).map_err(|_| format!("the {what} cannot be sent as an HTTP header"))
    };
    headers.insert(CONTENT_TYPE, header("content type", event.content_type())?);
    headers.insert("webhook-id", header("event id", event.id().as_str())?);
    headers.insert("webhook-timestamp", HeaderValue::from(timestamp));
    if !config.secrets.is_empty() {
        let signatures = signature_header(&config.secrets, event.id().as_str(), timestamp, event.payload());
        let mut value = header("signature", &signatures)?;
        value.set_sensitive(true);
        headers.insert("webhook-signature", value);
    }
    if let Some(source) = &config.cloudevents_source {
        cloudevents::add_headers(&mut headers, event, source)?;
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::test_event;
    use crate::transport::webhook::signature::{WebhookSecret, verify};

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

    #[test]
    fn carries_id_timestamp_content_type_signature_and_static_headers() {
        let config = WebhookConfig::builder("https://example.com/hook")
            .secret(SECRET)
            .header("x-tenant", "acme")
            .build()
            .unwrap();
        let h = attempt_headers(&config, &test_event(), 1_700_000_100).unwrap();
        assert_eq!(h["webhook-id"], "evt_42");
        assert_eq!(h["webhook-timestamp"], "1700000100");
        assert_eq!(h["content-type"], "application/vnd.acme+json");
        assert_eq!(h["x-tenant"], "acme");
        let signature = h["webhook-signature"].to_str().unwrap();
        let secret = WebhookSecret::parse(SECRET).unwrap();
        assert!(verify(
            signature,
            &[secret],
            "evt_42",
            1_700_000_100,
            br#"{"order":42}"#
        ));
        assert!(h.get("ce-id").is_none());
    }

    #[test]
    fn without_secrets_there_is_no_signature_header() {
        let config = WebhookConfig::builder("https://example.com/hook").build().unwrap();
        let h = attempt_headers(&config, &test_event(), 1).unwrap();
        assert!(h.get("webhook-signature").is_none());
    }

    #[test]
    fn cloudevents_mode_adds_the_ce_headers() {
        let config = WebhookConfig::builder("https://example.com/hook")
            .cloudevents("/shop")
            .build()
            .unwrap();
        let h = attempt_headers(&config, &test_event(), 1).unwrap();
        assert_eq!(h["ce-id"], "evt_42");
        assert_eq!(h["ce-source"], "/shop");
        assert_eq!(h["ce-type"], "order.created");
        assert_eq!(h["ce-specversion"], "1.0");
        assert_eq!(h["ce-time"], "2023-11-14T22:13:20.000Z");
    }
}
