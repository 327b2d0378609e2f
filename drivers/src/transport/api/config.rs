//! What an API port sends where, and what counts as success: URL template, method, body
//! mode, static headers, credentials, success codes and the idempotency header — validated
//! once, when the port is built, so a bad value fails at start-up instead of on every attempt.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use herald_core::{Classifier, OutcomeClass};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};

use super::body::Body;
use super::template::UrlTemplate;
use crate::error::ConfigError;
use crate::transport::http;
use crate::transport::secret::{Source, resolve};

/// The idempotency header sent unless configured otherwise (the IETF HTTPAPI draft's name,
/// and what Stripe, PayPal, Adyen and others read).
pub const DEFAULT_IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// The HTTP method of every request of a port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// `POST` (the default): create.
    #[default]
    Post,
    /// `PUT`: create or replace at the templated URL; idempotent by nature.
    Put,
    /// `PATCH`: partial update.
    Patch,
    /// `DELETE`.
    Delete,
    /// `GET`: sends no body (see [`ApiConfigBuilder::body`]).
    Get,
}

impl Method {
    /// `POST`, `PUT`, `PATCH`, `DELETE`, `GET`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Get => "GET",
        }
    }

    pub(super) fn to_reqwest(self) -> reqwest::Method {
        match self {
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
            Method::Get => reqwest::Method::GET,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Method {
    type Err = ConfigError;

    /// Parses a method name, ignoring case; the error names the field `api.method`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "POST" => Ok(Method::Post),
            "PUT" => Ok(Method::Put),
            "PATCH" => Ok(Method::Patch),
            "DELETE" => Ok(Method::Delete),
            "GET" => Ok(Method::Get),
            _ => Err(ConfigError::invalid(
                "api.method",
                format!("unsupported method {s:?}; expected POST, PUT, PATCH, DELETE or GET"),
            )),
        }
    }
}

#[derive(Clone)]
enum AuthSpec {
    Bearer(Source),
    Basic { user: Source, password: Source },
}

/// Which kind of `authorization` a port sends (the credentials themselves are not readable).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthKind {
    /// `authorization: Bearer <token>` (RFC 6750).
    Bearer,
    /// `authorization: Basic base64(user:password)` (RFC 7617, UTF-8).
    Basic,
}

/// A validated API destination: build it with [`ApiConfig::builder`], then hand it to
/// [`PortConfig::api`](crate::PortConfig::api) (or [`ApiTransport::new`](super::ApiTransport::new)).
///
/// `Debug` shows neither credentials, static header values, nor the URL's path and query
/// (they may carry tokens): only the origin, the method, the body mode, header names, the
/// kind of authorization, the success codes and the idempotency header's name.
#[derive(Clone)]
pub struct ApiConfig {
    pub(super) template: UrlTemplate,
    pub(super) method: Method,
    pub(super) body: Body,
    pub(super) headers: HeaderMap,
    pub(super) auth: Option<(AuthKind, HeaderValue)>,
    pub(super) success_codes: Option<BTreeSet<u16>>,
    pub(super) idempotency_header: Option<HeaderName>,
    pub(super) allow_private_network: bool,
}

