//! [`AmqpTransport`]: publishes each event with the mandatory flag on a confirm-mode
//! channel and reports the broker's answer.

use std::fmt;
use std::time::Duration;

use herald_core::{AttemptReport, BoxFuture, Observation};
use lapin::options::BasicPublishOptions;
use tracing::Instrument as _;

use super::config::AmqpConfig;
use super::connection::Link;
use super::message::Publication;
use super::observe::{self, Stage};
use crate::error::ConfigError;
use crate::transport::{AttemptRequest, Transport};

/// Delivers events to a RabbitMQ exchange over one connection, reconnecting after it is
/// lost. See the [module docs](super) for the message and the outcomes.
pub struct AmqpTransport {
    config: AmqpConfig,
    link: Link,
}

impl AmqpTransport {
    /// A transport for `config`. No connection is opened until the first attempt, so a
    /// broker that is down at start-up delays deliveries, not the start.
    pub fn new(config: AmqpConfig) -> Result<Self, ConfigError> {
        let link = Link::new(config.uri.clone());
        Ok(AmqpTransport { config, link })
    }

    /// The configuration this transport delivers with.
    pub fn config(&self) -> &AmqpConfig {
        &self.config
    }

    async fn deliver(&self, request: AttemptRequest<'_>) -> AttemptReport {
        crate::transport::timed("amqp", async {
            match Publication::of(&self.config, request.event) {
                Ok(publication) => {
                    let publish = self.publish(&publication, request.event.payload());
                    futures_lite::future::or(publish, timed_out(request.timeout)).await
                }
                Err(reason) => crate::transport::invalid_request(reason),
            }
        })
        .await
    }

    /// Connects if needed, publishes and waits for the confirm. Dropping the future (the
    /// attempt timed out) drops the channel, which closes it.
    async fn publish(&self, publication: &Publication, payload: &[u8]) -> AttemptReport {
        let channel = match self.link.channel().await {
            Ok(channel) => channel,
            Err(report) => return report,
        };
        let options = BasicPublishOptions {
            mandatory: true,
            immediate: false,
        };
        let confirmed = async {
            channel
                .basic_publish(
                    publication.exchange.clone(),
                    publication.routing_key.clone(),
                    options,
                    payload,
                    publication.properties.clone(),
                )
                .await?
                .await
        };
        match confirmed.await {
            Ok(confirmation) => {
                self.link.give_back(channel);
                observe::confirmation(confirmation)
            }
            Err(e) => observe::error(&e, Stage::Publishing),
        }
    }
}

async fn timed_out(after: Duration) -> AttemptReport {
    async_io::Timer::after(after).await;
    AttemptReport::new(Observation::TimedOut)
}

impl Transport for AmqpTransport {
    fn kind(&self) -> &'static str {
        "amqp"
    }

    fn attempt<'a>(&'a self, request: AttemptRequest<'a>) -> BoxFuture<'a, AttemptReport> {
        let span = tracing::debug_span!(
            "amqp.attempt",
            event_id = %request.event.id(),
            attempt = request.attempt,
            host = self.config.host(),
            exchange = self.config.exchange(),
        );
        Box::pin(self.deliver(request).instrument(span))
    }
}

impl fmt::Debug for AmqpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpTransport")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
