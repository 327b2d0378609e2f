//! The configuration file (TOML): where the store is and which ports deliver where.
//! Every error names the file, the key and what is wrong.
//!
//! ```toml
//! store = "herald.redb"              # relative to this file
//!
//! [ports.orders]
//! kind = "webhook"
//! url = "https://example.com/hooks/orders"
//! secret_env = "ORDERS_WEBHOOK_SECRET"   # or: secret = "whsec_…", secrets = [..]
//! timeout = "10s"
//! max_in_flight = 32
//! payload_limit = 262144
//!
//! [ports.orders.retry]
//! schedule = ["5s", "5m", "30m", "2h"]   # or: exponential = { base = "1s", factor = 2.0, cap = "10m" }
//! jitter = "equal"                       # none | full | equal | decorrelated
//! max_attempts = 5
//! window = "24h"
//!
//! [ports.billing]
//! kind = "api"
//! url = "https://api.example.com/v1/{type}/{id}"   # {id} and {type}, percent-encoded, in path or query
//! method = "PUT"                         # POST (default) | PUT | PATCH | DELETE | GET
//! body = "json"                          # raw (default; the payload as is) | json (an envelope) | empty
//! bearer_token_env = "BILLING_TOKEN"     # or bearer_token = "…", or basic_user = "…" with
//!                                        #   basic_password = "…" / basic_password_env = "VAR"
//! success_codes = [200, 201, 409]        # default: every 2xx; a 2xx outside the list fails
//! idempotency_header = "Idempotency-Key" # the default; another name, or false for none
//! headers = { "x-tenant" = "acme" }      # also: allow_private_network, timeout, retry, ...
//!
//! [ports.analytics]
//! kind = "nats"
//! url = "nats://127.0.0.1:4222"          # or tls://…; credentials may be in the URL
//! subject = "events.{type}"              # {type} and {id}; a JetStream stream must capture it
//! token_env = "NATS_TOKEN"               # or token = "…", or user = "…" with password = "…" /
//!                                        #   password_env = "VAR"; also connection_name
//!
//! [ports.events]
//! kind = "amqp"                          # RabbitMQ: persistent, mandatory, publisher confirms
//! url = "amqps://herald@rabbit.example.com/prod"   # or url_env = "VAR" (the whole URL)
//! password_env = "RABBITMQ_PASSWORD"     # or the password in the url
//! exchange = "orders"                    # default "" (the default exchange)
//! routing_key = "orders.{type}"          # {type} and {id}; default "{type}"
//! ```
//!
//! Keys of one kind are refused on a port of another (`secret` on an API port, `method`
//! on a webhook port, `exchange` on either), so a misplaced key is never silently ignored.
//! Credentials read from the environment are read when the file is loaded; errors name the
//! variable, never a value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use herald::core::Jitter;
use herald::transport::amqp::AmqpConfig;
use herald::transport::api::{ApiConfig, Body, Method};
use herald::transport::nats::NatsConfig;
use herald::transport::webhook::WebhookConfig;
use herald::{ConfigError, PortConfig, RetryPolicy};
use serde::Deserialize;

/// The whole file.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct File {
    store: PathBuf,
    #[serde(default)]
    ports: BTreeMap<String, PortFile>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct PortFile {
    kind: String,
    url: Option<String>,
    secret: Option<String>,
    secret_env: Option<String>,
    #[serde(default)]
    secrets: Vec<String>,
    cloudevents_source: Option<String>,
    #[serde(default)]
    allow_private_network: bool,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    timeout: Option<String>,
    max_in_flight: Option<u32>,
    payload_limit: Option<usize>,
    seed: Option<u64>,
    retry: Option<RetryFile>,
    // API ports only.
    method: Option<String>,
    body: Option<String>,
    bearer_token: Option<String>,
    bearer_token_env: Option<String>,
    basic_user: Option<String>,
    basic_password: Option<String>,
    basic_password_env: Option<String>,
    success_codes: Option<Vec<u16>>,
    idempotency_header: Option<IdempotencyHeaderFile>,
    // NATS ports only.
    subject: Option<String>,
    token: Option<String>,
    token_env: Option<String>,
    user: Option<String>,
    password: Option<String>,
    password_env: Option<String>,
    connection_name: Option<String>,
    // AMQP ports only (password_env is read by NATS ports too).
    url_env: Option<String>,
    exchange: Option<String>,
    routing_key: Option<String>,
}

