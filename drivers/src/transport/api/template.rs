//! URL templates: `https://api.example.com/v1/{type}/events/{id}?source=herald`.
//!
//! Two placeholders exist, `{id}` (the event id) and `{type}` (the event type). They may
//! appear in the path and the query, any number of times; never in the scheme, host or
//! port (the destination must not depend on the event: the SSRF guard and the operator
//! both reason about one host), nor in the fragment (it is never sent). There is no escape
//! for a literal brace: braces are not valid in URLs, so every `{` opens a placeholder.
//!
//! Values are percent-encoded to RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`
//! stay, every other byte becomes `%XX`), so an id such as `a/b?c#d%e` stays inside its
//! path segment or query value. One case cannot be made safe by encoding: a type that fills
//! a whole path segment as `.` or `..` (URL parsers treat `%2E` as a dot too), which would
//! move the request to another path. Such an attempt is refused, never sent elsewhere.

use std::fmt::Write as _;

use url::Url;

use crate::error::ConfigError;
use crate::transport::http;
use crate::transport::template::{Part, Placeholder, tokenize};

/// A validated URL template. The literal parts are kept in the form the URL parser gives
/// them, so rendering is concatenation and the parsed result can be compared with it.
#[derive(Clone)]
pub(super) struct UrlTemplate {
    parts: Vec<Part>,
    /// The template with every placeholder replaced by a marker: scheme, host and port are
    /// those of every rendered URL.
    base: Url,
}

/// Markers stand in for placeholders while the template is parsed: lowercase unreserved
/// characters, which no URL parser changes in any component.
fn marker(index: usize) -> String {
    format!("{MARKER_PREFIX}{index}zz")
}

const MARKER_PREFIX: &str = "zzheraldplaceholder";

impl UrlTemplate {
    /// Parses and checks `raw`; errors name `field` and never repeat the template (its query
    /// may hold a token), only the offending placeholder.
    pub(super) fn parse(field: &str, raw: &str) -> Result<Self, ConfigError> {
        let bad = |reason: String| ConfigError::invalid(field, reason);
        let tokens = tokenize(raw).map_err(bad)?;
        let placeholders: Vec<(usize, Placeholder)> = tokens
            .iter()
            .filter_map(|(at, t)| match t {
                Part::Value(p) => Some((*at, *p)),
                Part::Literal(_) => None,
            })
            .collect();
        if let Some((_, p)) = placeholders.first().filter(|(at, _)| *at < authority_end(raw)) {
            return Err(bad(format!(
                "{} is in the scheme, host or port; placeholders may appear in the path and query only",
                p.name()
            )));
        }
        let mut marked = String::with_capacity(raw.len() + 32 * placeholders.len());
        let mut index = 0;
        for (_, t) in &tokens {
            match t {
                Part::Literal(s) => marked.push_str(s),
                Part::Value(_) => {
                    marked.push_str(&marker(index));
                    index += 1;
                }
            }
        }
        if raw.contains(MARKER_PREFIX) {
            return Err(bad("the template contains text reserved for placeholders".to_owned()));
        }
        let base = http::parse_url(field, &marked)?;
        // A second look, after parsing: the text check above misses URLs without `//`.
        let in_host = (0..placeholders.len()).find(|&i| base.host_str().is_some_and(|h| h.contains(&marker(i))));
        if let Some(i) = in_host {
            return Err(bad(format!(
                "{} is in the scheme, host or port; placeholders may appear in the path and query only",
                placeholders[i].1.name()
            )));
        }
        let in_fragment = (0..placeholders.len()).find(|&i| base.fragment().is_some_and(|f| f.contains(&marker(i))));
        if let Some(i) = in_fragment {
            return Err(bad(format!(
                "{} is in the fragment, which is never sent; placeholders may appear in the path and query only",
                placeholders[i].1.name()
            )));
        }
        let parts = split_markers(base.as_str(), &placeholders)
            .ok_or_else(|| bad("a placeholder is not where the template puts it once the URL is parsed".to_owned()))?;
        let template = UrlTemplate { parts, base };
        // Every literal must survive parsing unchanged, or no attempt could be sent.
        template
            .render("evt-1", "sample")
            .map_err(|_| bad("the URL changes when it is parsed again; write it in its normalized form".to_owned()))?;
        Ok(template)
    }

    /// The URL for one event: the template with `id` and `type` percent-encoded in place.
    /// Fails (naming the placeholder, not the value) if URL normalization would change the
    /// result, which only a `.` or `..` path segment can do.
    pub(super) fn render(&self, id: &str, event_type: &str) -> Result<Url, String> {
        let mut out = String::with_capacity(self.base.as_str().len() + id.len() * 3 + event_type.len() * 3);
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Value(Placeholder::Id) => percent_encode_into(&mut out, id),
                Part::Value(Placeholder::Type) => percent_encode_into(&mut out, event_type),
            }
        }
        let url = Url::parse(&out).map_err(|e| format!("the URL for this event cannot be parsed ({e})"))?;
        if url.as_str() != out {
            return Err(
                "the event's {type} or {id} makes a '.' or '..' path segment, which would send the request to \
                 another path; refused"
                    .to_owned(),
            );
        }
        Ok(url)
    }

    /// Scheme, host and port, shared by every rendered URL.
    pub(super) fn base(&self) -> &Url {
        &self.base
    }
}

/// Where the authority (host and port) of `raw` ends: the first `/`, `?` or `#` after `://`.
/// Without `://`, the URL has no authority in the text (the parser may still find a host,
/// which is checked after parsing).
fn authority_end(raw: &str) -> usize {
    match raw.find("://") {
        Some(i) => {
            let start = i + 3;
            raw[start..].find(['/', '?', '#']).map_or(raw.len(), |j| start + j)
        }
        None => 0,
    }
}