impl ApiConfig {
    /// Starts a configuration for `url_template` (see the [module docs](super) for the
    /// placeholders); nothing is checked until [`ApiConfigBuilder::build`].
    pub fn builder(url_template: &str) -> ApiConfigBuilder {
        ApiConfigBuilder {
            url: url_template.to_owned(),
            method: Method::Post,
            body: None,
            headers: Vec::new(),
            auth: None,
            success_codes: None,
            idempotency_header: Some(DEFAULT_IDEMPOTENCY_HEADER.to_owned()),
            allow_private_network: false,
        }
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The body mode.
    pub fn body(&self) -> Body {
        self.body
    }

    /// The kind of authorization sent, if any.
    pub fn auth_kind(&self) -> Option<AuthKind> {
        self.auth.as_ref().map(|(kind, _)| *kind)
    }

    /// The configured success codes; `None` means the default, every 2xx.
    pub fn success_codes(&self) -> Option<&BTreeSet<u16>> {
        self.success_codes.as_ref()
    }

    /// The name of the header carrying the event id, if one is sent.
    pub fn idempotency_header(&self) -> Option<&str> {
        self.idempotency_header.as_ref().map(HeaderName::as_str)
    }

    /// Whether private, loopback and other non-public destinations are allowed.
    pub fn allows_private_network(&self) -> bool {
        self.allow_private_network
    }

    /// The classification this destination needs: the default table, except that with
    /// configured success codes, a code in the set is delivered (even a 409 or a 3xx) and a
    /// 2xx outside the set is **permanent** — the API did something other than what counts
    /// as success (e.g. `202 Accepted` where `201 Created` was required), and sending it
    /// again would repeat whatever that was. Non-2xx codes outside the set keep their
    /// default class (429 and 5xx retryable, other 4xx permanent).
    ///
    /// [`PortConfig::api`](crate::PortConfig::api) installs it; a port that sets its own
    /// classifier should start from this one.
    pub fn classifier(&self) -> Classifier {
        let mut classifier = Classifier::default();
        let Some(codes) = &self.success_codes else {
            return classifier;
        };
        let overrides = (200..=299u16)
            .filter(|c| !codes.contains(c))
            .map(|c| (c, OutcomeClass::Permanent))
            .chain(
                codes
                    .iter()
                    .filter(|c| !(200..=299).contains(*c))
                    .map(|&c| (c, OutcomeClass::Delivered)),
            );
        for (code, class) in overrides {
            // Codes are validated to 200..=599 at build, which the classifier accepts.
            if let Ok(next) = classifier.clone().with_override(code, class) {
                classifier = next;
            }
        }
        classifier
    }

    /// The host for logs and errors: never the path or query, which may carry tokens.
    pub(super) fn host(&self) -> &str {
        self.template.base().host_str().unwrap_or_default()
    }
}

impl fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiConfig")
            .field(
                "url",
                &format_args!(
                    "{}/[path redacted]",
                    self.template.base().origin().ascii_serialization()
                ),
            )
            .field("method", &self.method)
            .field("body", &self.body)
            .field(
                "headers",
                &format_args!(
                    "{:?} (values redacted)",
                    self.headers.keys().map(HeaderName::as_str).collect::<Vec<_>>()
                ),
            )
            .field(
                "auth",
                &format_args!(
                    "{}",
                    match self.auth_kind() {
                        None => "none",
                        Some(AuthKind::Bearer) => "bearer [redacted]",
                        Some(AuthKind::Basic) => "basic [redacted]",
                    }
                ),
            )
            .field("success_codes", &self.success_codes)
            .field("idempotency_header", &self.idempotency_header)
            .field("allow_private_network", &self.allow_private_network)
            .finish()
    }
}

/// Collects an [`ApiConfig`]; see [`ApiConfig::builder`]. Every value is validated by
/// [`Self::build`], and errors name the field (`api.url`, `api.headers[1]`, `api.auth`, ...)
/// but never a credential or header value.
#[derive(Clone)]
#[must_use]
pub struct ApiConfigBuilder {
    url: String,
    method: Method,
    body: Option<Body>,
    headers: Vec<(String, String)>,
    auth: Option<AuthSpec>,
    success_codes: Option<Vec<u16>>,
    idempotency_header: Option<String>,
    allow_private_network: bool,
}

impl ApiConfigBuilder {
    /// The HTTP method (default `POST`).
    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// What the body carries (default [`Body::Raw`]; [`Body::Empty`] for `GET`). `GET` with
    /// a body is refused at build: RFC 9110 gives content in a GET no meaning, and servers,
    /// proxies and caches may drop it or reject the request.
    pub fn body(mut self, body: Body) -> Self {
        self.body = Some(body);
        self
    }

