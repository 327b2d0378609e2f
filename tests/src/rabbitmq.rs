//! The test side of RabbitMQ: a client of its own (lapin on the smol runtime kit, so it
//! serves tests on any runtime), exchanges with a queue bound to them, and reading what
//! arrived. Call [`crate::brokers::require`] first.

use std::time::{Duration, Instant};

use lapin::message::BasicGetMessage;
use lapin::options::{BasicGetOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};

use crate::brokers;

/// The broker's URL for Herald ports connecting through `port` on 127.0.0.1 (the broker's
/// own port, or a proxy's).
pub fn url_via(port: u16) -> String {
    format!("amqp://guest:guest@127.0.0.1:{port}/%2f")
}

/// The broker's own port.
pub fn port() -> u16 {
    let port = brokers::RABBITMQ.rsplit(':').next().and_then(|p| p.parse().ok());
    port.expect("a port in brokers::RABBITMQ")
}

/// The broker's own URL.
pub fn url() -> String {
    url_via(port())
}

/// A connection of the test's own.
pub async fn connect() -> Connection {
    Connection::connect_with_runtime(&url(), ConnectionProperties::default(), async_rs::Runtime::smol())
        .await
        .expect("connect to RabbitMQ")
}

/// An exchange with a queue bound to it for every routing key: what is published to the
/// exchange is routed (and confirmed) and can be read back. Both live while this value
/// does: the queue is exclusive to its connection, the exchange deleted with its last
/// binding, so the broker cleans up even after a crashed test.
pub struct Routed {
    /// The exchange (topic, bound with `#`).
    pub exchange: String,
    /// The queue.
    pub queue: String,
    /// A channel of the connection that owns the queue.
    pub channel: Channel,
    _connection: Connection,
}

impl std::fmt::Debug for Routed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routed")
            .field("exchange", &self.exchange)
            .field("queue", &self.queue)
            .finish_non_exhaustive()
    }
}

impl Routed {
    /// Declares a uniquely named exchange (`prefix-…`) and a queue with `queue_arguments`
    /// (e.g. `x-max-length`) bound to it.
    pub async fn declare(prefix: &str, queue_arguments: FieldTable) -> Routed {
        let connection = connect().await;
        let channel = connection.create_channel().await.expect("channel");
        let exchange = brokers::unique(prefix);
        channel
            .exchange_declare(
                exchange.as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    auto_delete: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("declare the exchange");
        let queue = format!("{exchange}-q");
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                queue_arguments,
            )
            .await
            .expect("declare the queue");
        channel
            .queue_bind(
                queue.as_str().into(),
                exchange.as_str().into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind the queue");
        Routed {
            exchange,
            queue,
            channel,
            _connection: connection,
        }
    }

    /// Takes the next message from the queue, waiting up to `wait` for one.
    pub async fn next(&self, wait: Duration) -> Option<BasicGetMessage> {
        let deadline = Instant::now() + wait;
        loop {
            let got = self
                .channel
                .basic_get(self.queue.as_str().into(), BasicGetOptions { no_ack: true })
                .await
                .expect("basic.get");
            if got.is_some() || Instant::now() >= deadline {
                return got;
            }
            async_io::Timer::after(Duration::from_millis(20)).await;
        }
    }
}
