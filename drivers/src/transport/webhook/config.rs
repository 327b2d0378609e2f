//! What a webhook port sends where: the URL, signing secrets, CloudEvents mode, static headers
//! and the SSRF opt-out — validated once, when the port is built, so a bad value fails at
//! start-up instead of on every attempt.

use std::fmt;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

use super::cloudevents;
use super::signature::WebhookSecret;
use crate::error::ConfigError;
use crate::transport::http::{self, DEFAULT_USER_AGENT};

/// Headers the transport sets itself; a static header may not replace them, because that
/// would break signing or CloudEvents (HTTP framing headers are refused too, see
/// [`http::FRAMING_HEADERS`]).
const RESERVED_HEADERS: &[&str] = &[
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "ce-id",
    "ce-source",
    "ce-type",
    "ce-specversion",
    "ce-time",
    "user-agent",
];

/// A validated webhook destination: build it with [`WebhookConfig::builder`], then hand it to
/// [`WebhookTransport::new`](super::WebhookTransport::new).
///
/// `Debug` shows neither the secrets, the static header values (they often carry tokens) nor
/// the URL's path and query (some receivers put a token there).
#[derive(Clone)]
pub struct WebhookConfig {
    pub(super) url: Url,
    pub(super) secrets: Vec<WebhookSecret>,
    pub(super) cloudevents_source: Option<HeaderValue>,
    pub(super) headers: HeaderMap,
    pub(super) allow_private_network: bool,
    pub(super) user_agent: HeaderValue,
}

impl WebhookConfig {
    /// Starts a configuration for `url`; nothing is checked until
    /// [`WebhookConfigBuilder::build`].
    pub fn builder(url: &str) -> WebhookConfigBuilder {
        WebhookConfigBuilder {
            url: url.to_owned(),
            secrets: Vec::new(),
            cloudevents_source: None,
            headers: Vec::new(),
            allow_private_network: false,
            user_agent: None,
        }
    }

    /// The destination URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// How many signing secrets are configured (each adds one signature to every request).
    pub fn secret_count(&self) -> usize {
        self.secrets.len()
    }

    /// Whether private, loopback and other non-public destinations are allowed.
    pub fn allows_private_network(&self) -> bool {
        self.allow_private_network
    }

    /// The host for logs and errors: never the path or query, which may carry tokens.
    pub(super) fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field(
                "url",
                &format_args!("{}/[path redacted]", self.url.origin().ascii_serialization()),
            )
            .field("secrets", &format_args!("[redacted; {}]", self.secrets.len()))
            .field("cloudevents_source", &self.cloudevents_source)
            .field(
                "headers",
                &format_args!("{:?} (values redacted)", header_names(&self.headers)),
            )
            .field("allow_private_network", &self.allow_private_network)
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

fn header_names(headers: &HeaderMap) -> Vec<&str> {
    headers.keys().map(HeaderName::as_str).collect()
}

/// Collects a [`WebhookConfig`]; see [`WebhookConfig::builder`]. Every value is validated by
/// [`Self::build`], and errors name the field (`webhook.url`, `webhook.secrets[1]`, ...).
#[derive(Clone)]
#[must_use]
pub struct WebhookConfigBuilder {
    url: String,
    secrets: Vec<String>,
    cloudevents_source: Option<String>,
    headers: Vec<(String, String)>,
    allow_private_network: bool,
    user_agent: Option<String>,
}

impl WebhookConfigBuilder {
    /// Adds a signing secret (`whsec_` + base64). Add several to rotate keys: every request
    /// then carries one signature per secret, so receivers can switch at their own pace.
    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        self.secrets.push(secret.into());
        self
    }

    /// Sends CloudEvents HTTP binary-mode headers (`ce-id`, `ce-source`, `ce-type`,
    /// `ce-specversion`, `ce-time`), with `source` as `ce-source`, for receivers that speak
    /// CloudEvents.
    pub fn cloudevents(mut self, source: impl Into<String>) -> Self {
        self.cloudevents_source = Some(source.into());
        self
    }

