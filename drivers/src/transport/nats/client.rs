//! [`NatsTransport`]: one NATS connection per destination, opened at the first attempt and
//! kept (the client reconnects by itself), publishing each event to JetStream and waiting
//! for the stream's ack.

use std::fmt;
use std::str::FromStr as _;
use std::time::Duration;

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::{HeaderMap, HeaderName, HeaderValue};
use herald_core::{AttemptReport, BoxFuture, ExternalEvent, NetworkError, Observation};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::Instrument as _;

use super::config::{Credentials, NatsConfig};
use crate::error::ConfigError;
use crate::transport::{AttemptRequest, Transport, invalid_request};

/// The header JetStream de-duplicates on, within the stream's duplicate window.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";

/// How long an attempt waits at most for a (re)connection before reporting a connect error:
/// long enough for a first connect, short enough that a down server does not hold every
/// in-flight slot for a whole attempt timeout.
const CONNECT_GRACE: Duration = Duration::from_secs(2);

/// Publishes events to NATS JetStream with `Nats-Msg-Id` = event id, so a retried publish
/// the stream already holds is acknowledged as a duplicate instead of stored twice.
///
/// The client is async-nats, which needs a tokio context: under tokio it uses the running
/// runtime; under smol or another executor, the attempt runs in a shared one-thread tokio
/// runtime (async-compat), where the connection's task lives too.
pub struct NatsTransport {
    config: NatsConfig,
    connection: async_lock::OnceCell<Connection>,
}

struct Connection {
    jetstream: async_nats::jetstream::Context,
    /// Whether the client is connected, from its event callback.
    connected: watch::Receiver<bool>,
}

impl NatsTransport {
    /// A transport for `config`. No connection is made until the first attempt.
    pub fn new(config: NatsConfig) -> Result<Self, ConfigError> {
        Ok(NatsTransport {
            config,
            connection: async_lock::OnceCell::new(),
        })
    }

    /// The configuration this transport publishes with.
    pub fn config(&self) -> &NatsConfig {
        &self.config
    }

    async fn deliver(&self, request: AttemptRequest<'_>) -> AttemptReport {
        let deadline = Instant::now() + request.timeout;
        crate::transport::timed("nats", self.publish(request, deadline)).await
    }

    async fn publish(&self, request: AttemptRequest<'_>, deadline: Instant) -> AttemptReport {
        let event = request.event;
        let subject = match self.config.subject.render(event.id().as_str(), event.event_type()) {
            Ok(subject) => subject,
            Err(reason) => return invalid_request(reason),
        };
        let headers = match headers(event) {
            Ok(headers) => headers,
            Err(reason) => return invalid_request(reason),
        };
        let connection = match tokio::time::timeout_at(deadline, self.connection()).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(report)) => return report,
            Err(_) => {
                return AttemptReport::new(Observation::TimedOut).with_detail(format!(
                    "no connection to NATS at {} within the attempt timeout",
                    self.config.first_server()
                ));
            }
        };
        // Half the attempt's time at most, so the connect error is reported before the deadline.
        if !connection
            .wait_connected((request.timeout / 2).min(CONNECT_GRACE))
            .await
        {
            return AttemptReport::new(Observation::Network(NetworkError::Connect)).with_detail(format!(
                "not connected to NATS at {} (reconnecting)",
                self.config.first_server()
            ));
        }
        let message = PublishMessage::build()
            .payload(event.payload().to_vec().into())
            .headers(headers);
        let exchange = async {
            let ack = connection.jetstream.send_publish(subject.clone(), message).await?;
            ack.await
        };
        match tokio::time::timeout_at(deadline, exchange).await {
            Err(_) => AttemptReport::new(Observation::TimedOut)
                .with_detail(format!("no JetStream ack for {subject:?} within the attempt timeout")),
            Ok(Ok(ack)) => AttemptReport::new(Observation::Acknowledged {
                duplicate: ack.duplicate,
            })
            .with_detail(format!("stream {} sequence {}", ack.stream, ack.sequence)),
            Ok(Err(error)) => observe_error(&error, &subject),
        }
    }

    async fn connection(&self) -> Result<&Connection, AttemptReport> {
        self.connection.get_or_try_init(|| connect(&self.config)).await
    }
}

