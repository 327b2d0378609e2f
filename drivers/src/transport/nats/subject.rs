//! Subject templates: `events.{type}` or `orders.{id}`, checked once when the port is built
//! and rendered per event. NATS subjects are dot-separated tokens; a publish subject may
//! not hold wildcards (`*`, `>`), whitespace or empty tokens, so a rendered subject that
//! would is refused at the attempt instead of being published somewhere else.

use std::fmt;

use crate::transport::template::{Part, render_plain, tokenize};

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
        let parts: Vec<Part> = tokenize(template)
            .map_err(|why| format!("subject template {template:?}: {why}"))?
            .into_iter()
            .map(|(_, part)| part)
            .collect();
        for part in &parts {
            if let Part::Literal(text) = part
                && let Some(reason) = text.chars().find_map(bad_char)
            {
                return Err(format!("subject template {template:?} contains {reason}"));
            }
        }
        let parsed = SubjectTemplate {
            source: template.to_owned(),
            parts,
        };
        // The literal structure alone must already be a valid subject: render with
        // placeholder values that are valid tokens and check.
        check_subject(&render_plain(&parsed.parts, "i", "t"))
            .map_err(|why| format!("subject template {template:?}: {why}"))?;
        Ok(parsed)
    }

    /// The template as configured.
    pub(super) fn as_str(&self) -> &str {
        &self.source
    }

    /// The subject for one event, or why it cannot be published to.
    pub(super) fn render(&self, id: &str, event_type: &str) -> Result<String, String> {
        let subject = render_plain(&self.parts, id, event_type);
        check_subject(&subject).map_err(|why| format!("the subject {subject:?} for this event is invalid: {why}"))?;
        Ok(subject)
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
            ("events.{type", "unbalanced braces"),
            ("events.type}", "unbalanced braces"),
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