    /// Adds a header sent with every request (e.g. an `authorization` token the receiver
    /// expects). Its value is never logged or shown by `Debug`.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Allows loopback, private, link-local and other non-public destinations. Off by default:
    /// webhook URLs often come from users, and such addresses reach internal services
    /// (SSRF). Turn it on for receivers inside your own network, and in tests.
    pub fn allow_private_network(mut self, allow: bool) -> Self {
        self.allow_private_network = allow;
        self
    }

    /// Replaces the default `user-agent` (`herald/<version>`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Validates everything and builds the configuration.
    pub fn build(self) -> Result<WebhookConfig, ConfigError> {
        let url = http::parse_url("webhook.url", &self.url)?;
        http::check_destination("webhook.url", &url, self.allow_private_network)?;
        let secrets = self
            .secrets
            .iter()
            .enumerate()
            .map(|(i, s)| {
                WebhookSecret::parse(s)
                    .map_err(|e| ConfigError::invalid(format!("webhook.secrets[{i}]"), e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let cloudevents_source = self
            .cloudevents_source
            .as_deref()
            .map(|source| {
                cloudevents::source_header(source)
                    .map_err(|reason| ConfigError::invalid("webhook.cloudevents.source", reason))
            })
            .transpose()?;
        let mut headers = HeaderMap::new();
        for (i, (name, value)) in self.headers.iter().enumerate() {
            let (name, value) = http::static_header(name, value, RESERVED_HEADERS)
                .map_err(|r| ConfigError::invalid(format!("webhook.headers[{i}]"), r))?;
            headers.append(name, value);
        }
        let user_agent = match &self.user_agent {
            None => HeaderValue::from_static(DEFAULT_USER_AGENT),
            Some(ua) => HeaderValue::from_str(ua).map_err(|_| {
                ConfigError::invalid(
                    "webhook.user_agent",
                    "not a valid header value (visible ASCII and spaces only)",
                )
            })?,
        };
        Ok(WebhookConfig {
            url,
            secrets,
            cloudevents_source,
            headers,
            allow_private_network: self.allow_private_network,
            user_agent,
        })
    }
}

impl fmt::Debug for WebhookConfigBuilder {
    /// Shows counts and names only: the URL is not validated yet and may hold credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfigBuilder")
            .field("secrets", &format_args!("[redacted; {}]", self.secrets.len()))
            .field("cloudevents_source", &self.cloudevents_source)
            .field(
                "headers",
                &self.headers.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>(),
            )
            .field("allow_private_network", &self.allow_private_network)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

    fn error(builder: WebhookConfigBuilder) -> ConfigError {
        builder.build().expect_err("the configuration should be rejected")
    }

    fn field(builder: WebhookConfigBuilder) -> String {
        error(builder).field().unwrap_or_default().to_owned()
    }

    #[test]
    fn a_valid_configuration_builds() {
        let c = WebhookConfig::builder("https://hooks.example.com/in?token=abc")
            .secret(SECRET)
            .cloudevents("/herald/orders")
            .header("authorization", "Bearer t0ken")
            .build()
            .unwrap();
        assert_eq!(c.url().as_str(), "https://hooks.example.com/in?token=abc");
        assert_eq!(c.secret_count(), 1);
        assert!(!c.allows_private_network());
        assert_eq!(c.user_agent, DEFAULT_USER_AGENT);
    }

    #[test]
    fn a_non_http_scheme_is_rejected_naming_the_url_field() {
        let e = error(WebhookConfig::builder("ftp://example.com/x"));
        assert_eq!(e.field(), Some("webhook.url"));
        assert!(e.to_string().contains("http and https"), "{e}");
    }

    #[test]
    fn an_unparsable_or_relative_url_is_rejected() {
        assert_eq!(field(WebhookConfig::builder("not a url")), "webhook.url");
        assert_eq!(field(WebhookConfig::builder("/relative/path")), "webhook.url");
    }

    #[test]
    fn a_url_without_host_is_rejected() {
        for url in ["http://", "https://:443/x", "unix:/var/run/x.sock"] {
            let e = error(WebhookConfig::builder(url));
            assert_eq!(e.field(), Some("webhook.url"), "{url}");
        }
        let e = error(WebhookConfig::builder("http://"));
        assert!(e.to_string().contains("no host"), "{e}");
    }

    #[test]
    fn credentials_in_the_url_are_rejected_without_echoing_them() {
        for url in ["https://user:hunter2@example.com/", "https://hunter2@example.com/"] {
            let e = error(WebhookConfig::builder(url));
            assert_eq!(e.field(), Some("webhook.url"));
            assert!(e.to_string().contains("credentials"), "{e}");
            assert!(!e.to_string().contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn a_private_ip_literal_is_rejected_at_build_unless_allowed() {
        for url in [
            "http://127.0.0.1:8080/",
            "http://10.1.2.3/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://0x7f.1/",
        ] {
            let e = error(WebhookConfig::builder(url));
            assert_eq!(e.field(), Some("webhook.url"), "{url}");
            assert!(e.to_string().contains("not a public address"), "{url}: {e}");
            assert!(
                WebhookConfig::builder(url).allow_private_network(true).build().is_ok(),
                "{url}"
            );
        }
    }

    #[test]
    fn bad_secrets_name_their_index_and_never_the_secret() {
        let e = error(
            WebhookConfig::builder("https://example.com")
                .secret(SECRET)
                .secret("sk_live_abcdef"),
        );
        assert_eq!(e.field(), Some("webhook.secrets[1]"));
        assert!(e.to_string().contains("whsec_"), "{e}");
        assert!(!e.to_string().contains("sk_live_abcdef"), "{e}");

        let e = error(WebhookConfig::builder("https://example.com").secret("whsec_not*base64*at*all"));
        assert_eq!(e.field(), Some("webhook.secrets[0]"));
        assert!(e.to_string().contains("base64"), "{e}");
        assert!(!e.to_string().contains("not*base64"), "{e}");
    }

    #[test]
    fn bad_static_headers_name_their_index_and_never_the_value() {
        let e = error(WebhookConfig::builder("https://example.com").header("bad header", "v"));
        assert_eq!(e.field(), Some("webhook.headers[0]"));

        let e = error(
            WebhookConfig::builder("https://example.com")
                .header("x-ok", "fine")
                .header("authorization", "Bearer sekrit\n"),
        );
        assert_eq!(e.field(), Some("webhook.headers[1]"));
        assert!(!e.to_string().contains("sekrit"), "{e}");
    }

    #[test]
    fn static_headers_cannot_replace_the_transports_own() {
        for name in ["webhook-signature", "Content-Type", "ce-id", "host"] {
            let e = error(WebhookConfig::builder("https://example.com").header(name, "x"));
            assert_eq!(e.field(), Some("webhook.headers[0]"), "{name}");
            assert!(e.to_string().contains("set by the transport"), "{e}");
        }
    }

    #[test]
    fn a_bad_user_agent_or_cloudevents_source_is_rejected() {
        assert_eq!(
            field(WebhookConfig::builder("https://example.com").user_agent("bad\nagent")),
            "webhook.user_agent"
        );
        assert_eq!(
            field(WebhookConfig::builder("https://example.com").cloudevents("")),
            "webhook.cloudevents.source"
        );
    }

    #[test]
    fn debug_shows_no_secret_header_value_or_url_path() {
        let c = WebhookConfig::builder("https://hooks.example.com/t/pathtoken?q=querytoken")
            .secret(SECRET)
            .secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .header("authorization", "Bearer headertoken")
            .build()
            .unwrap();
        let dbg = format!("{c:?}");
        for leak in [
            "C2FVsBQIhrscChlQIMV",
            "MfKQ9r8GKYqrTwjUPD8",
            "whsec_",
            "headertoken",
            "pathtoken",
            "querytoken",
        ] {
            assert!(!dbg.contains(leak), "{leak} in {dbg}");
        }
        assert!(dbg.contains("secrets: [redacted; 2]"), "{dbg}");
        assert!(dbg.contains("authorization"), "{dbg}");
        assert!(dbg.contains("https://hooks.example.com"), "{dbg}");

        let builder_dbg = format!("{:?}", WebhookConfig::builder("https://example.com").secret(SECRET));
        assert!(!builder_dbg.contains("C2FVsBQIhrscChlQIMV"), "{builder_dbg}");
    }
}
