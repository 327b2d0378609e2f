//! Where an AMQP port publishes: the broker URL and credentials, the exchange and the
//! routing-key template — validated once, when the port is built, so a bad value fails at
//! start-up instead of on every attempt.

use std::fmt;
use std::str::FromStr as _;

use lapin::uri::AMQPUri;
use url::{Host, Url};

use super::routing::{MAX_SHORT_STRING, RoutingKey};
use crate::error::ConfigError;
use crate::transport::secret::{Source, resolve};

/// The routing key used unless configured otherwise: the event type, which topic
/// exchanges can route on (`order.*`).
pub const DEFAULT_ROUTING_KEY: &str = "{type}";

/// A validated RabbitMQ destination: build it with [`AmqpConfig::builder`], then hand it to
/// [`PortConfig::amqp`](crate::PortConfig::amqp) (or [`AmqpTransport::new`](super::AmqpTransport::new)).
///
/// `Debug` shows the host, port, virtual host, exchange and routing-key template: never the
/// user or the password.
#[derive(Clone)]
pub struct AmqpConfig {
    pub(super) uri: AMQPUri,
    pub(super) exchange: String,
    pub(super) routing_key: RoutingKey,
}

impl AmqpConfig {
    /// Starts a configuration for the broker at `url`:
    /// `amqp://USER:PASSWORD@HOST:PORT/VHOST` (or `amqps://` for TLS; the password may come
    /// from [`AmqpConfigBuilder::password_env`] instead). Nothing is checked until
    /// [`AmqpConfigBuilder::build`].
    pub fn builder(url: &str) -> AmqpConfigBuilder {
        AmqpConfigBuilder::new(Source::Value(url.to_owned()))
    }

    /// Like [`Self::builder`], with the whole URL (credentials included) read from the
    /// environment variable `var` when the configuration is built.
    pub fn builder_url_env(var: &str) -> AmqpConfigBuilder {
        AmqpConfigBuilder::new(Source::Env(var.to_owned()))
    }

    /// The broker's host.
    pub fn host(&self) -> &str {
        &self.uri.authority.host
    }

    /// The broker's port.
    pub fn port(&self) -> u16 {
        self.uri.authority.port
    }

    /// The virtual host.
    pub fn vhost(&self) -> &str {
        &self.uri.vhost
    }

    /// The exchange every event is published to (`""`: the default exchange, which routes
    /// to the queue named by the routing key).
    pub fn exchange(&self) -> &str {
        &self.exchange
    }

    /// The routing-key template.
    pub fn routing_key(&self) -> &str {
        self.routing_key.as_str()
    }

    /// Whether the connection uses TLS (`amqps`).
    pub fn tls(&self) -> bool {
        self.uri.scheme == lapin::uri::AMQPScheme::AMQPS
    }
}

impl fmt::Debug for AmqpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpConfig")
            .field("host", &self.host())
            .field("port", &self.port())
            .field("tls", &self.tls())
            .field("vhost", &self.vhost())
            .field("exchange", &self.exchange)
            .field("routing_key", &self.routing_key.as_str())
            .finish_non_exhaustive()
    }
}

/// Collects an [`AmqpConfig`]; see [`AmqpConfig::builder`]. Every value is validated by
/// [`Self::build`], and errors name the field (`amqp.url`, `amqp.url_env`,
/// `amqp.password_env`, `amqp.exchange`, `amqp.routing_key`) but never a credential.
#[derive(Clone)]
#[must_use]
pub struct AmqpConfigBuilder {
    url: Source,
    password_env: Option<String>,
    exchange: String,
    routing_key: String,
}

impl AmqpConfigBuilder {
    fn new(url: Source) -> Self {
        AmqpConfigBuilder {
            url,
            password_env: None,
            exchange: String::new(),
            routing_key: DEFAULT_ROUTING_KEY.to_owned(),
        }
    }

    /// The exchange to publish to (default `""`, the default exchange). Herald does not
    /// declare it: an exchange that does not exist fails every attempt permanently
    /// (`no_exchange`).
    pub fn exchange(mut self, name: impl Into<String>) -> Self {
        self.exchange = name.into();
        self
    }

    /// The routing key, with optional `{type}` and `{id}` placeholders (default `{type}`).
    pub fn routing_key(mut self, template: impl Into<String>) -> Self {
        self.routing_key = template.into();
        self
    }

    /// Reads the password from the environment variable `var` when [`Self::build`] runs;
    /// the URL then names the user only (`amqp://USER@HOST/VHOST`).
    pub fn password_env(mut self, var: impl Into<String>) -> Self {
        self.password_env = Some(var.into());
        self
    }

