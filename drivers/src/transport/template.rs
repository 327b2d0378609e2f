//! Destination templates shared by transports: literal text with `{id}` (the event id) and
//! `{type}` (the event type) placeholders. Each transport decides where placeholders may
//! stand and how values are encoded (percent-encoding in a URL, as they are in a routing
//! key); this file only splits a template into its parts.

/// What a placeholder stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Placeholder {
    Id,
    Type,
}

impl Placeholder {
    /// The placeholder as written, for error messages.
    #[cfg(feature = "api")]
    pub(crate) fn name(self) -> &'static str {
        match self {
            Placeholder::Id => "{id}",
            Placeholder::Type => "{type}",
        }
    }
}

/// A template's text for one event, values inserted as they are (a routing key, a subject;
/// a URL encodes them instead).
#[cfg(any(feature = "amqp", feature = "nats"))]
pub(crate) fn render_plain(parts: &[Part], id: &str, event_type: &str) -> String {
    let values: usize = parts.iter().filter(|p| matches!(p, Part::Value(_))).count();
    let mut out = String::with_capacity(values * (id.len() + event_type.len()) + 32);
    for part in parts {
        match part {
            Part::Literal(s) => out.push_str(s),
            Part::Value(Placeholder::Id) => out.push_str(id),
            Part::Value(Placeholder::Type) => out.push_str(event_type),
        }
    }
    out
}

/// A piece of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    Literal(String),
    Value(Placeholder),
}

/// Splits `raw` into literals and placeholders, each with its byte offset.
pub(crate) fn tokenize(raw: &str) -> Result<Vec<(usize, Part)>, String> {
    let mut tokens = Vec::new();
    let mut literal_start = 0;
    let mut rest = raw.char_indices();
    while let Some((at, c)) = rest.next() {
        match c {
            '{' => {
                let close = raw[at + 1..]
                    .find(['{', '}'])
                    .filter(|&i| raw.as_bytes()[at + 1 + i] == b'}')
                    .ok_or_else(|| format!("unbalanced braces: the '{{' at byte {at} is not closed"))?;
                let name = &raw[at + 1..at + 1 + close];
                let placeholder = match name {
                    "id" => Placeholder::Id,
                    "type" => Placeholder::Type,
                    other => {
                        let shown: String = other.chars().take(32).collect();
                        return Err(format!(
                            "unknown placeholder {{{shown}}} at byte {at}; the placeholders are {{id}} and {{type}}"
                        ));
                    }
                };
                if literal_start < at {
                    tokens.push((literal_start, Part::Literal(raw[literal_start..at].to_owned())));
                }
                tokens.push((at, Part::Value(placeholder)));
                literal_start = at + close + 2;
                // Skip the name and the closing brace (ASCII, so bytes are chars).
                for _ in 0..=close {
                    rest.next();
                }
            }
            '}' => return Err(format!("unbalanced braces: the '}}' at byte {at} closes nothing")),
            _ => {}
        }
    }
    if literal_start < raw.len() {
        tokens.push((literal_start, Part::Literal(raw[literal_start..].to_owned())));
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_splits_into_literals_and_placeholders_with_their_offsets() {
        let parts = tokenize("orders.{type}.{id}").unwrap();
        assert_eq!(
            parts,
            [
                (0, Part::Literal("orders.".to_owned())),
                (7, Part::Value(Placeholder::Type)),
                (13, Part::Literal(".".to_owned())),
                (14, Part::Value(Placeholder::Id)),
            ]
        );
    }

    #[test]
    fn unknown_placeholders_and_unbalanced_braces_are_refused() {
        assert!(
            tokenize("a.{tenant}")
                .unwrap_err()
                .contains("unknown placeholder {tenant}")
        );
        assert!(tokenize("a.{id").unwrap_err().contains("unbalanced braces"));
        assert!(tokenize("a.id}").unwrap_err().contains("unbalanced braces"));
        assert!(tokenize("{{id}}").unwrap_err().contains("unbalanced braces"));
    }
}