impl Connection {
    /// Waits up to `grace` for the client to be connected.
    async fn wait_connected(&self, grace: Duration) -> bool {
        let mut connected = self.connected.clone();
        if *connected.borrow_and_update() {
            return true;
        }
        tokio::time::timeout(grace, connected.wait_for(|c| *c))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

/// Opens the client: the first connection is made here, within the attempt (a server that
/// refuses is a connect error now, and the next attempt tries again); once connected, the
/// client reconnects by itself with a backoff capped at 2 s.
async fn connect(config: &NatsConfig) -> Result<Connection, AttemptReport> {
    let (tx, rx) = watch::channel(false);
    let events = tx.clone();
    let mut options = async_nats::ConnectOptions::new()
        .name(&config.connection_name)
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis(50u64.saturating_mul(1 << attempts.min(6))).min(Duration::from_secs(2))
        })
        .event_callback(move |event| {
            let events = events.clone();
            async move {
                match event {
                    async_nats::Event::Connected => {
                        events.send_replace(true);
                    }
                    async_nats::Event::Disconnected | async_nats::Event::Closed => {
                        events.send_replace(false);
                    }
                    _ => {}
                }
            }
        });
    options = match &config.credentials {
        None => options,
        Some(Credentials::Token(token)) => options.token(token.clone()),
        Some(Credentials::UserPassword(user, password)) => options.user_and_password(user.clone(), password.clone()),
    };
    let client = async_nats::connect_with_options(config.servers.clone(), options)
        .await
        .map_err(|e| connect_error(&e, config))?;
    tx.send_replace(client.connection_state() == async_nats::connection::State::Connected);
    // The attempt enforces its own deadline; the context's only bounds acks left behind.
    let jetstream = async_nats::jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(60))
        .build(client);
    Ok(Connection {
        jetstream,
        connected: rx,
    })
}

/// What a failed first connection says. The error's text may repeat the URL (and its
/// credentials), so only its kind is kept, with the server as `host:port`.
fn connect_error(error: &async_nats::ConnectError, config: &NatsConfig) -> AttemptReport {
    use async_nats::ConnectErrorKind as Kind;
    let observation = match error.kind() {
        Kind::Authentication | Kind::AuthorizationViolation => Observation::Refused {
            retryable: false,
            reason: "access_refused".to_owned(),
        },
        Kind::Dns => Observation::Network(NetworkError::Dns),
        Kind::Tls => Observation::Network(NetworkError::Tls),
        Kind::TimedOut => Observation::TimedOut,
        _ => Observation::Network(NetworkError::Connect),
    };
    AttemptReport::new(observation).with_detail(format!(
        "cannot connect to NATS at {}: {}",
        config.first_server(),
        error.kind()
    ))
}

/// The headers of every attempt: the id JetStream de-duplicates on, the content type, the
/// event type and time, and the metadata as `Herald-Meta-<key>`.
pub(super) fn headers(event: &ExternalEvent) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    let mut add = |name: &str, value: &str| -> Result<(), String> {
        let name = HeaderName::from_str(name).map_err(|_| format!("{name:?} cannot be sent as a NATS header name"))?;
        let value =
            HeaderValue::from_str(value).map_err(|_| format!("the value of {name} cannot be sent as a NATS header"))?;
        headers.insert(name, value);
        Ok(())
    };
    add(MSG_ID_HEADER, event.id().as_str())?;
    add("Content-Type", event.content_type())?;
    add("Herald-Event-Type", event.event_type())?;
    add("Herald-Occurred-At", &event.occurred_at().to_rfc3339())?;
    for (key, value) in event.metadata() {
        add(&format!("Herald-Meta-{key}"), value)?;
    }
    Ok(headers)
}