/// `idempotency_header = "Name"`, or `false` for none (`true` keeps the default).
#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum IdempotencyHeaderFile {
    Name(String),
    Enabled(bool),
}

const WEBHOOK: &[&str] = &["webhook"];
const API: &[&str] = &["api"];
const HTTP: &[&str] = &["webhook", "api"];
const NATS: &[&str] = &["nats"];
const AMQP: &[&str] = &["amqp"];
const NATS_AMQP: &[&str] = &["nats", "amqp"];

impl PortFile {
    /// The keys set on this port that its kind does not read, each with the kinds that do.
    fn foreign_keys(&self) -> Vec<(&'static str, &'static [&'static str])> {
        let specific: [(&'static str, bool, &'static [&'static str]); 25] = [
            ("secret", self.secret.is_some(), WEBHOOK),
            ("secret_env", self.secret_env.is_some(), WEBHOOK),
            ("secrets", !self.secrets.is_empty(), WEBHOOK),
            ("cloudevents_source", self.cloudevents_source.is_some(), WEBHOOK),
            ("allow_private_network", self.allow_private_network, HTTP),
            ("headers", !self.headers.is_empty(), HTTP),
            ("method", self.method.is_some(), API),
            ("body", self.body.is_some(), API),
            ("bearer_token", self.bearer_token.is_some(), API),
            ("bearer_token_env", self.bearer_token_env.is_some(), API),
            ("basic_user", self.basic_user.is_some(), API),
            ("basic_password", self.basic_password.is_some(), API),
            ("basic_password_env", self.basic_password_env.is_some(), API),
            ("success_codes", self.success_codes.is_some(), API),
            ("idempotency_header", self.idempotency_header.is_some(), API),
            ("subject", self.subject.is_some(), NATS),
            ("token", self.token.is_some(), NATS),
            ("token_env", self.token_env.is_some(), NATS),
            ("user", self.user.is_some(), NATS),
            ("password", self.password.is_some(), NATS),
            ("password_env", self.password_env.is_some(), NATS_AMQP),
            ("connection_name", self.connection_name.is_some(), NATS),
            ("url_env", self.url_env.is_some(), AMQP),
            ("exchange", self.exchange.is_some(), AMQP),
            ("routing_key", self.routing_key.is_some(), AMQP),
        ];
        specific
            .into_iter()
            .filter(|(_, set, kinds)| *set && !kinds.contains(&self.kind.as_str()))
            .map(|(key, _, kinds)| (key, kinds))
            .collect()
    }
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RetryFile {
    schedule: Option<Vec<String>>,
    exponential: Option<ExponentialFile>,
    jitter: Option<String>,
    max_attempts: Option<u32>,
    window: Option<String>,
    retry_after_cap: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct ExponentialFile {
    base: String,
    factor: f64,
    cap: String,
}

/// A loaded configuration: the store path and every port, validated.
pub(crate) struct Config {
    pub(crate) store: PathBuf,
    pub(crate) ports: Vec<(String, PortConfig, u32)>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.ports.iter().map(|(n, _, _)| n.as_str()).collect();
        f.debug_struct("Config")
            .field("store", &self.store)
            .field("ports", &names)
            .finish()
    }
}

impl Config {
    /// Reads and validates `path`; secrets may come from the environment.
    pub(crate) fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
        let file: File =
            toml::from_str(&text).map_err(|e| anyhow!("{}: {}", path.display(), e.to_string().trim_end()))?;
        let at = |key: &str, what: String| anyhow!("{}: {key}: {what}", path.display());
        let base = path.parent().unwrap_or(Path::new("."));
        let store = if file.store.is_absolute() {
            file.store
        } else {
            base.join(file.store)
        };
        if file.ports.is_empty() {
            bail!(
                "{}: ports: no port is configured (add a [ports.NAME] table)",
                path.display()
            );
        }
        let mut ports = Vec::new();
        for (name, p) in file.ports {
            let key = |k: &str| format!("ports.{name}.{k}");
            let policy = retry_policy(&p, &key).map_err(|(k, what)| at(&k, what))?;
            let max_attempts = policy.get_max_attempts();
            if let Some((k, kinds)) = p.foreign_keys().first() {
                let kinds: Vec<String> = kinds.iter().map(|k| format!("kind = \"{k}\"")).collect();
                return Err(at(
                    &key(k),
                    format!(
                        "only read on {} ports; this port is kind = {:?}",
                        kinds.join(" or "),
                        p.kind
                    ),
                ));
            }
            let port = match p.kind.as_str() {
                "webhook" => {
                    let url = p
                        .url
                        .as_deref()
                        .ok_or_else(|| at(&key("url"), "missing (a webhook needs a url)".into()))?;
                    let mut b = WebhookConfig::builder(url).allow_private_network(p.allow_private_network);
                    let mut secrets = p.secrets.clone();
                    secrets.extend(p.secret.clone());
                    if let Some(var) = &p.secret_env {
                        let v = std::env::var(var)
                            .map_err(|_| at(&key("secret_env"), format!("environment variable {var} is not set")))?;
                        secrets.push(v);
                    }
                    for s in &secrets {
                        b = b.secret(s);
                    }
                    for (h, v) in &p.headers {
                        b = b.header(h, v);
                    }
                    if let Some(source) = &p.cloudevents_source {
                        b = b.cloudevents(source);
                    }
                    let webhook = b.build().map_err(|e| named(path, &name, e))?;
                    PortConfig::webhook(name.clone(), webhook).map_err(|e| named(path, &name, e))?
                }
                "api" => {
                    let api = api_config(&p, &key).map_err(|(k, what)| at(&k, what))?;
                    let api = api.map_err(|e| named(path, &name, e))?;
                    PortConfig::api(name.clone(), api).map_err(|e| named(path, &name, e))?
                }
                "nats" => {
                    let nats = nats_config(&p, &key).map_err(|(k, what)| at(&k, what))?;
                    let nats = nats.map_err(|e| named(path, &name, e))?;
                    PortConfig::nats(name.clone(), nats).map_err(|e| named(path, &name, e))?
                }
                "amqp" => {
                    let amqp = amqp_config(&p, &key).map_err(|(k, what)| at(&k, what))?;
                    let amqp = amqp.map_err(|e| named(path, &name, e))?;
                    PortConfig::amqp(name.clone(), amqp).map_err(|e| named(path, &name, e))?
                }
                other => {
                    return Err(at(
                        &key("kind"),
                        format!("unknown kind {other:?}; expected \"webhook\", \"api\", \"nats\" or \"amqp\""),
                    ));
                }
            };
            let mut port = port.policy(policy);
            if let Some(n) = p.max_in_flight {
                port = port.max_in_flight(n);
            }
            if let Some(n) = p.payload_limit {
                port = port.payload_limit(n);
            }
            if let Some(s) = p.seed {
                port = port.seed(s);
            }
            ports.push((name, port, max_attempts));
        }
        Ok(Config { store, ports })
    }

    /// The policy's max attempts of a port (for attempts-remaining in outputs).
    pub(crate) fn max_attempts(&self, port: &str) -> u32 {
        self.ports
            .iter()
            .find(|(n, _, _)| n == port)
            .map_or(RetryPolicy::default().get_max_attempts(), |(_, _, m)| *m)
    }

    /// The port names, in file order (sorted).
    pub(crate) fn port_names(&self) -> Vec<String> {
        self.ports.iter().map(|(n, _, _)| n.clone()).collect()
    }
}

fn named(path: &Path, port: &str, e: ConfigError) -> anyhow::Error {
    match e {
        ConfigError::Invalid { field, reason } => anyhow!("{}: ports.{port}.{field}: {reason}", path.display()),
        other => anyhow!("{}: ports.{port}: {other}", path.display()),
    }
}

/// The API configuration of a port: file-level problems as `(key, what)`, the builder's
/// verdict as a [`ConfigError`] (its field is `api.…`).
fn api_config(p: &PortFile, key: &dyn Fn(&str) -> String) -> Result<Result<ApiConfig, ConfigError>, (String, String)> {
    let url = p
        .url
        .as_deref()
        .ok_or_else(|| (key("url"), "missing (an API port needs a url template)".to_owned()))?;
    let mut b = ApiConfig::builder(url).allow_private_network(p.allow_private_network);
    if let Some(m) = &p.method {
        let method: Method = m.parse().map_err(|e: ConfigError| {
            let reason = match e {
                ConfigError::Invalid { reason, .. } => reason,
                other => other.to_string(),
            };
            (key("method"), reason)
        })?;
        b = b.method(method);
    }
    if let Some(body) = &p.body {
        b = b.body(match body.as_str() {
            "raw" => Body::Raw,
            "json" => Body::Json,
            "empty" => Body::Empty,
            other => {
                return Err((
                    key("body"),
                    format!("unknown body {other:?}; expected \"raw\", \"json\" or \"empty\""),
                ));
            }
        });
    }
    let bearer = p.bearer_token.is_some() || p.bearer_token_env.is_some();
    let basic = p.basic_user.is_some() || p.basic_password.is_some() || p.basic_password_env.is_some();
    if bearer && basic {
        return Err((
            key("bearer_token"),
            "set a bearer token or basic credentials, not both".into(),
        ));
    }
    match (&p.bearer_token, &p.bearer_token_env) {
        (Some(_), Some(_)) => {
            return Err((
                key("bearer_token"),
                "set bearer_token or bearer_token_env, not both".into(),
            ));
        }
        (Some(t), None) => b = b.bearer_token(t),
        (None, Some(var)) => b = b.bearer_token_env(var),
        (None, None) => {}
    }
    match (&p.basic_user, &p.basic_password, &p.basic_password_env) {
        (None, None, None) => {}
        (None, _, _) => return Err((key("basic_user"), "missing (basic credentials need a user)".into())),
        (Some(_), None, None) => {
            return Err((
                key("basic_password"),
                "missing (set basic_password or basic_password_env)".into(),
            ));
        }
        (Some(_), Some(_), Some(_)) => {
            return Err((
                key("basic_password"),
                "set basic_password or basic_password_env, not both".into(),
            ));
        }
        (Some(user), Some(password), None) => b = b.basic_auth(user, password),
        (Some(user), None, Some(var)) => b = b.basic_auth_password_env(user, var),
    }
    for (h, v) in &p.headers {
        b = b.header(h, v);
    }
    if let Some(codes) = &p.success_codes {
        b = b.success_codes(codes.iter().copied());
    }
    match &p.idempotency_header {
        None | Some(IdempotencyHeaderFile::Enabled(true)) => {}
        Some(IdempotencyHeaderFile::Enabled(false)) => b = b.idempotency_header(None),
        Some(IdempotencyHeaderFile::Name(n)) => b = b.idempotency_header(Some(n)),
    }
    Ok(b.build())
}

/// The NATS configuration of a port: file-level problems as `(key, what)`, the builder's
/// verdict as a [`ConfigError`] (its field is `nats.…`).
fn nats_config(
    p: &PortFile,
    key: &dyn Fn(&str) -> String,
) -> Result<Result<NatsConfig, ConfigError>, (String, String)> {
    let url = p.url.as_deref().ok_or_else(|| {
        (
            key("url"),
            "missing (a NATS port needs a server url, e.g. \"nats://127.0.0.1:4222\")".to_owned(),
        )
    })?;
    let subject = p.subject.as_deref().ok_or_else(|| {
        (
            key("subject"),
            "missing (e.g. \"events.{type}\"; a JetStream stream must capture it)".to_owned(),
        )
    })?;
    let mut b = NatsConfig::builder(url).subject(subject);
    let user_auth = p.user.is_some() || p.password.is_some() || p.password_env.is_some();
    match (&p.token, &p.token_env) {
        (Some(_), Some(_)) => return Err((key("token"), "set token or token_env, not both".into())),
        (Some(_), None) | (None, Some(_)) if user_auth => {
            return Err((key("token"), "set a token or a user and password, not both".into()));
        }
        (Some(t), None) => b = b.token(t),
        (None, Some(var)) => b = b.token_env(var),
        (None, None) => {}
    }
    match (&p.user, &p.password, &p.password_env) {
        (None, None, None) => {}
        (None, _, _) => return Err((key("user"), "missing (a password needs a user)".into())),
        (Some(_), None, None) => {
            return Err((key("password"), "missing (set password or password_env)".into()));
        }
        (Some(_), Some(_), Some(_)) => {
            return Err((key("password"), "set password or password_env, not both".into()));
        }
        (Some(user), Some(password), None) => b = b.user_password(user, password),
        (Some(user), None, Some(var)) => b = b.user_password_env(user, var),
    }
    if let Some(name) = &p.connection_name {
        b = b.connection_name(name);
    }
    Ok(b.build())
}

/// The AMQP configuration of a port: file-level problems as `(key, what)`, the builder's
/// verdict as a [`ConfigError`] (its field is `amqp.…`).
fn amqp_config(
    p: &PortFile,
    key: &dyn Fn(&str) -> String,
) -> Result<Result<AmqpConfig, ConfigError>, (String, String)> {
    let mut b = match (&p.url, &p.url_env) {
        (Some(_), Some(_)) => return Err((key("url_env"), "set url or url_env, not both".into())),
        (Some(url), None) => AmqpConfig::builder(url),
        (None, Some(var)) => AmqpConfig::builder_url_env(var),
        (None, None) => {
            return Err((
                key("url"),
                "missing (an AMQP port needs url, or url_env naming a variable that holds it)".into(),
            ));
        }
    };
    if let Some(var) = &p.password_env {
        b = b.password_env(var);
    }
    if let Some(exchange) = &p.exchange {
        b = b.exchange(exchange);
    }
    if let Some(template) = &p.routing_key {
        b = b.routing_key(template);
    }
    Ok(b.build())
}

fn duration(key: String, text: &str) -> Result<Duration, (String, String)> {
    humantime::parse_duration(text)
        .map_err(|e| (key, format!("{text:?} is not a duration ({e}); e.g. \"30s\", \"5m\"")))
}

fn retry_policy(p: &PortFile, key: &dyn Fn(&str) -> String) -> Result<RetryPolicy, (String, String)> {
    let r = p.retry.as_ref();
    let mut policy = match (
        r.and_then(|r| r.schedule.as_ref()),
        r.and_then(|r| r.exponential.as_ref()),
    ) {
        (Some(_), Some(_)) => {
            return Err((key("retry"), "set either schedule or exponential, not both".into()));
        }
        (Some(s), None) => {
            let steps = s
                .iter()
                .enumerate()
                .map(|(i, t)| duration(key(&format!("retry.schedule[{i}]")), t))
                .collect::<Result<Vec<_>, _>>()?;
            RetryPolicy::fixed(steps)
        }
        (None, Some(e)) => RetryPolicy::exponential(
            duration(key("retry.exponential.base"), &e.base)?,
            e.factor,
            duration(key("retry.exponential.cap"), &e.cap)?,
        ),
        (None, None) => RetryPolicy::default(),
    };
    if let Some(r) = r {
        if let Some(j) = &r.jitter {
            policy = policy.jitter(match j.as_str() {
                "none" => Jitter::None,
                "full" => Jitter::Full,
                "equal" => Jitter::Equal,
                "decorrelated" => Jitter::Decorrelated,
                other => {
                    return Err((
                        key("retry.jitter"),
                        format!("unknown jitter {other:?}; expected none, full, equal or decorrelated"),
                    ));
                }
            });
        }
        if let Some(n) = r.max_attempts {
            policy = policy.max_attempts(n);
        }
        if let Some(w) = &r.window {
            policy = policy.retry_window(Some(duration(key("retry.window"), w)?));
        }
        if let Some(c) = &r.retry_after_cap {
            policy = policy.retry_after_cap(duration(key("retry.retry_after_cap"), c)?);
        }
    }
    if let Some(t) = &p.timeout {
        policy = policy.attempt_timeout(duration(key("timeout"), t)?);
    }
    policy.validate().map_err(|e| (key("retry"), e.to_string()))?;
    Ok(policy)
}