    /// Validates everything, reads the environment, and builds the configuration.
    pub fn build(self) -> Result<AmqpConfig, ConfigError> {
        let (url_field, text) = match &self.url {
            Source::Value(_) => ("amqp.url", resolve("amqp.url", &self.url, "broker URL")?),
            Source::Env(_) => ("amqp.url_env", resolve("amqp.url_env", &self.url, "broker URL")?),
        };
        let (mut uri, password_in_url) = parse_url(url_field, &text)?;
        match (password_in_url, &self.password_env) {
            (true, Some(_)) => {
                return Err(ConfigError::invalid(
                    "amqp.password_env",
                    "the URL holds a password too; give it in one place",
                ));
            }
            (true, None) => {}
            (false, Some(var)) => {
                uri.authority.userinfo.password =
                    resolve("amqp.password_env", &Source::Env(var.clone()), "broker password")?;
            }
            (false, None) => {
                return Err(ConfigError::invalid(
                    "amqp.password_env",
                    "missing: the URL has no password; put it in the URL (amqp://USER:PASSWORD@HOST/VHOST) or \
                     name an environment variable here",
                ));
            }
        }
        check_exchange(&self.exchange)?;
        let routing_key = RoutingKey::parse("amqp.routing_key", &self.routing_key)?;
        Ok(AmqpConfig {
            uri,
            exchange: self.exchange,
            routing_key,
        })
    }
}

impl fmt::Debug for AmqpConfigBuilder {
    /// Shows names only: the URL is not validated yet and may hold a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = match &self.url {
            Source::Value(_) => "[redacted]".to_owned(),
            Source::Env(var) => format!("from environment variable {var}"),
        };
        f.debug_struct("AmqpConfigBuilder")
            .field("url", &format_args!("{url}"))
            .field("password_env", &self.password_env)
            .field("exchange", &self.exchange)
            .field("routing_key", &self.routing_key)
            .finish()
    }
}

/// The URL's scheme, host, port, user, virtual host and query (`heartbeat`,
/// `connection_timeout`, `frame_max`, `channel_max`, `auth_mechanism`), and whether it holds
/// a password. Errors never repeat the URL: it may hold a password.
fn parse_url(field: &str, text: &str) -> Result<(AMQPUri, bool), ConfigError> {
    let bad = |reason: String| ConfigError::invalid(field, reason);
    let url = Url::parse(text).map_err(|e| bad(format!("not a valid URL ({e})")))?;
    if !matches!(url.scheme(), "amqp" | "amqps") {
        return Err(bad(format!(
            "the scheme is {:?}; expected \"amqp\" or \"amqps\" (TLS)",
            url.scheme()
        )));
    }
    // amq-protocol's parser reads the host with `Url::domain`, which is empty for an IP
    // literal (and then falls back to `localhost`): the host is taken from `url` instead.
    let host = match url.host() {
        Some(Host::Domain(d)) if !d.is_empty() => d.to_owned(),
        Some(Host::Ipv4(ip)) => ip.to_string(),
        Some(Host::Ipv6(ip)) => ip.to_string(),
        _ => return Err(bad("no host; expected amqp://USER:PASSWORD@HOST:PORT/VHOST".to_owned())),
    };
    if url.fragment().is_some() {
        return Err(bad("a fragment (#...) means nothing in a broker URL".to_owned()));
    }
    if url.username().is_empty() {
        return Err(bad(
            "missing credentials: the URL names no user (amqp://USER:PASSWORD@HOST/VHOST, or amqp://USER@HOST/VHOST \
             with password_env)"
                .to_owned(),
        ));
    }
    // amq-protocol percent-decodes the user, password and virtual host; its messages do not
    // repeat the text once it parsed as a URL above.
    let mut uri = AMQPUri::from_str(text).map_err(|e| bad(format!("invalid path or query ({e})")))?;
    uri.authority.host = host;
    if uri.vhost.len() > MAX_SHORT_STRING {
        return Err(bad(format!(
            "the virtual host is {} bytes; AMQP allows at most {MAX_SHORT_STRING}",
            uri.vhost.len()
        )));
    }
    Ok((uri, url.password().is_some()))
}

