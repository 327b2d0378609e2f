//! [`ApiTransport`]: one reqwest client per destination, shared by all attempts, that sends
//! each event to its templated URL and reports what came back.

use std::fmt;

use herald_core::{AttemptReport, BoxFuture, ExternalEvent};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use tokio::time::Instant;
use tracing::Instrument as _;

use super::body::{Body, json_envelope};
use super::config::ApiConfig;
use crate::error::ConfigError;
use crate::transport::http::{self, DEFAULT_USER_AGENT, observe};
use crate::transport::{AttemptRequest, Transport, invalid_request};

/// Delivers events to a REST API, reusing connections across attempts.
///
/// The client is the webhook transport's: no redirects followed (a 3xx is reported as it
/// is), no proxy from the environment, names resolved through the SSRF guard unless private
/// networks are allowed, and reqwest's own retries limited to requests an HTTP/2 server
/// refused before processing them. Responses become the same facts as webhook responses
/// (status, `Retry-After`, the start of the body), so the core classifies them the same way;
/// [`PortConfig::api`](crate::PortConfig::api) adds the configured success codes.
pub struct ApiTransport {
    config: ApiConfig,
    client: reqwest::Client,
}

impl ApiTransport {
    /// Builds the HTTP client for `config`.
    pub fn new(config: ApiConfig) -> Result<Self, ConfigError> {
        let client = http::client(
            "api",
            HeaderValue::from_static(DEFAULT_USER_AGENT),
            config.allow_private_network,
        )?;
        Ok(ApiTransport { config, client })
    }

    /// The configuration this transport delivers with.
    pub fn config(&self) -> &ApiConfig {
        &self.config
    }

    async fn deliver(&self, request: AttemptRequest<'_>) -> AttemptReport {
        let deadline = Instant::now() + request.timeout;
        crate::transport::timed("api", self.exchange(request, deadline)).await
    }

    async fn exchange(&self, request: AttemptRequest<'_>, deadline: Instant) -> AttemptReport {
        let event = request.event;
        let url = match self.config.template.render(event.id().as_str(), event.event_type()) {
            Ok(url) => url,
            Err(reason) => return invalid_request(reason),
        };
        // IP literals skip DNS, so the guarded resolver never sees them.
        if let Some(refused) = http::refuse_literal(&url, self.config.allow_private_network) {
            return refused;
        }
        let (headers, body) = match attempt_parts(&self.config, event) {
            Ok(parts) => parts,
            Err(reason) => return invalid_request(reason),
        };
        let mut builder = self
            .client
            .request(self.config.method.to_reqwest(), url)
            .headers(headers)
            .timeout(request.timeout);
        if let Some(body) = body {
            builder = builder.body(body);
        }
        match builder.send().await {
            Ok(response) => observe::response(response, deadline).await,
            Err(e) => observe::error(e),
        }
    }
}

/// The headers and body of one attempt: static headers, authorization, content type and the
/// idempotency header; the body by mode. Fails only on a value that cannot be sent, which a
/// validated event and configuration never produce.
pub(super) fn attempt_parts(config: &ApiConfig, event: &ExternalEvent) -> Result<(HeaderMap, Option<Vec<u8>>), String> {
    let mut headers = config.headers.clone();
    if let Some((_, value)) = &config.auth {
        headers.insert(reqwest::header::AUTHORIZATION, value.clone());
    }
    if let Some(name) = &config.idempotency_header {
        let id = HeaderValue::from_str(event.id().as_str())
            .map_err(|_| "the event id cannot be sent as an HTTP header".to_owned())?;
        headers.insert(name.clone(), id);
    }
    let body = match config.body {
        Body::Raw => {
            let content_type = HeaderValue::from_str(event.content_type())
                .map_err(|_| "the content type cannot be sent as an HTTP header".to_owned())?;
            headers.insert(CONTENT_TYPE, content_type);
            Some(event.payload().to_vec())
        }
        Body::Json => {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Some(json_envelope(event)?)
        }
        Body::Empty => None,
    };
    Ok((headers, body))
}

impl Transport for ApiTransport {
    fn kind(&self) -> &'static str {
        "api"
    }

    fn attempt<'a>(&'a self, request: AttemptRequest<'a>) -> BoxFuture<'a, AttemptReport> {
        // The host only: the path and query may carry tokens.
        let span = tracing::debug_span!(
            "api.attempt",
            event_id = %request.event.id(),
            attempt = request.attempt,
            method = self.config.method.as_str(),
            host = self.config.host(),
        );
        // reqwest needs a tokio context: under tokio, Compat uses the running one; under
        // smol or another executor, a shared one-thread tokio runtime (async-compat).
        Box::pin(async_compat::Compat::new(self.deliver(request).instrument(span)))
    }
}

impl fmt::Debug for ApiTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiTransport")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::test_event;

    #[test]
    fn raw_mode_sends_the_payload_with_its_content_type_and_the_id() {
        let config = ApiConfig::builder("https://api.example.com/e")
            .header("x-tenant", "acme")
            .bearer_token("t0k")
            .build()
            .unwrap();
        let (h, body) = attempt_parts(&config, &test_event()).unwrap();
        assert_eq!(body.as_deref(), Some(&br#"{"order":42}"#[..]));
        assert_eq!(h["content-type"], "application/vnd.acme+json");
        assert_eq!(h["idempotency-key"], "evt_42");
        assert_eq!(h["authorization"], "Bearer t0k");
        assert!(h["authorization"].is_sensitive());
        assert_eq!(h["x-tenant"], "acme");
    }

    #[test]
    fn json_mode_sends_the_envelope_and_empty_mode_nothing() {
        let config = ApiConfig::builder("https://api.example.com/e")
            .body(Body::Json)
            .idempotency_header(None)
            .build()
            .unwrap();
        let (h, body) = attempt_parts(&config, &test_event()).unwrap();
        assert_eq!(h["content-type"], "application/json");
        assert!(h.get("idempotency-key").is_none());
        let v: serde_json::Value = serde_json::from_slice(&body.unwrap()).unwrap();
        assert_eq!(v["data"]["order"], 42);

        let config = ApiConfig::builder("https://api.example.com/e")
            .body(Body::Empty)
            .build()
            .unwrap();
        let (h, body) = attempt_parts(&config, &test_event()).unwrap();
        assert!(body.is_none());
        assert!(h.get("content-type").is_none());
    }
}
