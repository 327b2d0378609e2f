//! The AMQP message of one event: where it goes and its properties (DESIGN.md §3).
//!
//! | property | value |
//! |---|---|
//! | `message_id` | the event id, the same on every attempt (consumers de-duplicate on it) |
//! | `content_type` | the event's content type |
//! | `type` | the event type |
//! | `timestamp` | when the event occurred, in Unix seconds |
//! | `headers` | the event's metadata, as long-string values |
//! | `delivery_mode` | 2, persistent: a durable queue keeps it across a broker restart |
//!
//! The body is the payload, byte for byte.

use herald_core::ExternalEvent;
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

use super::config::AmqpConfig;

/// `delivery_mode` of a persistent message.
pub(super) const PERSISTENT: u8 = 2;

/// Everything `basic.publish` needs besides the payload.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Publication {
    pub(super) exchange: ShortString,
    pub(super) routing_key: ShortString,
    pub(super) properties: BasicProperties,
}

impl Publication {
    /// The publication of `event` through `config`, or why it cannot be sent (a value over
    /// AMQP's 255-byte short-string limit); retrying would not change that.
    pub(super) fn of(config: &AmqpConfig, event: &ExternalEvent) -> Result<Self, String> {
        let routing_key = config.routing_key.render(event.id().as_str(), event.event_type())?;
        Ok(Publication {
            exchange: short(&config.exchange, "the exchange")?,
            routing_key: short(&routing_key, "the routing key")?,
            properties: properties(event)?,
        })
    }
}

/// The message properties of `event`.
pub(super) fn properties(event: &ExternalEvent) -> Result<BasicProperties, String> {
    let mut headers = FieldTable::default();
    for (key, value) in event.metadata() {
        // Metadata keys are at most 64 bytes of ASCII (checked by the event builder).
        headers.insert(
            short(key, "a metadata key")?,
            AMQPValue::LongString(LongString::from(value.as_bytes())),
        );
    }
    Ok(BasicProperties::default()
        .with_message_id(short(event.id().as_str(), "the event id")?)
        .with_content_type(short(event.content_type(), "the content type")?)
        .with_type(short(event.event_type(), "the event type")?)
        .with_timestamp(event.occurred_at().as_secs())
        .with_headers(headers)
        .with_delivery_mode(PERSISTENT))
}

fn short(value: &str, what: &str) -> Result<ShortString, String> {
    ShortString::try_new(value)
        .map_err(|_| format!("{what} is {} bytes; AMQP short strings are at most 255", value.len()))
}

#[cfg(test)]
mod tests {
    use herald_core::Timestamp;

    use super::*;

    fn event(event_type: &str) -> ExternalEvent {
        ExternalEvent::builder(event_type)
            .id("evt_42")
            .content_type("application/vnd.acme+json")
            .payload(br#"{"order":42}"#.to_vec())
            .occurred_at(Timestamp::from_millis(1_700_000_000_999))
            .metadata("tenant", "acme")
            .metadata("trace-id", "t-1")
            .build()
            .unwrap()
    }

    fn config() -> AmqpConfig {
        AmqpConfig::builder("amqp://guest:guest@127.0.0.1/%2f")
            .exchange("orders")
            .routing_key("orders.{type}.{id}")
            .build()
            .unwrap()
    }

    #[test]
    fn the_message_carries_the_id_type_time_content_type_metadata_and_is_persistent() {
        let p = Publication::of(&config(), &event("order.created")).unwrap();
        assert_eq!(p.exchange.as_str(), "orders");
        assert_eq!(p.routing_key.as_str(), "orders.order.created.evt_42");
        let props = p.properties;
        assert_eq!(props.message_id().as_ref().map(ShortString::as_str), Some("evt_42"));
        assert_eq!(
            props.content_type().as_ref().map(ShortString::as_str),
            Some("application/vnd.acme+json")
        );
        assert_eq!(props.kind().as_ref().map(ShortString::as_str), Some("order.created"));
        assert_eq!(*props.timestamp(), Some(1_700_000_000));
        assert_eq!(*props.delivery_mode(), Some(PERSISTENT));
        let headers = props.headers().clone().expect("headers");
        let headers = headers.inner();
        assert_eq!(headers.len(), 2);
        assert_eq!(
            headers.get("tenant"),
            Some(&AMQPValue::LongString(LongString::from("acme")))
        );
        assert_eq!(
            headers.get("trace-id"),
            Some(&AMQPValue::LongString(LongString::from("t-1")))
        );
    }

    #[test]
    fn values_over_the_short_string_limit_are_refused_not_truncated() {
        let long_type = "t".repeat(256);
        let e = event(&long_type);
        let reason = properties(&e).unwrap_err();
        assert!(reason.contains("the event type is 256 bytes"), "{reason}");
        let fixed_key = AmqpConfig::builder("amqp://guest:guest@127.0.0.1/%2f")
            .routing_key("fixed")
            .build()
            .unwrap();
        assert!(Publication::of(&fixed_key, &e).is_err());
    }
}