    /// Adds a header sent with every request (e.g. `x-tenant`, or an `authorization` with a
    /// scheme of its own when no bearer or basic auth is set). Its value is never logged or
    /// shown by `Debug`. It may replace the default `user-agent`.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sends `authorization: Bearer <token>`. Replaces any other authorization set before.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.auth = Some(AuthSpec::Bearer(Source::Value(token.into())));
        self
    }

    /// Like [`Self::bearer_token`], with the token read from the environment variable `var`
    /// when [`Self::build`] runs (a missing variable is an error naming it).
    pub fn bearer_token_env(mut self, var: impl Into<String>) -> Self {
        self.auth = Some(AuthSpec::Bearer(Source::Env(var.into())));
        self
    }

    /// Sends `authorization: Basic base64(user:password)`. Replaces any other authorization
    /// set before.
    pub fn basic_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth = Some(AuthSpec::Basic {
            user: Source::Value(user.into()),
            password: Source::Value(password.into()),
        });
        self
    }

    /// Basic authentication with the password read from the environment variable
    /// `password_var` when [`Self::build`] runs.
    pub fn basic_auth_password_env(mut self, user: impl Into<String>, password_var: impl Into<String>) -> Self {
        self.auth = Some(AuthSpec::Basic {
            user: Source::Value(user.into()),
            password: Source::Env(password_var.into()),
        });
        self
    }

    /// Basic authentication with user and password read from the environment variables
    /// `user_var` and `password_var` when [`Self::build`] runs.
    pub fn basic_auth_env(mut self, user_var: impl Into<String>, password_var: impl Into<String>) -> Self {
        self.auth = Some(AuthSpec::Basic {
            user: Source::Env(user_var.into()),
            password: Source::Env(password_var.into()),
        });
        self
    }

    /// The statuses that mean delivered (default: every 2xx). E.g. `[200, 201, 409]` for an
    /// API that answers a repeated create with 409 Conflict. See
    /// [`ApiConfig::classifier`] for what happens to the other codes.
    pub fn success_codes(mut self, codes: impl IntoIterator<Item = u16>) -> Self {
        self.success_codes = Some(codes.into_iter().collect());
        self
    }

    /// The header carrying the event id on every attempt (default `Idempotency-Key`), so
    /// the API can recognize a retry of a request it already processed; `None` sends none.
    /// The value is the id as it is (not the IETF draft's quoted structured-field form,
    /// which few APIs parse).
    pub fn idempotency_header(mut self, name: Option<&str>) -> Self {
        self.idempotency_header = name.map(str::to_owned);
        self
    }

    /// Allows loopback, private, link-local and other non-public destinations. Off by default
    /// (see the webhook transport's SSRF guard). Turn it on for APIs inside your own
    /// network, and in tests.
    pub fn allow_private_network(mut self, allow: bool) -> Self {
        self.allow_private_network = allow;
        self
    }

    /// Validates everything, reads credentials from the environment, and builds the
    /// configuration.
    pub fn build(self) -> Result<ApiConfig, ConfigError> {
        let template = UrlTemplate::parse("api.url", &self.url)?;
        http::check_destination("api.url", template.base(), self.allow_private_network)?;
        let body = match (self.method, self.body) {
            (Method::Get, None) => Body::Empty,
            (Method::Get, Some(b @ (Body::Raw | Body::Json))) => {
                return Err(ConfigError::invalid(
                    "api.method",
                    format!(
                        "GET cannot carry a {} body: RFC 9110 gives content in a GET no meaning, and servers, \
                         proxies and caches may drop it or refuse the request; use another method, or the empty \
                         body (Body::Empty; body = \"empty\" in a file) to send the event in the URL only",
                        b.as_str()
                    ),
                ));
            }
            (_, body) => body.unwrap_or_default(),
        };
        let idempotency_header = self
            .idempotency_header
            .as_deref()
            .map(|name| idempotency_header(name, self.auth.is_some()))
            .transpose()?;
        let auth = self.auth.as_ref().map(authorization).transpose()?;
        let mut reserved: Vec<&str> = Vec::new();
        if let Some(name) = &idempotency_header {
            reserved.push(name.as_str());
        }
        if auth.is_some() {
            reserved.push(AUTHORIZATION.as_str());
        }
        let mut headers = HeaderMap::new();
        for (i, (name, value)) in self.headers.iter().enumerate() {
            let (name, value) = http::static_header(name, value, &reserved).map_err(|reason| {
                let reason = if auth.is_some() && name.eq_ignore_ascii_case("authorization") {
                    format!("{reason} (api.auth sets it)")
                } else {
                    reason
                };
                ConfigError::invalid(format!("api.headers[{i}]"), reason)
            })?;
            headers.append(name, value);
        }
        let success_codes = self.success_codes.map(success_codes).transpose()?;
        Ok(ApiConfig {
            template,
            method: self.method,
            body,
            headers,
            auth,
            success_codes,
            idempotency_header,
            allow_private_network: self.allow_private_network,
        })
    }
}

