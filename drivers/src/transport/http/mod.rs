//! What the HTTP transports (webhook, api) share: the reqwest client setup, destination URL
//! checks, static header checks, the SSRF guard, and the translation of a response or an
//! error into the facts of an [`AttemptReport`].
//!
//! | file | holds |
//! |---|---|
//! | `mod.rs` | [`client`], [`parse_url`], [`check_destination`], [`static_header`] |
//! | `ssrf.rs` | the destination guard: [`forbidden_class`](ssrf::forbidden_class) and the filtering resolver |
//! | `observe.rs` | response or error to [`AttemptReport`] facts |

pub(crate) mod observe;
pub(crate) mod ssrf;

use std::net::IpAddr;
use std::time::Duration;

use herald_core::AttemptReport;
use reqwest::header::{HeaderName, HeaderValue};
use url::{Host, Url};

use crate::error::ConfigError;
use ssrf::GuardedResolver;

/// How long an idle keep-alive connection is kept for the next attempt.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// TCP keep-alive probes notice a dead peer on an idle pooled connection.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// The default `user-agent`, so receivers can tell Herald's requests apart.
pub(crate) const DEFAULT_USER_AGENT: &str = concat!("herald/", env!("CARGO_PKG_VERSION"));

/// Headers that belong to HTTP framing or to the client: a static header may not set them.
pub(crate) const FRAMING_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "transfer-encoding",
    "host",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
];

/// The HTTP client of one destination: rustls, a keep-alive pool, HTTP/2 when the server
/// offers it, TCP_NODELAY, and:
///
/// - no redirects: a 3xx is reported as it is (following one would send the payload, and its
///   credentials, somewhere the user did not configure);
/// - no proxy: a proxy would resolve the destination itself, out of reach of the SSRF guard,
///   and an inherited `HTTP_PROXY` silently changes where payloads go;
/// - names resolved through the SSRF guard unless private networks are allowed.
///
/// reqwest's built-in retry stays at its default, which only replays requests an HTTP/2
/// server refused before processing them (`REFUSED_STREAM`, graceful `GOAWAY`), so it never
/// duplicates a delivery. `field` names the configuration in the error.
pub(crate) fn client(
    field: &str,
    user_agent: HeaderValue,
    allow_private_network: bool,
) -> Result<reqwest::Client, ConfigError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .tcp_nodelay(true)
        .tcp_keepalive(TCP_KEEPALIVE)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .user_agent(user_agent);
    if !allow_private_network {
        builder = builder.dns_resolver(GuardedResolver);
    }
    builder
        .build()
        .map_err(|e| ConfigError::invalid(field, format!("cannot create the HTTP client: {e}")))
}

/// Parses and checks a destination URL: absolute, `http` or `https`, with a host, without
/// credentials. Errors name `field` and never repeat the URL: it may hold a token.
pub(crate) fn parse_url(field: &str, raw: &str) -> Result<Url, ConfigError> {
    let bad = |reason: &str| ConfigError::invalid(field, reason);
    let url = Url::parse(raw).map_err(|e| match e {
        url::ParseError::EmptyHost => bad("the URL has no host"),
        e => bad(&format!("not a valid absolute URL ({e})")),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(&format!(
            "the scheme is {:?}; only http and https are supported",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("the URL has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "credentials in the URL are not allowed (they would end up in logs); send them with a static header \
             such as authorization",
        ));
    }
    Ok(url)
}

/// The IP address of an IP-literal host; such hosts skip DNS and the guarded resolver.
pub(crate) fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        Host::Domain(_) => None,
    }
}

/// Refuses an IP-literal destination in a private network when the guard is on (a host
/// name is checked when it resolves, on every connection).
pub(crate) fn check_destination(field: &str, url: &Url, allow_private_network: bool) -> Result<(), ConfigError> {
    match literal_ip(url) {
        Some(ip) if !allow_private_network => ssrf::check_literal(url.host_str().unwrap_or_default(), ip)
            .map_err(|e| ConfigError::invalid(field, e.to_string())),
        _ => Ok(()),
    }
}

/// The report of an attempt refused before any request because the destination is an IP
/// literal in a private network (they skip DNS, so the resolver never sees them).
pub(crate) fn refuse_literal(url: &Url, allow_private_network: bool) -> Option<AttemptReport> {
    let ip = literal_ip(url).filter(|_| !allow_private_network)?;
    ssrf::check_literal(url.host_str().unwrap_or_default(), ip)
        .err()
        .map(|forbidden| observe::refused(&forbidden))
}

/// Validates one static header. The reason names the header but never its value.
pub(crate) fn static_header(name: &str, value: &str, reserved: &[&str]) -> Result<(HeaderName, HeaderValue), String> {
    let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("{name:?} is not a valid header name"))?;
    if FRAMING_HEADERS.contains(&name.as_str()) || reserved.contains(&name.as_str()) {
        return Err(format!(
            "{:?} is set by the transport and cannot be replaced",
            name.as_str()
        ));
    }
    let mut value = HeaderValue::from_str(value).map_err(|_| {
        format!(
            "the value of {:?} is not a valid header value (visible ASCII and spaces only)",
            name.as_str()
        )
    })?;
    // Static headers often carry credentials: keep them out of HTTP/2 header compression tables.
    value.set_sensitive(true);
    Ok((name, value))
}
