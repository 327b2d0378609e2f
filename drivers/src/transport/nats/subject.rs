//! Subject templates: `events.{type}` or `orders.{id}`, checked once when the port is built
//! and rendered per event. NATS subjects are dot-separated tokens; a publish subject may
//! not hold wildcards (`*`, `>`), whitespace or empty tokens, so a rendered subject that
//! would is refused at the attempt instead of being published somewhere else.

use std::fmt;

/// One piece of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Type,
    Id,
}

/// A validated subject template.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct SubjectTemplate {
    source: String,
    parts: Vec<Part>,
}

impl fmt::Debug for SubjectTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl SubjectTemplate {
    /// Parses `template`; the error says what is wrong (the caller names the field).
    pub(super) fn parse(template: &str) -> Result<Self, String> {
        if template.is_empty() {
            return Err("the subject must not be empty".to_owned());
        }
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = template;
        while let Some(c) = rest.chars().next() {
            match c {
                '{' => {
                    let end = rest
                        .find('}')
                        .ok_or_else(|| format!("unclosed '{{' in subject template {template:?}"))?;
                    let name = &rest[1..end];
                    let part = match name {
                        "type" => Part::Type,
                        "id" => Part::Id,
                        other => {
                            return Err(format!(
                                "unknown placeholder {{{other}}} in subject template {template:?}; expected {{type}} or {{id}}"
                            ));
                        }
                    };
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(part);
                    rest = &rest[end + 1..];
                }
                '}' => return Err(format!("unmatched '}}' in subject template {template:?}")),
                c => {
                    if let Some(reason) = bad_char(c) {
                        return Err(format!("subject template {template:?} contains {reason}"));
                    }
                    literal.push(c);
                    rest = &rest[c.len_utf8()..];
                }
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        let parsed = SubjectTemplate {
            source: template.to_owned(),
            parts,
        };
        // The literal structure alone must already be a valid subject: render with
        // placeholder values that are valid tokens and check.
        check_subject(&parsed.render_unchecked("t", "i"))
            .map_err(|why| format!("subject template {template:?}: {why}"))?;
        Ok(parsed)
    }

    /// The subject for one event, or why it cannot be published to.
    pub(super) fn render(&self, id: &str, event_type: &str) -> Result<String, String> {
        let subject = self.render_unchecked(event_type, id);
        check_subject(&subject).map_err(|why| format!("the subject {subject:?} for this event is invalid: {why}"))?;
        Ok(subject)
    }

    fn render_unchecked(&self, event_type: &str, id: &str) -> String {
        let mut out = String::with_capacity(self.source.len() + event_type.len() + id.len());
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Type => out.push_str(event_type),
                Part::Id => out.push_str(id),
            }
        }
        out
    }
}

/// Characters no publish subject may hold.
fn bad_char(c: char) -> Option<&'static str> {
    match c {
        '*' | '>' => Some("a wildcard ('*' or '>'), which a publish subject cannot hold"),
        c if c.is_whitespace() => Some("whitespace"),
        c if c.is_control() => Some("a control character"),
        _ => None,
    }
}

/// Checks a complete subject: no empty token, no wildcard, no whitespace.
fn check_subject(subject: &str) -> Result<(), String> {
    if let Some(reason) = subject.chars().find_map(bad_char) {
        return Err(format!("it contains {reason}"));
    }
    if subject.split('.').any(str::is_empty) {
        return Err("it has an empty token (a leading, trailing or doubled '.')".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_the_event_type_and_id() {
        let t = SubjectTemplate::parse("events.{type}.{id}").unwrap();
        assert_eq!(
            t.render("evt_1", "order.created").unwrap(),
            "events.order.created.evt_1"
        );
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        for (template, why) in [
            ("", "empty"),
            ("events.{kind}", "unknown placeholder {kind}"),
            ("events.{type", "unclosed"),
            ("events.type}", "unmatched"),
            ("events.*", "wildcard"),
            ("events.>", "wildcard"),
            ("events .{type}", "whitespace"),
            (".events.{type}", "empty token"),
            ("events..{type}", "empty token"),
            ("events.{type}.", "empty token"),
        ] {
            let err = SubjectTemplate::parse(template).unwrap_err();
            assert!(err.contains(why), "{template:?}: {err}");
        }
    }

    #[test]
    fn an_event_that_would_make_an_invalid_subject_is_refused() {
        let t = SubjectTemplate::parse("events.{type}").unwrap();
        assert!(t.render("e", "order created").unwrap_err().contains("whitespace"));
        assert!(t.render("e", "order.>").unwrap_err().contains("wildcard"));
        assert!(t.render("e", "order.").unwrap_err().contains("empty token"));
    }
}
