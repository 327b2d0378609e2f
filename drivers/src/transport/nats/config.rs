//! What a NATS port publishes where: the servers, the subject template, credentials and a
//! connection name — validated once, when the port is built, so a bad value fails at
//! start-up instead of on every attempt.

use std::fmt;

use super::subject::SubjectTemplate;
use crate::error::ConfigError;
use crate::transport::secret::{Source, resolve};

#[derive(Clone)]
enum AuthSpec {
    Token(Source),
    UserPassword { user: String, password: Source },
}

/// Credentials resolved at build; never shown.
#[derive(Clone)]
pub(super) enum Credentials {
    Token(String),
    UserPassword(String, String),
}

/// A validated NATS JetStream destination: build it with [`NatsConfig::builder`], then hand
/// it to [`PortConfig::nats`](crate::PortConfig::nats).
///
/// `Debug` shows the servers without credentials, the subject template and the connection
/// name; never a token or a password.
#[derive(Clone)]
pub struct NatsConfig {
    pub(super) servers: Vec<async_nats::ServerAddr>,
    pub(super) subject: SubjectTemplate,
    pub(super) credentials: Option<Credentials>,
    pub(super) connection_name: String,
}

impl NatsConfig {
    /// Starts a configuration for the server at `url` (`nats://host:port`, or `tls://` for
    /// TLS); [`NatsConfigBuilder::server`] adds more servers of the same cluster. Nothing is
    /// checked until [`NatsConfigBuilder::build`].
    pub fn builder(url: &str) -> NatsConfigBuilder {
        NatsConfigBuilder {
            servers: vec![url.to_owned()],
            subject: None,
            auth: None,
            connection_name: "herald".to_owned(),
        }
    }

    /// The subject template as configured.
    pub fn subject(&self) -> &str {
        self.subject.as_str()
    }

    /// The servers as `host:port`, without credentials.
    pub fn servers(&self) -> Vec<String> {
        self.servers.iter().map(host_port).collect()
    }

    /// The first server as `host:port`, for logs and attempt details.
    pub(super) fn first_server(&self) -> String {
        self.servers.first().map(host_port).unwrap_or_default()
    }
}

impl fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsConfig")
            .field("servers", &self.servers())
            .field("subject", &self.subject)
            .field(
                "credentials",
                &match self.credentials {
                    None => "none",
                    Some(Credentials::Token(_)) => "token",
                    Some(Credentials::UserPassword(..)) => "user and password",
                },
            )
            .field("connection_name", &self.connection_name)
            .finish()
    }
}

/// A server as `host:port`: never its credentials.
fn host_port(server: &async_nats::ServerAddr) -> String {
    format!("{}:{}", server.host(), server.port())
}

/// Builds a [`NatsConfig`]; see [`NatsConfig::builder`].
#[must_use]
pub struct NatsConfigBuilder {
    servers: Vec<String>,
    subject: Option<String>,
    auth: Option<AuthSpec>,
    connection_name: String,
}

impl fmt::Debug for NatsConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsConfigBuilder")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl NatsConfigBuilder {
    /// Adds another server of the same cluster (the client fails over between them).
    pub fn server(mut self, url: &str) -> Self {
        self.servers.push(url.to_owned());
        self
    }

    /// The subject to publish to (required): a NATS subject with optional `{type}` and
    /// `{id}` placeholders, e.g. `events.{type}`. A JetStream stream must capture it.
    pub fn subject(mut self, template: &str) -> Self {
        self.subject = Some(template.to_owned());
        self
    }

    /// Authenticates with this token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.auth = Some(AuthSpec::Token(Source::Value(token.into())));
        self
    }

    /// Authenticates with the token in the environment variable `var`, read when
    /// [`Self::build`] runs.
    pub fn token_env(mut self, var: impl Into<String>) -> Self {
        self.auth = Some(AuthSpec::Token(Source::Env(var.into())));
        self
    }

    /// Authenticates with a user and password.
    pub fn user_password(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth = Some(AuthSpec::UserPassword {
            user: user.into(),
            password: Source::Value(password.into()),
        });
        self
    }

    /// Authenticates as `user` with the password in the environment variable `var`, read
    /// when [`Self::build`] runs.
    pub fn user_password_env(mut self, user: impl Into<String>, var: impl Into<String>) -> Self {
        self.auth = Some(AuthSpec::UserPassword {
            user: user.into(),
            password: Source::Env(var.into()),
        });
        self
    }

    /// The connection name the server shows in its monitoring (default `herald`).
    pub fn connection_name(mut self, name: impl Into<String>) -> Self {
        self.connection_name = name.into();
        self
    }

    /// Checks everything; errors name the field (`nats.url`, `nats.subject`, `nats.token`,
    /// `nats.password`, `nats.connection_name`), never a secret's value.
    pub fn build(self) -> Result<NatsConfig, ConfigError> {
        let servers = self
            .servers
            .iter()
            .map(|url| parse_server(url))
            .collect::<Result<Vec<_>, _>>()?;
        let template = self
            .subject
            .ok_or_else(|| ConfigError::invalid("nats.subject", "a subject is required, e.g. \"events.{type}\""))?;
        let subject = SubjectTemplate::parse(&template).map_err(|why| ConfigError::invalid("nats.subject", why))?;
        let credentials = match self.auth {
            None => None,
            Some(AuthSpec::Token(source)) => Some(Credentials::Token(resolve("nats.token", &source, "token")?)),
            Some(AuthSpec::UserPassword { user, password }) => {
                if user.is_empty() {
                    return Err(ConfigError::invalid("nats.user", "the user must not be empty"));
                }
                Some(Credentials::UserPassword(
                    user,
                    resolve("nats.password", &password, "password")?,
                ))
            }
        };
        if self.connection_name.is_empty() || self.connection_name.chars().any(char::is_control) {
            return Err(ConfigError::invalid(
                "nats.connection_name",
                "must be non-empty printable text",
            ));
        }
        Ok(NatsConfig {
            servers,
            subject,
            credentials,
            connection_name: self.connection_name,
        })
    }
}