impl fmt::Debug for ApiConfigBuilder {
    /// Shows names only: the URL is not validated yet and may hold credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = match &self.auth {
            None => "none",
            Some(AuthSpec::Bearer(_)) => "bearer [redacted]",
            Some(AuthSpec::Basic { .. }) => "basic [redacted]",
        };
        f.debug_struct("ApiConfigBuilder")
            .field("method", &self.method)
            .field("body", &self.body)
            .field(
                "headers",
                &self.headers.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>(),
            )
            .field("auth", &format_args!("{auth}"))
            .field("success_codes", &self.success_codes)
            .field("idempotency_header", &self.idempotency_header)
            .field("allow_private_network", &self.allow_private_network)
            .finish_non_exhaustive()
    }
}

fn idempotency_header(name: &str, has_auth: bool) -> Result<HeaderName, ConfigError> {
    let bad = |reason: String| ConfigError::invalid("api.idempotency_header", reason);
    let header =
        HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad(format!("{name:?} is not a valid header name")))?;
    if http::FRAMING_HEADERS.contains(&header.as_str()) || (has_auth && header == AUTHORIZATION) {
        return Err(bad(format!(
            "{:?} is set by the transport and cannot carry the event id",
            header.as_str()
        )));
    }
    Ok(header)
}

fn authorization(spec: &AuthSpec) -> Result<(AuthKind, HeaderValue), ConfigError> {
    let bad = |reason: &str| ConfigError::invalid("api.auth", reason);
    let (kind, text) = match spec {
        AuthSpec::Bearer(token) => {
            let token = resolve("api.auth", token, "bearer token")?;
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(bad(
                    "the bearer token has a character outside visible ASCII (spaces and control characters \
                     included)",
                ));
            }
            (AuthKind::Bearer, format!("Bearer {token}"))
        }
        AuthSpec::Basic { user, password } => {
            let user = resolve("api.auth", user, "basic auth user")?;
            let password = resolve("api.auth", password, "basic auth password")?;
            if user.contains(':') {
                return Err(bad("the basic auth user contains ':', which RFC 7617 forbids"));
            }
            if user.chars().chain(password.chars()).any(char::is_control) {
                return Err(bad("the basic auth user or password contains a control character"));
            }
            let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            (AuthKind::Basic, format!("Basic {encoded}"))
        }
    };
    let mut value = HeaderValue::from_str(&text).map_err(|_| bad("the credential is not a valid header value"))?;
    value.set_sensitive(true);
    Ok((kind, value))
}