/// RabbitMQ's rule for names: at most 255 bytes of ASCII letters, digits, `-`, `_`, `.`
/// and `:` (the empty name is the default exchange).
fn check_exchange(name: &str) -> Result<(), ConfigError> {
    let bad = |reason: String| ConfigError::invalid("amqp.exchange", reason);
    if name.len() > MAX_SHORT_STRING {
        return Err(bad(format!(
            "{} bytes; an exchange name is at most {MAX_SHORT_STRING}",
            name.len()
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
    {
        return Err(bad(format!(
            "{c:?} is not allowed; exchange names are ASCII letters, digits, '-', '_', '.' and ':'"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

    fn field(builder: AmqpConfigBuilder) -> String {
        let e = builder.build().expect_err("the configuration should be rejected");
        e.field().unwrap_or_default().to_owned()
    }

    #[test]
    fn a_url_gives_host_port_vhost_and_credentials() {
        let c = AmqpConfig::builder(URL).exchange("orders").build().unwrap();
        assert_eq!((c.host(), c.port(), c.vhost()), ("127.0.0.1", 5672, "/"));
        assert_eq!((c.exchange(), c.routing_key()), ("orders", "{type}"));
        assert_eq!(c.uri.authority.userinfo.username, "guest");
        assert_eq!(c.uri.authority.userinfo.password, "guest");
        assert!(!c.tls());
        let c = AmqpConfig::builder("amqps://u:p%40ss@broker.example.com/prod?heartbeat=10")
            .build()
            .unwrap();
        assert_eq!((c.host(), c.port(), c.vhost()), ("broker.example.com", 5671, "prod"));
        assert_eq!(c.uri.authority.userinfo.password, "p@ss");
        assert_eq!(c.uri.query.heartbeat, Some(10));
        assert!(c.tls());
        let c = AmqpConfig::builder("amqp://u:p@[::1]:5673").build().unwrap();
        assert_eq!((c.host(), c.port(), c.vhost()), ("::1", 5673, "/"));
    }

    #[test]
    fn url_errors_name_the_url_field_and_never_the_password() {
        for bad in [
            "http://u:sekrit@host/",
            "amqp://u:sekrit@/vhost",
            "not a url sekrit",
            "amqp://u:sekrit@host/v#frag",
            "amqp://u:sekrit@host/v?heartbeat=soon",
            "amqp://host/v",
        ] {
            let e = AmqpConfig::builder(bad).build().unwrap_err();
            assert_eq!(e.field(), Some("amqp.url"), "{bad}");
            assert!(!e.to_string().contains("sekrit"), "{e}");
        }
        let e = AmqpConfig::builder("ftp://u:p@h/").build().unwrap_err();
        assert!(e.to_string().contains("\"ftp\""), "{e}");
        let e = AmqpConfig::builder("amqp://h/").build().unwrap_err();
        assert!(e.to_string().contains("missing credentials"), "{e}");
    }

    #[test]
    fn the_password_comes_from_the_url_or_the_environment_never_both_nor_neither() {
        // Variable names unique to this test: the environment is shared by the process.
        let e = AmqpConfig::builder("amqp://u@h/")
            .password_env("HERALD_TEST_AMQP_PASSWORD_UNSET_1")
            .build()
            .unwrap_err();
        assert_eq!(e.field(), Some("amqp.password_env"));
        assert!(
            e.to_string()
                .contains("environment variable HERALD_TEST_AMQP_PASSWORD_UNSET_1 is not set"),
            "{e}"
        );
        assert_eq!(field(AmqpConfig::builder("amqp://u@h/")), "amqp.password_env");
        assert_eq!(
            field(AmqpConfig::builder("amqp://u:p@h/").password_env("PATH")),
            "amqp.password_env"
        );
        // PATH is set in every test environment; its value stands in for a password.
        let c = AmqpConfig::builder("amqp://u@h/").password_env("PATH").build().unwrap();
        assert_eq!(c.uri.authority.userinfo.password, std::env::var("PATH").unwrap());
    }

    #[test]
    fn a_url_from_the_environment_names_the_url_env_field() {
        let e = AmqpConfig::builder_url_env("HERALD_TEST_AMQP_URL_UNSET_1")
            .build()
            .unwrap_err();
        assert_eq!(e.field(), Some("amqp.url_env"));
        assert!(e.to_string().contains("HERALD_TEST_AMQP_URL_UNSET_1"), "{e}");
        // PATH holds no URL: the parse error names the env field and not the value.
        let e = AmqpConfig::builder_url_env("PATH").build().unwrap_err();
        assert_eq!(e.field(), Some("amqp.url_env"));
        assert!(!e.to_string().contains(&std::env::var("PATH").unwrap()), "{e}");
    }

    #[test]
    fn exchange_names_follow_rabbitmqs_rules() {
        assert!(AmqpConfig::builder(URL).exchange("").build().is_ok());
        assert!(AmqpConfig::builder(URL).exchange("amq.topic").build().is_ok());
        assert!(AmqpConfig::builder(URL).exchange("a-b_c.d:e").build().is_ok());
        for bad in ["has space".to_owned(), "é".to_owned(), "x".repeat(256)] {
            assert_eq!(
                field(AmqpConfig::builder(URL).exchange(bad.as_str())),
                "amqp.exchange",
                "{bad}"
            );
        }
    }

    #[test]
    fn routing_key_templates_are_checked_at_build() {
        let c = AmqpConfig::builder(URL)
            .routing_key("orders.{type}.{id}")
            .build()
            .unwrap();
        assert_eq!(c.routing_key(), "orders.{type}.{id}");
        for bad in ["{tenant}", "orders.{type", "orders}"] {
            assert_eq!(
                field(AmqpConfig::builder(URL).routing_key(bad)),
                "amqp.routing_key",
                "{bad}"
            );
        }
    }

    #[test]
    fn debug_shows_where_but_never_who_or_the_password() {
        let c = AmqpConfig::builder("amqp://someuser:sekritpw@broker.example.com/prod")
            .exchange("orders")
            .routing_key("o.{type}")
            .build()
            .unwrap();
        let dbg = format!("{c:?}");
        for shown in ["broker.example.com", "prod", "orders", "o.{type}"] {
            assert!(dbg.contains(shown), "{shown} missing from {dbg}");
        }
        for hidden in ["sekritpw", "someuser"] {
            assert!(!dbg.contains(hidden), "{hidden} in {dbg}");
        }
        let b = AmqpConfig::builder("amqp://someuser:sekritpw@broker.example.com/prod");
        assert!(!format!("{b:?}").contains("sekritpw"));
    }
}