/// Parses one server URL; the error never repeats the URL (it may hold a password).
fn parse_server(url: &str) -> Result<async_nats::ServerAddr, ConfigError> {
    let bad = |why: &str| ConfigError::invalid("nats.url", why.to_owned());
    let parsed = url::Url::parse(url).map_err(|e| bad(&format!("not a URL ({e})")))?;
    match parsed.scheme() {
        "nats" | "tls" => {}
        other => {
            return Err(bad(&format!(
                "unsupported scheme {other:?}; expected \"nats\" or \"tls\""
            )));
        }
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("the URL has no host"));
    }
    if parsed.path().len() > 1 || parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("a NATS server URL has no path, query or fragment"));
    }
    async_nats::ServerAddr::from_url(parsed).map_err(|e| bad(&e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(r: Result<NatsConfig, ConfigError>) -> String {
        r.unwrap_err().field().unwrap_or_default().to_owned()
    }

    #[test]
    fn a_full_configuration_builds() {
        let c = NatsConfig::builder("nats://127.0.0.1:4222")
            .server("tls://nats-2.example.com:4443")
            .subject("events.{type}")
            .token("s3cret")
            .connection_name("billing")
            .build()
            .unwrap();
        assert_eq!(c.servers(), ["127.0.0.1:4222", "nats-2.example.com:4443"]);
        assert_eq!(c.subject(), "events.{type}");
    }

    #[test]
    fn each_bad_field_is_named() {
        let b = || NatsConfig::builder("nats://127.0.0.1:4222").subject("events.{type}");
        assert_eq!(
            field(NatsConfig::builder("http://x:4222").subject("a").build()),
            "nats.url"
        );
        assert_eq!(field(NatsConfig::builder("nats://").subject("a").build()), "nats.url");
        assert_eq!(
            field(NatsConfig::builder("nats://x/path").subject("a").build()),
            "nats.url"
        );
        assert_eq!(field(NatsConfig::builder("nats://x:4222").build()), "nats.subject");
        assert_eq!(field(b().subject("events.{nope}").build()), "nats.subject");
        assert_eq!(
            field(b().token_env("HERALD_TEST_UNSET_NATS_TOKEN").build()),
            "nats.token"
        );
        assert_eq!(field(b().token("").build()), "nats.token");
        assert_eq!(
            field(
                b().user_password_env("herald", "HERALD_TEST_UNSET_NATS_PASSWORD")
                    .build()
            ),
            "nats.password"
        );
        assert_eq!(field(b().user_password("", "pw").build()), "nats.user");
        assert_eq!(field(b().connection_name("").build()), "nats.connection_name");
    }

    #[test]
    fn errors_and_debug_never_show_a_secret() {
        let c = NatsConfig::builder("nats://alice:hunter2@127.0.0.1:4222")
            .subject("events")
            .user_password("bob", "swordfish")
            .build()
            .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("swordfish"), "{shown}");
        assert!(shown.contains("user and password"), "{shown}");
        let err = NatsConfig::builder("ftp://alice:hunter2@x")
            .subject("a")
            .build()
            .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