/// What a failed publish says, as facts: the stream's own errors keep their code.
fn observe_error(error: &async_nats::jetstream::context::PublishError, subject: &str) -> AttemptReport {
    let refused = |retryable: bool, reason: &str| Observation::Refused {
        retryable,
        reason: reason.to_owned(),
    };
    match error.kind() {
        PublishErrorKind::StreamNotFound => AttemptReport::new(refused(false, "no_stream"))
            .with_detail(format!("no JetStream stream captures the subject {subject:?}")),
        PublishErrorKind::TimedOut => AttemptReport::new(Observation::TimedOut),
        PublishErrorKind::BrokenPipe => AttemptReport::new(Observation::Network(NetworkError::Reset))
            .with_detail("the connection closed before the ack arrived"),
        PublishErrorKind::MaxPayloadExceeded => {
            AttemptReport::new(refused(false, "too_large")).with_detail(error.to_string())
        }
        PublishErrorKind::MaxAckPending => AttemptReport::new(refused(true, "max_ack_pending")),
        PublishErrorKind::WrongLastMessageId | PublishErrorKind::WrongLastSequence => {
            AttemptReport::new(refused(false, "wrong_last_sequence")).with_detail(error.to_string())
        }
        _ => match std::error::Error::source(error).and_then(|s| s.downcast_ref::<async_nats::jetstream::Error>()) {
            Some(api) => AttemptReport::new(refused(
                retryable_status(api.code()),
                &format!("jetstream_{}", api.code()),
            ))
            .with_detail(api.to_string()),
            None => AttemptReport::new(Observation::Network(NetworkError::Other)).with_detail(error.to_string()),
        },
    }
}

/// JetStream API errors carry an HTTP-like code: 408, 429 and 5xx may pass (a stream that
/// is full or has no leader now); the rest will not.
fn retryable_status(code: usize) -> bool {
    matches!(code, 408 | 429 | 500..)
}

impl Transport for NatsTransport {
    fn kind(&self) -> &'static str {
        "nats"
    }

    fn attempt<'a>(&'a self, request: AttemptRequest<'a>) -> BoxFuture<'a, AttemptReport> {
        let span = tracing::debug_span!(
            "nats.attempt",
            event_id = %request.event.id(),
            attempt = request.attempt,
            server = %self.config.first_server(),
        );
        Box::pin(async_compat::Compat::new(self.deliver(request).instrument(span)))
    }
}

impl fmt::Debug for NatsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsTransport")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_attempt_carries_the_id_type_time_content_type_and_metadata() {
        let event = crate::transport::test_event();
        let h = headers(&event).unwrap();
        let get = |n: &str| h.get(n).map(|v| v.as_str().to_owned());
        assert_eq!(get("Nats-Msg-Id").as_deref(), Some("evt_42"));
        assert_eq!(get("Content-Type").as_deref(), Some("application/vnd.acme+json"));
        assert_eq!(get("Herald-Event-Type").as_deref(), Some("order.created"));
        assert_eq!(get("Herald-Occurred-At").as_deref(), Some("2023-11-14T22:13:20.000Z"));
        assert_eq!(get("Herald-Meta-tenant").as_deref(), Some("acme"));
    }

    #[test]
    fn refused_credentials_are_permanent_and_other_connect_failures_retryable() {
        use async_nats::{ConnectError, ConnectErrorKind as Kind};
        let config = NatsConfig::builder("nats://alice:hunter2@127.0.0.1:4222")
            .subject("e")
            .build()
            .unwrap();
        let report = connect_error(&ConnectError::new(Kind::AuthorizationViolation), &config);
        assert!(matches!(
            report.observation,
            Observation::Refused { retryable: false, ref reason } if reason == "access_refused"
        ));
        let detail = report.detail.unwrap();
        assert!(
            detail.contains("127.0.0.1:4222") && !detail.contains("hunter2"),
            "{detail}"
        );
        let report = connect_error(&ConnectError::new(Kind::Io), &config);
        assert_eq!(report.observation, Observation::Network(NetworkError::Connect));
    }

    #[test]
    fn jetstream_codes_that_may_pass_are_retryable() {
        assert!(retryable_status(503) && retryable_status(429) && retryable_status(408) && retryable_status(500));
        assert!(!retryable_status(400) && !retryable_status(404) && !retryable_status(409));
    }
}
