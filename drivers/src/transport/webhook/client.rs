//! [`WebhookTransport`]: one reqwest client per destination, shared by all attempts, that
//! POSTs the payload with its headers and reports what came back.

use std::fmt;

use herald_core::{AttemptReport, BoxFuture, Observation};
use tokio::time::Instant;
use tracing::Instrument as _;

use super::config::WebhookConfig;
use super::request::attempt_headers;
use crate::error::ConfigError;
use crate::transport::http::{self, observe};
use crate::transport::{AttemptRequest, Transport};

/// Delivers events to one webhook URL (Standard Webhooks headers and signatures, optionally
/// CloudEvents), reusing connections across attempts.
///
/// The client follows no redirects (a 3xx is reported as it is: following one would send the
/// signed payload somewhere the user did not configure), ignores proxy environment variables
/// (a proxy would resolve the destination itself, out of reach of the SSRF guard, and an
/// inherited `HTTP_PROXY` silently changes where payloads go), and resolves names through the
/// SSRF guard unless private networks are allowed. reqwest's built-in retry stays at its
/// default, which only replays requests an HTTP/2 server refused before processing them
/// (`REFUSED_STREAM`, graceful `GOAWAY`), so it never duplicates a delivery. The API
/// transport uses the same client setup.
pub struct WebhookTransport {
    config: WebhookConfig,
    client: reqwest::Client,
}

impl WebhookTransport {
    /// Builds the HTTP client for `config` (rustls, keep-alive pool, HTTP/2 when the server
    /// offers it, no redirects, no proxy, TCP_NODELAY).
    pub fn new(config: WebhookConfig) -> Result<Self, ConfigError> {
        let client = http::client("webhook", config.user_agent.clone(), config.allow_private_network)?;
        Ok(WebhookTransport { config, client })
    }

    /// The configuration this transport delivers with.
    pub fn config(&self) -> &WebhookConfig {
        &self.config
    }

    async fn deliver(&self, request: AttemptRequest<'_>) -> AttemptReport {
        let deadline = Instant::now() + request.timeout;
        crate::transport::timed("webhook", self.exchange(request, deadline)).await
    }

    async fn exchange(&self, request: AttemptRequest<'_>, deadline: Instant) -> AttemptReport {
        // IP literals skip DNS, so the guarded resolver never sees them.
        if let Some(refused) = http::refuse_literal(&self.config.url, self.config.allow_private_network) {
            return refused;
        }
        let event = request.event;
        let headers = match attempt_headers(&self.config, event, request.now.as_secs()) {
            Ok(headers) => headers,
            Err(reason) => {
                return AttemptReport::new(Observation::Refused {
                    retryable: false,
                    reason: "invalid_request".to_owned(),
                })
                .with_detail(reason);
            }
        };
        let sent = self
            .client
            .post(self.config.url.clone())
            .headers(headers)
            .body(event.payload().to_vec())
            .timeout(request.timeout)
            .send()
            .await;
        match sent {
            Ok(response) => observe::response(response, deadline).await,
            Err(e) => observe::error(e),
        }
    }
}

impl Transport for WebhookTransport {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn attempt<'a>(&'a self, request: AttemptRequest<'a>) -> BoxFuture<'a, AttemptReport> {
        // The host only: the path and query may carry tokens.
        let span = tracing::debug_span!(
            "webhook.attempt",
            event_id = %request.event.id(),
            attempt = request.attempt,
            host = self.config.host(),
        );
        // reqwest needs a tokio context: under tokio, Compat uses the running one; under
        // smol or another executor, a shared one-thread tokio runtime (async-compat).
        Box::pin(async_compat::Compat::new(self.deliver(request).instrument(span)))
    }
}

impl fmt::Debug for WebhookTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookTransport")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
