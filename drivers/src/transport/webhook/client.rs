//! [`WebhookTransport`]: one reqwest client per destination, shared by all attempts, that
//! POSTs the payload with its headers and reports what came back.

use std::fmt;
use std::time::Duration;

use herald_core::{AttemptReport, BoxFuture, Observation};
use tokio::time::Instant;
use tracing::Instrument as _;

use super::config::WebhookConfig;
use super::observe;
use super::request::attempt_headers;
use super::ssrf::{self, GuardedResolver};
use crate::error::ConfigError;
use crate::transport::{AttemptRequest, Transport};

/// How long an idle keep-alive connection is kept for the next attempt.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// TCP keep-alive probes notice a dead peer on an idle pooled connection.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// Delivers events to one webhook URL (Standard Webhooks headers and signatures, optionally
/// CloudEvents), reusing connections across attempts.
///
/// The client follows no redirects (a 3xx is reported as it is: following one would send the
/// signed payload somewhere the user did not configure), ignores proxy environment variables
/// (a proxy would resolve the destination itself, out of reach of the SSRF guard, and an
/// inherited `HTTP_PROXY` silently changes where payloads go), and resolves names through the
/// SSRF guard unless private networks are allowed. reqwest's built-in retry stays at its
/// default, which only replays requests an HTTP/2 server refused before processing them
/// (`REFUSED_STREAM`, graceful `GOAWAY`), so it never duplicates a delivery.
pub struct WebhookTransport {
    config: WebhookConfig,
    client: reqwest::Client,
}

impl WebhookTransport {
    /// Builds the HTTP client for `config` (rustls, keep-alive pool, HTTP/2 when the server
    /// offers it, no redirects, no proxy, TCP_NODELAY).
    pub fn new(config: WebhookConfig) -> Result<Self, ConfigError> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .tcp_nodelay(true)
            .tcp_keepalive(TCP_KEEPALIVE)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .user_agent(config.user_agent.clone());
        if !config.allow_private_network {
            builder = builder.dns_resolver(GuardedResolver);
        }
        let client = builder
            .build()
            .map_err(|e| ConfigError::invalid("webhook", format!("cannot create the HTTP client: {e}")))?;
        Ok(WebhookTransport { config, client })
    }

    /// The configuration this transport delivers with.
    pub fn config(&self) -> &WebhookConfig {
        &self.config
    }

    async fn deliver(&self, request: AttemptRequest<'_>) -> AttemptReport {
        let started = Instant::now();
        let mut report = self.exchange(request, started + request.timeout).await;
        report.duration = started.elapsed();
        log_outcome(&report);
        report
    }

    async fn exchange(&self, request: AttemptRequest<'_>, deadline: Instant) -> AttemptReport {
        // IP literals skip DNS, so the guarded resolver never sees them.
        let literal = self.config.literal_ip().filter(|_| !self.config.allow_private_network);
        if let Some(Err(forbidden)) = literal.map(|ip| ssrf::check_literal(self.config.host(), ip)) {
            return observe::refused(&forbidden);
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

/// One event per attempt with what was observed and how long it took; never a header,
/// signature or payload.
fn log_outcome(report: &AttemptReport) {
    let duration_ms = u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX);
    let detail = report.detail.as_deref().unwrap_or("");
    match &report.observation {
        Observation::Http { status, .. } => {
            tracing::debug!(status, duration_ms, detail, "webhook attempt answered");
        }
        other => {
            let outcome = match other {
                Observation::TimedOut => "timeout",
                Observation::Network(kind) => kind.code(),
                Observation::Refused { reason, .. } => reason.as_str(),
                _ => "other",
            };
            tracing::debug!(outcome, duration_ms, detail, "webhook attempt got no answer");
        }
    }
}
