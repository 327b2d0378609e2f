//! Routing-key templates: `orders.{type}`, `events.{type}.{id}`, or a fixed key.
//!
//! `{id}` and `{type}` are replaced by the event's id and type as they are: a routing key
//! is an opaque short string to the broker (topic exchanges split it at `.`), so there is
//! nothing to encode. A rendered key longer than AMQP's 255-byte short-string limit cannot
//! be sent, and the attempt is refused (permanent) instead of being truncated.

use crate::error::ConfigError;
use crate::transport::template::{Part, render_plain, tokenize};

/// The longest routing key (or exchange name) AMQP 0-9-1 can carry: a short string.
pub(super) const MAX_SHORT_STRING: usize = 255;

/// A validated routing-key template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct RoutingKey {
    raw: String,
    parts: Vec<Part>,
}

impl RoutingKey {
    /// Parses `raw`; errors name `field` (unknown placeholder, unbalanced braces, a fixed
    /// part that is already too long).
    pub(super) fn parse(field: &str, raw: &str) -> Result<Self, ConfigError> {
        let parts: Vec<Part> = tokenize(raw)
            .map_err(|reason| ConfigError::invalid(field, reason))?
            .into_iter()
            .map(|(_, part)| part)
            .collect();
        let fixed: usize = parts
            .iter()
            .map(|p| match p {
                Part::Literal(s) => s.len(),
                Part::Value(_) => 0,
            })
            .sum();
        if fixed > MAX_SHORT_STRING {
            return Err(ConfigError::invalid(
                field,
                format!("the fixed part is {fixed} bytes; a routing key is at most {MAX_SHORT_STRING}"),
            ));
        }
        Ok(RoutingKey {
            raw: raw.to_owned(),
            parts,
        })
    }

    /// The template as configured (for `Debug` and logs: it holds no secret).
    pub(super) fn as_str(&self) -> &str {
        &self.raw
    }

    /// The routing key of one event, or why it cannot be sent.
    pub(super) fn render(&self, id: &str, event_type: &str) -> Result<String, String> {
        let out = render_plain(&self.parts, id, event_type);
        if out.len() > MAX_SHORT_STRING {
            return Err(format!(
                "the routing key for this event is {} bytes; AMQP allows at most {MAX_SHORT_STRING}",
                out.len()
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced_by_the_id_and_type_as_they_are() {
        let key = RoutingKey::parse("amqp.routing_key", "orders.{type}.{id}").unwrap();
        assert_eq!(
            key.render("evt/42", "order.created").unwrap(),
            "orders.order.created.evt/42"
        );
        let fixed = RoutingKey::parse("amqp.routing_key", "audit").unwrap();
        assert_eq!(fixed.render("evt-1", "t").unwrap(), "audit");
        let empty = RoutingKey::parse("amqp.routing_key", "").unwrap();
        assert_eq!(empty.render("evt-1", "t").unwrap(), "");
    }

    #[test]
    fn bad_templates_name_the_field() {
        for bad in ["orders.{tenant}", "orders.{type", "orders.type}"] {
            let e = RoutingKey::parse("amqp.routing_key", bad).unwrap_err();
            assert_eq!(e.field(), Some("amqp.routing_key"), "{bad}");
        }
        let e = RoutingKey::parse("amqp.routing_key", &"k".repeat(256)).unwrap_err();
        assert!(e.to_string().contains("256 bytes"), "{e}");
    }

    #[test]
    fn a_rendered_key_over_255_bytes_is_refused() {
        let key = RoutingKey::parse("amqp.routing_key", "{type}.{id}").unwrap();
        let reason = key.render(&"i".repeat(128), &"t".repeat(128)).unwrap_err();
        assert!(reason.contains("257 bytes"), "{reason}");
    }
}