/// Cuts the parsed, marked URL back into literals and placeholders.
fn split_markers(marked: &str, placeholders: &[(usize, Placeholder)]) -> Option<Vec<Part>> {
    let mut parts = Vec::new();
    let mut rest = marked;
    for (i, (_, p)) in placeholders.iter().enumerate() {
        let m = marker(i);
        let at = rest.find(&m)?;
        if at > 0 {
            parts.push(Part::Literal(rest[..at].to_owned()));
        }
        parts.push(Part::Value(*p));
        rest = &rest[at + m.len()..];
    }
    if !rest.is_empty() {
        parts.push(Part::Literal(rest.to_owned()));
    }
    Some(parts)
}

/// Appends `value` percent-encoded: RFC 3986 unreserved characters stay, every other byte
/// (of the UTF-8 encoding) becomes `%XX`.
fn percent_encode_into(out: &mut String, value: &str) {
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<UrlTemplate, ConfigError> {
        UrlTemplate::parse("api.url", raw)
    }

    fn reason(raw: &str) -> String {
        match parse(raw) {
            Ok(_) => panic!("{raw} should be rejected"),
            Err(ConfigError::Invalid { field, reason }) => {
                assert_eq!(field, "api.url", "{raw}");
                reason
            }
            Err(other) => panic!("{other:?}"),
        }
    }

    fn render(raw: &str, id: &str, event_type: &str) -> String {
        parse(raw).unwrap().render(id, event_type).unwrap().to_string()
    }

    #[test]
    fn placeholders_in_path_and_query_are_replaced() {
        assert_eq!(
            render(
                "https://api.example.com/v1/{type}/events/{id}?src=herald&id={id}",
                "evt_1",
                "order.created"
            ),
            "https://api.example.com/v1/order.created/events/evt_1?src=herald&id=evt_1"
        );
        assert_eq!(
            render("http://example.com:8080/x/{id}.json", "e-1", "t"),
            "http://example.com:8080/x/e-1.json"
        );
        assert_eq!(render("https://example.com", "e", "t"), "https://example.com/");
        assert_eq!(
            parse("https://example.com/fixed").unwrap().parts,
            [Part::Literal("https://example.com/fixed".to_owned())]
        );
    }

    #[test]
    fn values_are_percent_encoded_so_they_stay_in_their_segment() {
        assert_eq!(
            render("https://example.com/e/{id}", "a/b?c#d%e&f=g+h", "t"),
            "https://example.com/e/a%2Fb%3Fc%23d%25e%26f%3Dg%2Bh"
        );
        assert_eq!(
            render("https://example.com/e?type={type}", "x", "café au lait"),
            "https://example.com/e?type=caf%C3%A9%20au%20lait"
        );
    }

    #[test]
    fn a_dot_segment_from_a_value_is_refused_not_normalized() {
        let t = parse("https://example.com/api/{type}/events").unwrap();
        for dots in [".", ".."] {
            let e = t.render("e", dots).unwrap_err();
            assert!(e.contains("'..' path segment"), "{e}");
        }
        assert!(t.render("e", "...").is_ok());
        assert!(t.render("e", "order.created").is_ok());
        let q = parse("https://example.com/api?t={type}").unwrap();
        assert_eq!(q.render("e", "..").unwrap().as_str(), "https://example.com/api?t=..");
    }

    #[test]
    fn unknown_placeholders_and_unbalanced_braces_are_rejected() {
        let r = reason("https://example.com/{foo}");
        assert!(r.contains("unknown placeholder {foo}"), "{r}");
        assert!(reason("https://example.com/{}").contains("unknown placeholder {}"));
        assert!(reason("https://example.com/{ID}").contains("unknown placeholder {ID}"));
        assert!(reason("https://example.com/{id").contains("not closed"));
        assert!(reason("https://example.com/{{id}}").contains("not closed"));
        assert!(reason("https://example.com/id}").contains("closes nothing"));
    }

    #[test]
    fn placeholders_in_scheme_host_port_or_fragment_are_rejected() {
        for raw in [
            "https://{type}.example.com/x",
            "https://example.com:{id}/x",
            "{type}://example.com/x",
            "https://{id}/x",
            "https://{id}@example.com/x",
            "http:{id}.example.com/x",
        ] {
            let r = reason(raw);
            assert!(r.contains("scheme, host or port"), "{raw}: {r}");
        }
        assert!(parse("https://example.com?{id}").is_ok());
        let r = reason("https://example.com/x#{id}");
        assert!(r.contains("fragment"), "{r}");
    }

    #[test]
    fn url_errors_are_the_webhook_ones_and_never_echo_the_url() {
        assert!(reason("ftp://example.com/{id}").contains("http and https"));
        assert!(reason("/relative/{id}").contains("not a valid absolute URL"));
        let r = reason("https://user:hunter2@example.com/{id}");
        assert!(r.contains("credentials") && !r.contains("hunter2"), "{r}");
        let r = reason("https://example.com/{nope}?api_key=sekrit");
        assert!(!r.contains("sekrit"), "{r}");
    }

    #[test]
    fn literal_parts_are_kept_in_normalized_form() {
        // The parser encodes a space and resolves dot segments of the template itself.
        assert_eq!(
            render("https://Example.COM/a b/../c d/{id}", "e", "t"),
            "https://example.com/c%20d/e"
        );
    }

    #[test]
    fn the_marker_text_itself_is_refused() {
        assert!(reason("https://example.com/zzheraldplaceholder0zz").contains("reserved"));
    }
}