fn success_codes(codes: Vec<u16>) -> Result<BTreeSet<u16>, ConfigError> {
    let bad = |reason: String| ConfigError::invalid("api.success_codes", reason);
    if codes.is_empty() {
        return Err(bad("the set is empty, so no attempt could ever succeed".to_owned()));
    }
    if let Some(code) = codes.iter().find(|c| !(200..=599).contains(*c)) {
        return Err(bad(format!(
            "{code} is not a final HTTP status; success codes are 200 to 599"
        )));
    }
    Ok(codes.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(builder: ApiConfigBuilder) -> ConfigError {
        builder.build().expect_err("the configuration should be rejected")
    }

    fn field(builder: ApiConfigBuilder) -> String {
        error(builder).field().unwrap_or_default().to_owned()
    }

    const URL: &str = "https://api.example.com/v1/events/{id}";

    #[test]
    fn defaults_are_post_raw_idempotency_key_and_every_2xx() {
        let c = ApiConfig::builder(URL).build().unwrap();
        assert_eq!(c.method(), Method::Post);
        assert_eq!(c.body(), Body::Raw);
        assert_eq!(c.idempotency_header(), Some("idempotency-key"));
        assert_eq!(c.success_codes(), None);
        assert_eq!(c.auth_kind(), None);
        assert!(!c.allows_private_network());
        assert_eq!(c.classifier(), Classifier::default());
    }

    #[test]
    fn methods_parse_ignoring_case_and_name_the_field() {
        assert_eq!("put".parse::<Method>().unwrap(), Method::Put);
        assert_eq!("PATCH".parse::<Method>().unwrap(), Method::Patch);
        let e = "HEAD".parse::<Method>().unwrap_err();
        assert_eq!(e.field(), Some("api.method"));
        assert_eq!(Method::Delete.to_string(), "DELETE");
    }

    #[test]
    fn get_sends_no_body_and_refuses_one() {
        let c = ApiConfig::builder(URL).method(Method::Get).build().unwrap();
        assert_eq!(c.body(), Body::Empty);
        for body in [Body::Raw, Body::Json] {
            let e = error(ApiConfig::builder(URL).method(Method::Get).body(body));
            assert_eq!(e.field(), Some("api.method"));
            assert!(e.to_string().contains("RFC 9110"), "{e}");
        }
        let c = ApiConfig::builder(URL)
            .method(Method::Delete)
            .body(Body::Json)
            .build()
            .unwrap();
        assert_eq!(c.body(), Body::Json);
    }

    #[test]
    fn template_errors_name_the_url_field() {
        for bad in [
            "https://api.example.com/{foo}",
            "https://api.example.com/{id",
            "https://{type}.example.com/",
            "ftp://api.example.com/{id}",
        ] {
            assert_eq!(field(ApiConfig::builder(bad)), "api.url", "{bad}");
        }
        let e = error(ApiConfig::builder("http://127.0.0.1:9/{id}"));
        assert!(e.to_string().contains("not a public address"), "{e}");
        assert!(
            ApiConfig::builder("http://127.0.0.1:9/{id}")
                .allow_private_network(true)
                .build()
                .is_ok()
        );
    }

    #[test]
    fn bearer_and_basic_credentials_become_the_authorization_header() {
        let c = ApiConfig::builder(URL).bearer_token("tok_123").build().unwrap();
        let (kind, value) = c.auth.clone().unwrap();
        assert_eq!((kind, value.to_str().unwrap()), (AuthKind::Bearer, "Bearer tok_123"));
        assert!(value.is_sensitive());
        let c = ApiConfig::builder(URL)
            .basic_auth("Aladdin", "open sesame")
            .build()
            .unwrap();
        let (kind, value) = c.auth.unwrap();
        // RFC 7617's example.
        assert_eq!(
            (kind, value.to_str().unwrap()),
            (AuthKind::Basic, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        );
    }

    #[test]
    fn bad_credentials_name_the_auth_field_and_never_the_value() {
        for b in [
            ApiConfig::builder(URL).bearer_token(""),
            ApiConfig::builder(URL).bearer_token("has space sekrit"),
            ApiConfig::builder(URL).bearer_token("nl\nsekrit"),
            ApiConfig::builder(URL).basic_auth("a:b", "sekrit"),
            ApiConfig::builder(URL).basic_auth("user", "sek\u{7}rit"),
        ] {
            let e = error(b);
            assert_eq!(e.field(), Some("api.auth"));
            assert!(!e.to_string().contains("sekrit"), "{e}");
        }
    }

    #[test]
    fn credentials_from_the_environment_are_read_at_build() {
        // Variable names unique to this test: the environment is shared by the process.
        let e = error(ApiConfig::builder(URL).bearer_token_env("HERALD_TEST_API_TOKEN_UNSET_1"));
        assert_eq!(e.field(), Some("api.auth"));
        assert!(
            e.to_string()
                .contains("environment variable HERALD_TEST_API_TOKEN_UNSET_1 is not set"),
            "{e}"
        );
        let e = error(ApiConfig::builder(URL).basic_auth_password_env("u", "HERALD_TEST_API_PASSWORD_UNSET_1"));
        assert!(e.to_string().contains("HERALD_TEST_API_PASSWORD_UNSET_1"), "{e}");
        assert!(e.to_string().contains("basic auth password"), "{e}");
        let e = error(ApiConfig::builder(URL).bearer_token_env("A=B"));
        assert!(e.to_string().contains("not a valid environment variable name"), "{e}");
    }

    #[test]
    fn static_headers_are_validated_and_cannot_replace_the_transports_own() {
        let e = error(ApiConfig::builder(URL).header("x-ok", "1").header("bad name", "v"));
        assert_eq!(e.field(), Some("api.headers[1]"));
        let e = error(ApiConfig::builder(URL).header("x-token", "sekrit\n"));
        assert_eq!(e.field(), Some("api.headers[0]"));
        assert!(!e.to_string().contains("sekrit"), "{e}");
        for name in ["Content-Type", "host", "Idempotency-Key"] {
            let e = error(ApiConfig::builder(URL).header(name, "x"));
            assert_eq!(e.field(), Some("api.headers[0]"), "{name}");
        }
        // authorization is free without api.auth, reserved with it.
        assert!(
            ApiConfig::builder(URL)
                .header("authorization", "Token abc")
                .build()
                .is_ok()
        );
        let e = error(ApiConfig::builder(URL).bearer_token("t").header("authorization", "x"));
        assert!(e.to_string().contains("api.auth sets it"), "{e}");
        // Without the idempotency header, its name is free.
        assert!(
            ApiConfig::builder(URL)
                .idempotency_header(None)
                .header("idempotency-key", "fixed")
                .build()
                .is_ok()
        );
        assert!(
            ApiConfig::builder(URL)
                .header("user-agent", "acme-sync/2")
                .build()
                .is_ok()
        );
    }

    #[test]
    fn the_idempotency_header_name_is_validated() {
        let c = ApiConfig::builder(URL)
            .idempotency_header(Some("X-Request-Id"))
            .build()
            .unwrap();
        assert_eq!(c.idempotency_header(), Some("x-request-id"));
        assert_eq!(
            ApiConfig::builder(URL)
                .idempotency_header(None)
                .build()
                .unwrap()
                .idempotency_header(),
            None
        );
        for bad in ["bad name", "", "content-length"] {
            assert_eq!(
                field(ApiConfig::builder(URL).idempotency_header(Some(bad))),
                "api.idempotency_header",
                "{bad:?}"
            );
        }
        assert_eq!(
            field(
                ApiConfig::builder(URL)
                    .bearer_token("t")
                    .idempotency_header(Some("authorization"))
            ),
            "api.idempotency_header"
        );
    }

    #[test]
    fn success_codes_are_validated() {
        assert_eq!(field(ApiConfig::builder(URL).success_codes([])), "api.success_codes");
        for bad in [0, 101, 199, 600] {
            let e = error(ApiConfig::builder(URL).success_codes([200, bad]));
            assert_eq!(e.field(), Some("api.success_codes"));
            assert!(e.to_string().contains(&bad.to_string()), "{e}");
        }
    }

    #[test]
    fn success_codes_shape_the_classifier() {
        let c = ApiConfig::builder(URL)
            .success_codes([200, 201, 409, 303])
            .build()
            .unwrap()
            .classifier();
        assert_eq!(c.http_class(200), OutcomeClass::Delivered);
        assert_eq!(c.http_class(201), OutcomeClass::Delivered);
        assert_eq!(c.http_class(409), OutcomeClass::Delivered);
        assert_eq!(c.http_class(303), OutcomeClass::Delivered);
        // A 2xx outside the set is permanent; other codes keep their default class.
        assert_eq!(c.http_class(202), OutcomeClass::Permanent);
        assert_eq!(c.http_class(204), OutcomeClass::Permanent);
        assert_eq!(c.http_class(503), OutcomeClass::Retryable);
        assert_eq!(c.http_class(429), OutcomeClass::Retryable);
        assert_eq!(c.http_class(404), OutcomeClass::Permanent);
    }

    #[test]
    fn debug_shows_no_credential_header_value_or_url_path() {
        let c = ApiConfig::builder("https://api.example.com/t/pathtoken/{id}?key=querytoken")
            .bearer_token("bearertoken")
            .header("x-api-key", "headertoken")
            .build()
            .unwrap();
        let dbg = format!("{c:?}");
        for leak in ["bearertoken", "headertoken", "pathtoken", "querytoken"] {
            assert!(!dbg.contains(leak), "{leak} in {dbg}");
        }
        assert!(dbg.contains("https://api.example.com"), "{dbg}");
        assert!(dbg.contains("x-api-key"), "{dbg}");
        assert!(dbg.contains("bearer [redacted]"), "{dbg}");
        let c = ApiConfig::builder(URL)
            .basic_auth("user", "basicpassword")
            .build()
            .unwrap();
        assert!(!format!("{c:?}").contains("basicpassword"));
        let b = ApiConfig::builder("https://x.example/?k=querytoken")
            .basic_auth("user", "basicpassword")
            .header("x-api-key", "headertoken");
        let dbg = format!("{b:?}");
        for leak in ["basicpassword", "headertoken", "querytoken"] {
            assert!(!dbg.contains(leak), "{leak} in {dbg}");
        }
    }
}
